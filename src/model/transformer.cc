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
  std::vector<uint8_t> valid;  // (T) whether each row is a real token (not padding)
  std::vector<AttentionSegment> segments;  // one per sequence
  std::vector<int64_t> logit_rows;         // the rows that get logits
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

void Transformer::set_expert_counts(std::vector<int64_t>* counts) {
  if (counts) counts->resize(size_t(cfg_.n_layers * cfg_.n_experts), 0);
  expert_counts_ = counts;
}

void Transformer::forward(std::span<const int32_t> tokens, KVCache& cache, ThreadPool& pool, bool all_positions,
                          std::vector<float>& logits) {
  const SequenceStep step{tokens, &cache, all_positions};
  forward_batch(std::span(&step, 1), pool, logits);
}

void Transformer::forward_batch(std::span<const SequenceStep> steps, ThreadPool& pool, std::vector<float>& logits) {
  const int64_t D = cfg_.dim;
  if (steps.empty()) fail("forward: no sequences");
  int64_t T = 0;
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
    T += n;
  }

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
    attention_block(cfg_, l, i, s.normed.data(), T, s.segments, pool, s.attn, s.block.data());
    observe("attn_out", i, s.block.data(), T, D);
    norm_rows(s.block.data(), l.attn_out_norm, s.block.data());
    observe("attn_out_norm", i, s.block.data(), T, D);
    add_rows(s.block.data());
    observe("ffn_inp", i, s.x.data(), T, D);

    norm_rows(s.x.data(), l.ffn_norm, s.normed.data());
    observe("ffn_norm", i, s.normed.data(), T, D);
    moe_block(cfg_, l, s.normed.data(), s.valid.data(), T, pool, s.moe, s.block.data());
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
  logits.resize(size_t(rows * cfg_.vocab_size));
  matmul(w_.output, s.final.data(), rows, logits.data(), pool);
  for (float& v : logits) v *= cfg_.logit_scale;
}

}  // namespace grok
