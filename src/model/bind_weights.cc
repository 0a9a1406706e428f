#include "model/bind_weights.h"

#include <set>

#include "core/error.h"
#include "kernels/dequantize.h"

namespace grok {
namespace {

class Binder {
 public:
  Binder(const TensorStore& store, const TensorNaming& naming, const std::string& where)
      : store_(store), naming_(naming), where_(where) {}

  const TensorInfo& take(const std::string& name) {
    const TensorInfo& t = store_.get(name, where_);
    used_.insert(name);
    return t;
  }

  void check_shape(const TensorInfo& t, const std::vector<int64_t>& want) {
    if (t.shape != want) {
      TensorInfo w;
      w.shape = want;
      fail(where_, ": tensor '", t.name, "' has shape ", t.shape_str(), ", expected ", w.shape_str());
    }
  }

  // A matrix [rows][cols], or slice `index` of a stacked [n][rows][cols] tensor.
  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols, int64_t stack = 0,
                      int64_t index = 0) {
    const TensorInfo& t = take(name);
    if (t.dtype == DType::I8) return int8_matrix(t, rows, cols, stack, index);
    check_shape(t, stack ? std::vector<int64_t>{stack, rows, cols} : std::vector<int64_t>{rows, cols});
    if (cols % dtype_block_elems(t.dtype) != 0)
      fail(where_, ": tensor '", name, "' rows of ", cols, " elements are not whole ", dtype_name(t.dtype),
           " blocks");
    WeightMatrix m{t.dtype, rows, cols, nullptr, dtype_bytes(t.dtype, cols)};
    m.data = t.data + uint64_t(index) * uint64_t(rows) * m.row_bytes;
    return m;
  }

  // The released checkpoint's layout: int8 [stack][cols][rows] and bf16
  // scales [stack][blocks][rows], the blocks splitting the cols.
  WeightMatrix int8_matrix(const TensorInfo& t, int64_t rows, int64_t cols, int64_t stack, int64_t index) {
    auto stacked = [&](std::vector<int64_t> s) {
      if (stack) s.insert(s.begin(), stack);
      return s;
    };
    check_shape(t, stacked({cols, rows}));
    const std::string scales_name = naming_.scales ? naming_.scales(t.name) : "";
    const TensorInfo* s = scales_name.empty() ? nullptr : store_.find(scales_name);
    if (!s) fail(where_, ": int8 tensor '", t.name, "' has no scales (expected a tensor '", scales_name, "')");
    take(scales_name);
    if (s->dtype != DType::BF16)
      fail(where_, ": tensor '", scales_name, "' has dtype ", dtype_name(s->dtype), ", expected BF16");
    const size_t nd = stack ? 3 : 2;
    const int64_t blocks = s->shape.size() == nd ? s->shape[nd - 2] : 0;
    if (blocks <= 0 || cols % blocks != 0 || s->shape != stacked({blocks, rows}))
      fail(where_, ": tensor '", scales_name, "' has shape ", s->shape_str(), ", expected ",
           stack ? cat("[", stack, ", B, ", rows, "]") : cat("[B, ", rows, "]"), " with B dividing ", cols);
    WeightMatrix m{DType::I8, rows, cols, nullptr, uint64_t(rows)};
    m.data = t.data + uint64_t(index) * uint64_t(rows) * uint64_t(cols);
    m.scales = reinterpret_cast<const uint16_t*>(s->data) + uint64_t(index) * uint64_t(blocks) * uint64_t(rows);
    m.scale_blocks = blocks;
    return m;
  }

  // The router, as fp32 [n_experts][dim] whatever the stored layout.
  std::vector<float> router(const std::string& name, int64_t n_experts, int64_t d) {
    if (!naming_.input_major_router) return vector_f32(name, {n_experts, d});
    const std::vector<float> in_out = vector_f32(name, {d, n_experts});
    std::vector<float> out(in_out.size());
    for (int64_t i = 0; i < d; ++i)
      for (int64_t e = 0; e < n_experts; ++e) out[size_t(e * d + i)] = in_out[size_t(i * n_experts + e)];
    return out;
  }

