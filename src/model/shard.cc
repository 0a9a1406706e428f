#include "model/shard.h"

#include <cstring>
#include <numeric>
#include <tuple>

#include "core/error.h"

namespace grok {
namespace {

int64_t part_begin(int64_t n, int rank, int ranks) { return n * rank / ranks; }

// Input elements a column slice must start on: whole quantisation blocks,
// and for int8 whole scale blocks of whole 32-input blocks, so that the
// kernels' 32-wide activation blocks are the same as in one process.
int64_t column_unit(const WeightMatrix& m) {
  if (m.dtype == DType::I8) return std::lcm(m.scale_block_cols(), int64_t(32));
  return dtype_block_elems(m.dtype);
}

// Output rows [r0, r1). Row-major formats: a view of the same rows. Int8 is
// stored input-major, so its outputs are a strided part of every stored row:
// copied, with their scales, into a matrix of its own.
WeightMatrix slice_rows(const WeightMatrix& m, int64_t r0, int64_t r1, ShardCopies* copies) {
  WeightMatrix s = m;
  const int64_t n = r1 - r0;
  s.rows = n;
  if (m.dtype != DType::I8) {
    s.data = m.row(r0);
    return s;
  }
  s.row_bytes = uint64_t(n);
  if (!copies) {  // sizes only
    s.data = nullptr;
    s.scales = nullptr;
    return s;
  }
  const uint64_t quant = uint64_t(m.cols) * uint64_t(n), scales = uint64_t(m.scale_blocks) * uint64_t(n) * 2;
  auto buffer = std::make_unique<std::byte[]>(quant + scales);
  std::byte* q = buffer.get();
  for (int64_t i = 0; i < m.cols; ++i) std::memcpy(q + uint64_t(i) * uint64_t(n), m.data + uint64_t(i) * m.row_bytes + uint64_t(r0), size_t(n));
  auto* sc = reinterpret_cast<uint16_t*>(q + quant);
  for (int64_t b = 0; b < m.scale_blocks; ++b)
    std::memcpy(sc + b * n, m.scales + b * m.rows + r0, size_t(n) * 2);
  s.data = q;
  s.scales = sc;
  copies->buffers.push_back(std::move(buffer));
  return s;
}

// Input columns [c0, c1), a view: row-major rows keep their stride; int8's
// inputs are whole stored rows and whole scale blocks.
WeightMatrix slice_cols(const WeightMatrix& m, int64_t c0, int64_t c1) {
  WeightMatrix s = m;
  s.cols = c1 - c0;
  if (m.dtype == DType::I8) {
    const int64_t bc = m.scale_block_cols();
    s.data = m.data + uint64_t(c0) * m.row_bytes;
    s.scales = m.scales + (c0 / bc) * m.rows;
    s.scale_blocks = (c1 - c0) / bc;
  } else {
    s.data = m.data + dtype_bytes(m.dtype, c0);
  }
  return s;
}

}  // namespace

std::string Shard::describe() const {
  return cat("rank ", rank, "/", ranks, ": KV heads ", kv_begin, "-", kv_end - 1, ", ffn ", ffn_begin, "-",
             ffn_end - 1, ", vocabulary ", vocab_begin, "-", vocab_end - 1);
}

Shard plan_shard(const GrokConfig& c, const GrokWeights& w, int rank, int ranks) {
  if (ranks < 1 || ranks > 64 || rank < 0 || rank >= ranks) fail("tensor parallelism: rank ", rank, " of ", ranks);
  Shard s;
  s.rank = rank;
  s.ranks = ranks;
  s.kv_begin = part_begin(c.n_kv_heads, rank, ranks);
  s.kv_end = part_begin(c.n_kv_heads, rank + 1, ranks);
  const int64_t q_per_kv = c.n_heads / c.n_kv_heads;
  for (const LayerWeights& l : w.layers) {
    const int64_t unit = column_unit(l.wo), col = s.kv_begin * q_per_kv * c.head_dim;
    if (col % unit != 0 || (s.kv_end * q_per_kv * c.head_dim) % unit != 0)
      fail("tensor parallelism: the attention output's ", dtype_name(l.wo.dtype), " blocks of ", unit,
           " inputs do not fall on KV-head boundaries (", q_per_kv * c.head_dim, " inputs each); use at most ",
           c.n_kv_heads, " ranks that divide ", c.n_kv_heads);
  }
  // The ffn in whole blocks of every expert's down projection.
  int64_t unit = 1;
  for (const LayerWeights& l : w.layers)
    for (const ExpertWeights& e : l.experts) unit = std::lcm(unit, column_unit(e.w2));
  if (c.ffn_dim % unit != 0) fail("tensor parallelism: the ffn of ", c.ffn_dim, " is not whole blocks of ", unit);
  const int64_t units = c.ffn_dim / unit;
  if (units < ranks)
    fail("tensor parallelism: the ffn of ", c.ffn_dim, " splits into only ", units, " blocks of ", unit,
         "; use at most ", units, " ranks");
  s.ffn_begin = part_begin(units, rank, ranks) * unit;
  s.ffn_end = part_begin(units, rank + 1, ranks) * unit;
  std::tie(s.vocab_begin, s.vocab_end) = vocab_rows(c.vocab_size, rank, ranks);
  return s;
}

std::pair<int64_t, int64_t> vocab_rows(int64_t vocab, int rank, int ranks) {
  const int64_t groups = (vocab + 15) / 16;
  return {std::min(vocab, part_begin(groups, rank, ranks) * 16), std::min(vocab, part_begin(groups, rank + 1, ranks) * 16)};
}

void apply_shard(GrokConfig& c, GrokWeights& w, const Shard& s, ShardCopies* copies) {
  if (s.whole()) return;
  const int64_t q_per_kv = c.n_heads / c.n_kv_heads, hd = c.head_dim;
  const int64_t q0 = s.kv_begin * q_per_kv * hd, q1 = s.kv_end * q_per_kv * hd;
  for (LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo})
      if (m->packed && copies) fail("tensor parallelism: the weights were repacked before being split");
    l.wq = slice_rows(l.wq, q0, q1, copies);
    l.wk = slice_rows(l.wk, s.kv_begin * hd, s.kv_end * hd, copies);
    l.wv = slice_rows(l.wv, s.kv_begin * hd, s.kv_end * hd, copies);
    l.wo = slice_cols(l.wo, q0, q1);
    for (ExpertWeights& e : l.experts) {
      e.w1 = slice_rows(e.w1, s.ffn_begin, s.ffn_end, copies);
      e.v = slice_rows(e.v, s.ffn_begin, s.ffn_end, copies);
      e.w2 = slice_cols(e.w2, s.ffn_begin, s.ffn_end);
    }
  }
  w.output = slice_rows(w.output, s.vocab_begin, s.vocab_end, copies);
  c.kv_heads_local = s.kv_end - s.kv_begin;
}

