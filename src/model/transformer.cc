// The layer loop of SPEC.md, "Forward pass":
//   x = E[t]·embed_scale
//   per layer: x += norm1(Attention(norm0(x))); x += norm3(MoE(norm2(x)))
//   logits = norm_final(x)·Eᵀ·logit_scale   (E tied as output projection)
#include "model/transformer.h"

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
  AttentionScratch attn;
  MoeScratch moe;
};

Transformer::Transformer(const Model& model)
    : cfg_(model.config), w_(model.weights), s_(std::make_unique<ForwardScratch>()) {}

Transformer::~Transformer() = default;

void Transformer::observe(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const {
  if (!observer_) return;
  observer_(layer < 0 ? std::string(name) : std::string(name) + "-" + std::to_string(layer), data, rows, cols);
}

void Transformer::forward(std::span<const int32_t> tokens, KVCache& cache, ThreadPool& pool, bool all_positions,
                          std::vector<float>& logits) {
  const int64_t T = int64_t(tokens.size()), D = cfg_.dim, pos0 = cache.length();
  if (T == 0) fail("forward: no tokens");
  if (pos0 + T > cache.capacity())
    fail(pos0 + T, " positions do not fit the ", cache.capacity(), "-position KV cache (model context ",
         cfg_.context_length, ")");
  for (int64_t t = 0; t < T; ++t)
    if (tokens[size_t(t)] < 0 || tokens[size_t(t)] >= cfg_.vocab_size)
      fail("token id ", tokens[size_t(t)], " at position ", t, " is out of range (vocabulary of ",
           cfg_.vocab_size, ")");

  ForwardScratch& s = *s_;
  s.x.resize(size_t(T * D));
  s.normed.resize(size_t(T * D));
  s.block.resize(size_t(T * D));
  std::vector<uint8_t>& valid = cache.valid();
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = tokens[size_t(t)];
    valid[size_t(pos0 + t)] = id > cfg_.pad_id;  // SPEC: valid = t > pad_token
    float* x = &s.x[size_t(t * D)];
    dequantize_row(w_.embed.dtype, w_.embed.row(id), x, D);
    for (int64_t d = 0; d < D; ++d) x[d] *= cfg_.embed_scale;
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
    attention_block(cfg_, l, i, s.normed.data(), T, pos0, cache, pool, s.attn, s.block.data());
    observe("attn_out", i, s.block.data(), T, D);
    norm_rows(s.block.data(), l.attn_out_norm, s.block.data());
    observe("attn_out_norm", i, s.block.data(), T, D);
    add_rows(s.block.data());
    observe("ffn_inp", i, s.x.data(), T, D);

    norm_rows(s.x.data(), l.ffn_norm, s.normed.data());
    observe("ffn_norm", i, s.normed.data(), T, D);
    moe_block(cfg_, l, s.normed.data(), &valid[size_t(pos0)], T, pool, s.moe, s.block.data());
    observe("ffn_moe_probs", i, s.moe.router_probs.data(), T, cfg_.n_experts);
    observe("ffn_moe_out", i, s.block.data(), T, D);
    norm_rows(s.block.data(), l.ffn_out_norm, s.block.data());
    observe("ffn_post_norm", i, s.block.data(), T, D);
    add_rows(s.block.data());
    observe("l_out", i, s.x.data(), T, D);
  }
  cache.set_length(pos0 + T);

  const int64_t first = all_positions ? 0 : T - 1, rows = T - first;
  s.final.resize(size_t(rows * D));
  for (int64_t r = 0; r < rows; ++r)
    rms_norm(&s.x[size_t((first + r) * D)], w_.final_norm.data(), D, cfg_.rms_eps, &s.final[size_t(r * D)]);
  observe("result_norm", -1, s.final.data(), rows, D);
  logits.resize(size_t(rows * cfg_.vocab_size));
  matmul(w_.output, s.final.data(), rows, logits.data(), pool);
  for (float& v : logits) v *= cfg_.logit_scale;
}

}  // namespace grok
