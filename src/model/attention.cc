// Grouped-query attention with rotary embedding and Grok's logit cap (SPEC.md, "Attention").
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/vector_ops.h"
#include "model/blocks.h"

namespace grok {

void attention_block(const GrokConfig& c, const LayerWeights& l, int64_t layer, const float* a, int64_t T,
                     std::span<const AttentionSegment> segments, ThreadPool& pool, AttentionScratch& s, float* out) {
  const int64_t hd = c.head_dim, n_q = c.n_heads, n_kv = c.n_kv_heads;
  const int64_t q_dim = n_q * hd, kv_dim = n_kv * hd, q_per_kv = n_q / n_kv;
  s.q.resize(size_t(T * q_dim));
  s.k.resize(size_t(T * kv_dim));
  s.v.resize(size_t(T * kv_dim));
  s.context.resize(size_t(T * q_dim));
  const WeightMatrix* qkv[] = {&l.wq, &l.wk, &l.wv};
  float* const qkv_out[] = {s.q.data(), s.k.data(), s.v.data()};
  matmul_shared_input(qkv, a, T, qkv_out, pool);

  // Rotary embedding at absolute positions; the cache keeps k after rotation.
  // seg_of[t]: the segment of batch row t.
  s.seg_of.resize(size_t(T));
  s.rope.resize(size_t(T * hd));
  s.rope_pos.resize(size_t(T), -1);
  int64_t n_ctx = 0;  // the longest context, for the score buffers
  for (size_t g = 0; g < segments.size(); ++g) {
    const AttentionSegment& seg = segments[g];
    KVCache& cache = *seg.cache;
    n_ctx = std::max(n_ctx, seg.pos0 + seg.count);
    for (int64_t i = 0; i < seg.count; ++i) {
      const int64_t t = seg.first + i, pos = seg.pos0 + i;
      s.seg_of[size_t(t)] = int32_t(g);
      float* rotation = &s.rope[size_t(t * hd)];
      if (s.rope_pos[size_t(t)] != pos) {
        rope_rotation(hd, pos, c.rope_base, rotation);
        s.rope_pos[size_t(t)] = pos;
      }
      for (int64_t h = 0; h < n_q; ++h) rope_apply(&s.q[size_t(t * q_dim + h * hd)], hd, rotation);
      for (int64_t h = 0; h < n_kv; ++h) {
        float* k = &s.k[size_t(t * kv_dim + h * hd)];
        rope_apply(k, hd, rotation);
        std::copy(k, k + hd, cache.key(layer, h, pos));
        const float* v = &s.v[size_t(t * kv_dim + h * hd)];
        std::copy(v, v + hd, cache.value(layer, h, pos));
      }
    }
  }

  s.scores.resize(size_t(pool.size() * n_ctx));
  pool.parallel_for(T * n_q, [&](int64_t begin, int64_t end, int thread) {
    float* p = &s.scores[size_t(thread * n_ctx)];
    for (int64_t i = begin; i < end; ++i) {
      const int64_t t = i / n_q, h = i % n_q, kv_head = h / q_per_kv;
      const AttentionSegment& seg = segments[size_t(s.seg_of[size_t(t)])];
      KVCache& cache = *seg.cache;
      const uint8_t* valid = cache.valid().data();
      const int64_t n_keys = seg.pos0 + (t - seg.first) + 1;  // causal: itself and everything before
      const float* q = &s.q[size_t(t * q_dim + h * hd)];
      // Masked keys (pad tokens) get exactly zero weight, as -1e30 does in the
      // reference's softmax. Keys (and values) go block by block, each
      // block's contiguous [position][head_dim].
      const int64_t B = cache.block_tokens();
      for (int64_t j0 = 0, b = 0; j0 < n_keys; j0 += B, ++b) {
        const uint8_t* ok = valid + j0;
        float* pb = p + j0;
        const int64_t n = std::min(B, n_keys - j0);
        dot_rows(cache.block_keys(b, layer, kv_head), n, hd, q, pb);
        for (int64_t j = 0; j < n; ++j) pb[j] = ok[j] ? pb[j] * c.attn_scale : 0.0f;
      }
      soft_cap(p, n_keys, c.attn_cap);
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n_keys; ++j)
        if (valid[j]) mx = std::max(mx, p[j]);
      if (mx > -std::numeric_limits<float>::infinity()) exp_shifted(p, n_keys, mx);
      double sum = 0;
      for (int64_t j = 0; j < n_keys; ++j) {
        if (!valid[j]) p[j] = 0.0f;
        sum += p[j];
      }
      // No valid key at all: the reference's all -1e30 row is uniform.
      const bool none_valid = sum == 0;
      const float inv = none_valid ? 1.0f / float(n_keys) : float(1.0 / sum);
      if (none_valid) std::fill(p, p + n_keys, 1.0f);
      for (int64_t j = 0; j < n_keys; ++j) p[j] *= inv;
      float* ctx = &s.context[size_t(t * q_dim + h * hd)];
      std::fill(ctx, ctx + hd, 0.0f);
      for (int64_t j0 = 0, b = 0; j0 < n_keys; j0 += B, ++b)
        axpy_rows(cache.block_values(b, layer, kv_head), std::min(B, n_keys - j0), hd, p + j0, ctx);
    }
  });
  matmul(l.wo, s.context.data(), T, out, pool);
}

}  // namespace grok