  std::vector<float> vector_f32(const std::string& name, std::vector<int64_t> shape) {
    const TensorInfo& t = take(name);
    check_shape(t, shape);
    const int64_t n = t.numel();
    if (n % dtype_block_elems(t.dtype) != 0) fail(where_, ": tensor '", name, "' is not whole blocks");
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_row(t.dtype, t.data, out.data(), n);
    return out;
  }

  void check_all_used() {
    for (const TensorInfo& t : store_.tensors())
      if (!used_.count(t.name))
        fail(where_, ": unexpected tensor '", t.name, "' ", t.shape_str(),
             " (not part of a Grok-architecture model)");
  }

 private:
  const TensorStore& store_;
  const TensorNaming& naming_;
  const std::string& where_;
  std::set<std::string> used_;
};

}  // namespace

GrokWeights bind_weights(const GrokConfig& cfg, const TensorStore& store, const TensorNaming& naming,
                         const std::string& where) {
  Binder b(store, naming, where);
  GrokWeights w;
  const int64_t d = cfg.dim, q_dim = cfg.n_heads * cfg.head_dim, kv_dim = cfg.n_kv_heads * cfg.head_dim;
  w.embed = b.matrix(naming.embed, cfg.vocab_size, d);
  w.final_norm = b.vector_f32(naming.final_norm, {d});
  w.output = store.find(naming.output) ? b.matrix(naming.output, cfg.vocab_size, d) : w.embed;
  // Rows of the embedding are looked up one token at a time: not from an input-major layout.
  if (w.embed.dtype == DType::I8 || w.output.dtype == DType::I8)
    fail(where, ": an int8 ", w.embed.dtype == DType::I8 ? naming.embed : naming.output,
         " is not supported (only linear layers may be int8 with scales)");
  w.layers.resize(size_t(cfg.n_layers));
  for (int64_t i = 0; i < cfg.n_layers; ++i) {
    LayerWeights& l = w.layers[size_t(i)];
    auto name = [&](LayerTensor t) { return naming.layer(i, t); };
    l.attn_norm = b.vector_f32(name(LayerTensor::AttnNorm), {d});
    l.attn_out_norm = b.vector_f32(name(LayerTensor::AttnOutNorm), {d});
    l.ffn_norm = b.vector_f32(name(LayerTensor::FfnNorm), {d});
    l.ffn_out_norm = b.vector_f32(name(LayerTensor::FfnOutNorm), {d});
    l.wq = b.matrix(name(LayerTensor::Q), q_dim, d);
    l.wk = b.matrix(name(LayerTensor::K), kv_dim, d);
    l.wv = b.matrix(name(LayerTensor::V), kv_dim, d);
    l.wo = b.matrix(name(LayerTensor::O), d, q_dim);
    l.router = b.router(name(LayerTensor::Router), cfg.n_experts, d);
    l.experts.resize(size_t(cfg.n_experts));
    for (int64_t e = 0; e < cfg.n_experts; ++e) {
      ExpertWeights& x = l.experts[size_t(e)];
      // Stacked: slice e of one [n_experts][out][in] tensor; else a tensor per expert.
      const int64_t stack = naming.stacked_experts ? cfg.n_experts : 0;
      const int64_t slice = naming.stacked_experts ? e : 0;
      auto ename = [&](ExpertTensor t) { return naming.expert(i, e, t); };
      x.w1 = b.matrix(ename(ExpertTensor::W1), cfg.ffn_dim, d, stack, slice);
      x.v = b.matrix(ename(ExpertTensor::V), cfg.ffn_dim, d, stack, slice);
      x.w2 = b.matrix(ename(ExpertTensor::W2), d, cfg.ffn_dim, stack, slice);
    }
  }
  b.check_all_used();
  return w;
}

}  // namespace grok