GrokConfig local_config(const GrokConfig& c, const Shard& s) {
  GrokConfig l = c;
  if (s.whole()) return l;
  const int64_t q_per_kv = c.n_heads / c.n_kv_heads;
  l.n_kv_heads = s.kv_end - s.kv_begin;
  l.n_heads = l.n_kv_heads * q_per_kv;
  l.ffn_dim = s.ffn_end - s.ffn_begin;
  l.vocab_size = s.vocab_end - s.vocab_begin;
  l.kv_heads_local = -1;
  return l;
}

namespace {
uint64_t matrix_bytes(const WeightMatrix& m) {
  if (m.dtype == DType::I8) return uint64_t(m.cols) * uint64_t(m.rows) + uint64_t(m.scale_blocks * m.rows) * 2;
  return uint64_t(m.rows) * dtype_bytes(m.dtype, m.cols);
}
}  // namespace

uint64_t shard_weight_bytes(const GrokConfig& c, const GrokWeights& w, const Shard& s) {
  GrokConfig c2 = c;
  GrokWeights w2 = w;
  apply_shard(c2, w2, s, nullptr);
  return weight_bytes(w2);
}

uint64_t weight_bytes(const GrokWeights& w) {
  uint64_t total = matrix_bytes(w.embed) + w.final_norm.size() * 4;
  if (w.output.data != w.embed.data || w.output.rows != w.embed.rows) total += matrix_bytes(w.output);
  for (const LayerWeights& l : w.layers) {
    total += (l.attn_norm.size() * 4) * 4 + l.router.size() * 4;
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) total += matrix_bytes(*m);
    for (const ExpertWeights& e : l.experts) total += matrix_bytes(e.w1) + matrix_bytes(e.v) + matrix_bytes(e.w2);
  }
  return total;
}

}  // namespace grok
