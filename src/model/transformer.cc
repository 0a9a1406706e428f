// The layer loop of SPEC.md, "Forward pass":
//   x = E[t]·embed_scale
//   per layer: x += norm1(Attention(norm0(x))); x += norm3(MoE(norm2(x)))
//   logits = norm_final(x)·Eᵀ·logit_scale   (E tied as output projection)
#include "model/transformer.h"

#include <atomic>
#include <limits>
#include <unordered_map>

#include "core/error.h"
#include "kernels/dequantize.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/blocks.h"

namespace grok {

struct ForwardScratch {
  std::vector<float> x;       // (T, dim) residual stream
  std::vector<float> normed;  // (T, dim) block input
  std::vector<float> block;   // (T, dim) block output
  std::vector<float> final;   // (rows, dim) final-norm output of the positions with logits
  std::vector<uint8_t> valid;  // (T) whether each row is a real token (not padding)
  std::vector<AttentionSegment> segments;  // one per sequence
  std::vector<int64_t> logit_rows;         // the rows that get logits
  std::vector<float> local_logits;         // (rows, this rank's vocabulary rows)
  std::vector<float> gathered;             // the leader's: every rank's local_logits
  AttentionScratch attn;
  MoeScratch moe;
};

// A follower's copies of the leader's KV pools: the same blocks at the same
// ids, holding this rank's KV heads, and each position's validity.
struct Transformer::Mirrors {
  struct Pool {
    std::unique_ptr<KvBlockPool> pool;
    std::vector<uint8_t> valid;  // [block][position in block]
  };
  std::unordered_map<int64_t, Pool> pools;
};

namespace {

// The leader's plan of one pass, as int64 words:
//   kForward, gather mode, n retired pool ids, ids..., n steps, then per step
//   pool id, pool blocks, block tokens, capacity, length, all_positions,
//   n tokens, n blocks, blocks..., tokens...
//   kStop, report
enum PlanWord : int64_t { kForward = 1, kStop = 2 };

}  // namespace

Transformer::Transformer(const Model& model, Collectives* comm)
    : cfg_(model.config),
      local_(local_config(model.config, model.shard)),
      shard_(model.shard),
      comm_(comm),
      w_(model.weights),
      s_(std::make_unique<ForwardScratch>()) {
  if (!shard_.whole() && (!comm_ || comm_->size() != shard_.ranks || comm_->rank() != shard_.rank))
    fail("tensor parallelism: the model is split for rank ", shard_.rank, " of ", shard_.ranks,
         " but this process is rank ", comm_ ? comm_->rank() : 0, " of ", comm_ ? comm_->size() : 1);
  if (distributed() && comm_->leader()) KvBlockPool::track_retired();
  if (distributed() && !comm_->leader()) mirrors_ = std::make_unique<Mirrors>();
}

Transformer::~Transformer() = default;

// One job per process: once stopped, the followers are gone for every
// Transformer of the leader's.
std::atomic<bool> followers_stopped{false};

void Transformer::stop_followers(bool report) {
  if (!distributed() || !comm_->leader() || followers_stopped.exchange(true)) return;
  std::vector<int64_t> plan{kStop, report ? 1 : 0};
  comm_->broadcast(plan);
}

void Transformer::observe(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const {
  if (!observer_) return;
  observer_(layer < 0 ? std::string(name) : std::string(name) + "-" + std::to_string(layer), data, rows, cols);
}

void Transformer::set_expert_counts(std::vector<int64_t>* counts) {
  if (counts) counts->resize(size_t(cfg_.n_layers * cfg_.n_experts), 0);
  expert_counts_ = counts;
}

void Transformer::forward(std::span<const int32_t> tokens, KVCache& cache, ThreadPool& pool, bool all_positions,
                          std::vector<float>& logits) {
  const SequenceStep step{tokens, &cache, all_positions};
  forward_batch(std::span(&step, 1), pool, logits);
}

void Transformer::check_steps(std::span<const SequenceStep> steps) const {
  if (steps.empty()) fail("forward: no sequences");
  for (size_t g = 0; g < steps.size(); ++g) {
    const SequenceStep& st = steps[g];
    const std::string who = steps.size() > 1 ? cat("sequence ", g, ": ") : "";
    if (!st.cache) fail("forward: ", who, "no KV cache");
    if (st.tokens.empty()) fail("forward: ", who, "no tokens");
    for (size_t h = 0; h < g; ++h)
      if (steps[h].cache == st.cache) fail("forward: sequences ", h, " and ", g, " share one KV cache");
    const int64_t n = int64_t(st.tokens.size()), pos0 = st.cache->length();
    if (pos0 + n > st.cache->capacity())
      fail(who, pos0 + n, " positions do not fit the ", st.cache->capacity(), "-position KV cache (model context ",
           cfg_.context_length, ")");
    for (int64_t t = 0; t < n; ++t)
      if (st.tokens[size_t(t)] < 0 || st.tokens[size_t(t)] >= cfg_.vocab_size)
        fail(who, "token id ", st.tokens[size_t(t)], " at position ", t, " is out of range (vocabulary of ",
             cfg_.vocab_size, ")");
  }
}


void Transformer::forward_batch(std::span<const SequenceStep> steps, ThreadPool& pool, std::vector<float>& logits) {
  check_steps(steps);
  if (distributed()) {
    if (!comm_->leader()) fail("forward: only the leader (rank 0) starts passes; the other ranks follow");
    if (followers_stopped) fail("forward: the other ranks were stopped");
    send_plan(steps);
  }
  run(steps, pool, logits);
}

void Transformer::send_plan(std::span<const SequenceStep> steps) {
  std::vector<int64_t> plan{kForward, int64_t(gather_)};
  const std::vector<uint64_t> retired = KvBlockPool::take_retired();
  plan.push_back(int64_t(retired.size()));
  plan.insert(plan.end(), retired.begin(), retired.end());
  plan.push_back(int64_t(steps.size()));
  for (const SequenceStep& st : steps) {
    KVCache& c = *st.cache;
    plan.insert(plan.end(), {int64_t(c.pool().id()), c.pool().total(), int64_t(c.block_tokens()), c.capacity(),
                             c.length(), int64_t(st.all_positions), int64_t(st.tokens.size()),
                             int64_t(c.blocks().size())});
    plan.insert(plan.end(), c.blocks().begin(), c.blocks().end());
    plan.insert(plan.end(), st.tokens.begin(), st.tokens.end());
  }
  comm_->broadcast(plan);
}

bool Transformer::follow(ThreadPool& pool) {
  if (!distributed() || comm_->leader()) fail("follow: only ranks other than the leader follow");
  std::vector<int64_t> plan;
  std::vector<float> logits;
  std::vector<KVCache> caches;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<SequenceStep> steps;
  for (;;) {
    comm_->broadcast(plan);
    size_t at = 0;
    auto next = [&] {
      if (at >= plan.size()) fail("follow: the leader's plan is cut short");
      return plan[at++];
    };
    if (next() == kStop) return next() != 0;
    gather_ = LogitsGather(next());
    for (int64_t n = next(); n > 0; --n) mirrors_->pools.erase(next());
    const int64_t n_steps = next();
    caches.clear();
    caches.reserve(size_t(n_steps));
    tokens.assign(size_t(n_steps), {});
    steps.clear();
    std::vector<Mirrors::Pool*> pools;
    for (int64_t g = 0; g < n_steps; ++g) {
      const int64_t id = next(), n_blocks = next(), bt = next(), capacity = next(), length = next();
      const bool all_positions = next() != 0;
      const int64_t n_tokens = next(), n_table = next();
      Mirrors::Pool& m = mirrors_->pools[id];
      if (!m.pool) {
        m.pool = std::make_unique<KvBlockPool>(cfg_, int(bt), n_blocks);
        m.valid.assign(size_t(n_blocks * bt), 0);
      }
      std::vector<int32_t> table(static_cast<size_t>(n_table));
      for (int32_t& b : table) b = int32_t(next());
      for (int64_t i = 0; i < n_tokens; ++i) tokens[size_t(g)].push_back(int32_t(next()));
      caches.push_back(KVCache::mirror(*m.pool, capacity, std::move(table), length));
      KVCache& c = caches.back();
      for (int64_t p = 0; p < length; ++p) c.valid()[size_t(p)] = m.valid[size_t(c.blocks()[size_t(p / bt)] * bt + p % bt)];
      pools.push_back(&m);
      steps.push_back({tokens[size_t(g)], nullptr, all_positions});
    }
    for (size_t g = 0; g < steps.size(); ++g) steps[g].cache = &caches[g];
    run(steps, pool, logits);
    for (size_t g = 0; g < steps.size(); ++g) {
      KVCache& c = caches[g];
      const int64_t bt = c.block_tokens();
      for (int64_t p = c.length() - int64_t(steps[g].tokens.size()); p < c.length(); ++p)
        pools[g]->valid[size_t(c.blocks()[size_t(p / bt)] * bt + p % bt)] = c.valid()[size_t(p)];
    }
  }
}

void Transformer::run(std::span<const SequenceStep> steps, ThreadPool& pool, std::vector<float>& logits) {
  const int64_t D = cfg_.dim;
  int64_t T = 0;
  for (const SequenceStep& st : steps) T += int64_t(st.tokens.size());
  ForwardScratch& s = *s_;
  s.x.resize(size_t(T * D));
  s.normed.resize(size_t(T * D));
  s.block.resize(size_t(T * D));
  s.valid.resize(size_t(T));
  s.segments.clear();
  int64_t row = 0;
  for (const SequenceStep& st : steps) {
    KVCache& cache = *st.cache;
    const int64_t n = int64_t(st.tokens.size()), pos0 = cache.length();
    s.segments.push_back({row, n, pos0, &cache});
    for (int64_t i = 0; i < n; ++i, ++row) {
      const int32_t id = st.tokens[size_t(i)];
      s.valid[size_t(row)] = cache.valid()[size_t(pos0 + i)] = id > cfg_.pad_id;  // SPEC: valid = t > pad_token
      float* x = &s.x[size_t(row * D)];
      dequantize_row(w_.embed.dtype, w_.embed.row(id), x, D);
      for (int64_t d = 0; d < D; ++d) x[d] *= cfg_.embed_scale;
    }
  }
  observe("inp_scaled", -1, s.x.data(), T, D);

  auto norm_rows = [&](const float* in, const std::vector<float>& scale, float* out) {
    for (int64_t t = 0; t < T; ++t) rms_norm(in + t * D, scale.data(), D, cfg_.rms_eps, out + t * D);
  };
  auto add_rows = [&](const float* in) {
    for (int64_t i = 0; i < T * D; ++i) s.x[size_t(i)] += in[i];
  };

  for (int64_t i = 0; i < cfg_.n_layers; ++i) {
    const LayerWeights& l = w_.layers[size_t(i)];
    norm_rows(s.x.data(), l.attn_norm, s.normed.data());
    observe("attn_norm", i, s.normed.data(), T, D);
    if (local_.n_kv_heads > 0)
      attention_block(local_, l, i, s.normed.data(), T, s.segments, pool, s.attn, s.block.data());
    else  // more ranks than KV heads: this one has none
      std::fill(s.block.begin(), s.block.end(), 0.0f);
    if (distributed()) comm_->allreduce_sum(s.block.data(), T * D);
    observe("attn_out", i, s.block.data(), T, D);
    norm_rows(s.block.data(), l.attn_out_norm, s.block.data());
    observe("attn_out_norm", i, s.block.data(), T, D);
    add_rows(s.block.data());
    observe("ffn_inp", i, s.x.data(), T, D);

    norm_rows(s.x.data(), l.ffn_norm, s.normed.data());
    observe("ffn_norm", i, s.normed.data(), T, D);
    moe_block(local_, l, s.normed.data(), s.valid.data(), T, pool, s.moe, s.block.data());
    if (distributed()) comm_->allreduce_sum(s.block.data(), T * D);
    if (expert_counts_) {
      // What moe_block evaluated: each real token's chosen experts with a gate above 0.
      int64_t* counts = expert_counts_->data() + i * cfg_.n_experts;
      const int64_t K = cfg_.n_experts_used;
      for (int64_t t = 0; t < T; ++t)
        if (s.valid[size_t(t)])
          for (int64_t k = 0; k < K; ++k)
            if (s.moe.gates[size_t(t * K + k)] != 0.0f) ++counts[s.moe.chosen[size_t(t * K + k)]];
    }
    observe("ffn_moe_probs", i, s.moe.router_probs.data(), T, cfg_.n_experts);
    observe("ffn_moe_out", i, s.block.data(), T, D);
    norm_rows(s.block.data(), l.ffn_out_norm, s.block.data());
    observe("ffn_post_norm", i, s.block.data(), T, D);
    add_rows(s.block.data());
    observe("l_out", i, s.x.data(), T, D);
  }
  for (const AttentionSegment& seg : s.segments) seg.cache->set_length(seg.pos0 + seg.count);

  // The rows that get logits: every row of an all_positions step, else its last.
  s.logit_rows.clear();
  for (size_t g = 0; g < steps.size(); ++g) {
    const AttentionSegment& seg = s.segments[g];
    for (int64_t r = steps[g].all_positions ? 0 : seg.count - 1; r < seg.count; ++r)
      s.logit_rows.push_back(seg.first + r);
  }
  const int64_t rows = int64_t(s.logit_rows.size());
  s.final.resize(size_t(rows * D));
  for (int64_t r = 0; r < rows; ++r)
    rms_norm(&s.x[size_t(s.logit_rows[size_t(r)] * D)], w_.final_norm.data(), D, cfg_.rms_eps,
             &s.final[size_t(r * D)]);
  observe("result_norm", -1, s.final.data(), rows, D);
  if (!distributed()) {
    logits.resize(size_t(rows * cfg_.vocab_size));
    matmul(w_.output, s.final.data(), rows, logits.data(), pool);
    for (float& v : logits) v *= cfg_.logit_scale;
    return;
  }
  s.local_logits.resize(size_t(rows * local_.vocab_size));
  if (local_.vocab_size > 0) matmul(w_.output, s.final.data(), rows, s.local_logits.data(), pool);
  for (float& v : s.local_logits) v *= cfg_.logit_scale;
  gather_logits(rows, logits);
}

// Every rank sends the same number of bytes (MPI_Gather): rows padded to the
// largest vocabulary slice, or one (value, id) pair per row.
void Transformer::gather_logits(int64_t rows, std::vector<float>& logits) {
  ForwardScratch& s = *s_;
  const int N = comm_->size();
  const int64_t Vl = local_.vocab_size, V = cfg_.vocab_size;
  if (gather_ == LogitsGather::kArgmax) {
    struct Best {
      float value;
      int32_t id;
    };
    std::vector<Best> mine(size_t(rows), Best{-std::numeric_limits<float>::infinity(), -1});
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < Vl; ++j)
        if (float v = s.local_logits[size_t(r * Vl + j)]; v > mine[size_t(r)].value || mine[size_t(r)].id < 0)
          mine[size_t(r)] = {v, int32_t(shard_.vocab_begin + j)};
    std::vector<Best> all(comm_->leader() ? size_t(N * rows) : 0);
    comm_->gather(mine.data(), rows * int64_t(sizeof(Best)), all.data());
    if (!comm_->leader()) return;
    logits.assign(size_t(rows * V), -std::numeric_limits<float>::infinity());
    for (int64_t r = 0; r < rows; ++r) {
      Best best{0, -1};
      for (int k = 0; k < N; ++k)  // ranks hold ascending ids: strictly greater keeps the lower id on ties
        if (const Best& b = all[size_t(k * rows + r)]; b.id >= 0 && (best.id < 0 || b.value > best.value)) best = b;
      logits[size_t(r * V + best.id)] = best.value;
    }
    return;
  }
  int64_t widest = 0;
  for (int k = 0; k < N; ++k) {
    const auto [b, e] = vocab_rows(V, k, N);
    widest = std::max(widest, e - b);
  }
  std::vector<float> mine(size_t(rows * widest), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    std::copy_n(&s.local_logits[size_t(r * Vl)], Vl, &mine[size_t(r * widest)]);
  s.gathered.resize(comm_->leader() ? size_t(N * rows * widest) : 0);
  comm_->gather(mine.data(), rows * widest * 4, s.gathered.data());
  if (!comm_->leader()) return;
  logits.resize(size_t(rows * V));
  for (int k = 0; k < N; ++k) {
    const auto [b, e] = vocab_rows(V, k, N);
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(&s.gathered[size_t((k * rows + r) * widest)], e - b, &logits[size_t(r * V + b)]);
  }
}

}  // namespace grok
