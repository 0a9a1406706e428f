// Mixture of experts (SPEC.md, "Mixture of experts"): fp32 router, softmax over
// all experts, top-k without renormalising the gates, and only the chosen
// experts evaluated, each over the batch of tokens that chose it.
#include <algorithm>
#include <cstring>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/vector_ops.h"
#include "model/blocks.h"

namespace grok {

void moe_block(const GrokConfig& c, const LayerWeights& l, const float* m, const uint8_t* valid, int64_t T,
               ThreadPool& pool, MoeScratch& s, float* out) {
  const int64_t D = c.dim, E = c.n_experts, K = c.n_experts_used, F = c.ffn_dim;
  s.router_probs.resize(size_t(T * E));
  s.chosen.resize(size_t(T * K));
  s.gates.resize(size_t(T * K));
  for (int64_t t = 0; t < T; ++t) {
    float* p = &s.router_probs[size_t(t * E)];
    for (int64_t e = 0; e < E; ++e) p[e] = dot(m + t * D, &l.router[size_t(e * D)], D);
    softmax(p, E);
    if (!valid[t]) std::fill(p, p + E, 0.0f);
    // Top K by probability, ties to the lower expert id (as jax.lax.top_k).
    std::vector<int32_t>& order = s.order;
    order.resize(size_t(E));
    for (int64_t e = 0; e < E; ++e) order[size_t(e)] = int32_t(e);
    std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return p[x] > p[y]; });
    for (int64_t k = 0; k < K; ++k) {
      s.chosen[size_t(t * K + k)] = order[size_t(k)];
      s.gates[size_t(t * K + k)] = p[order[size_t(k)]];
    }
  }

  std::fill(out, out + T * D, 0.0f);
  std::vector<int64_t>& rows = s.rows;
  std::vector<float>& row_gates = s.row_gates;
  for (int64_t e = 0; e < E; ++e) {
    rows.clear();
    row_gates.clear();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < K; ++k)
        if (s.chosen[size_t(t * K + k)] == e && s.gates[size_t(t * K + k)] != 0.0f) {
          rows.push_back(t);
          row_gates.push_back(s.gates[size_t(t * K + k)]);
        }
    const int64_t n = int64_t(rows.size());
    if (n == 0) continue;
    const ExpertWeights& x = l.experts[size_t(e)];
    s.x.resize(size_t(n * D));
    s.h1.resize(size_t(n * F));
    s.hv.resize(size_t(n * F));
    s.y.resize(size_t(n * D));
    for (int64_t r = 0; r < n; ++r) std::memcpy(&s.x[size_t(r * D)], m + rows[size_t(r)] * D, size_t(D) * 4);
    matmul(x.w1, s.x.data(), n, s.h1.data(), pool);
    matmul(x.v, s.x.data(), n, s.hv.data(), pool);
    gelu_mul(s.h1.data(), s.hv.data(), n * F, pool);
    matmul(x.w2, s.h1.data(), n, s.y.data(), pool);
    for (int64_t r = 0; r < n; ++r) {
      float* o = out + rows[size_t(r)] * D;
      const float g = row_gates[size_t(r)];
      for (int64_t d = 0; d < D; ++d) o[d] += g * s.y[size_t(r * D + d)];
    }
  }
}

}  // namespace grok
