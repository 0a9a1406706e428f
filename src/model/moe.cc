// Mixture of experts (SPEC.md, "Mixture of experts"): fp32 router, softmax over
// all experts, top-k without renormalising the gates, and only the chosen
// experts evaluated, each over the batch of tokens that chose it.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/vector_ops.h"
#include "model/blocks.h"

namespace grok {
namespace {

// Rows of one expert matrix per pool task (whole groups of 16 for the
// packed kernels).
constexpr int64_t kUpRows = 32, kDownRows = 16;

bool experts_take_row_ranges(const LayerWeights& l) {
  for (const ExpertWeights& x : l.experts)
    if (!matmul_rows_supported(x.w1) || !matmul_rows_supported(x.v) || !matmul_rows_supported(x.w2)) return false;
  return true;
}

// Whether v's kernel takes other activations than w1's (mixed formats).
bool gate_needs_own_input(const ExpertWeights& x) {
  return MatmulInput::kind_for(x.v) != MatmulInput::kind_for(x.w1);
}

// All experts with two product calls to the pool per layer instead of three
// per expert (with a batch most experts have tokens, and the pool's
// hand-offs and its waits for the slowest thread outweighed the small
// products):
//   1. each (expert, token) row prepared for w1 and v;
//   2. per (expert, matrix, 32 rows of ffn): h1 = x·w1ᵀ or hv = x·vᵀ, in that
//      order, so each thread streams one matrix at a time;
//   3. each row's h1 = gelu(h1)·hv, prepared for w2;
//   4. per (expert, 16 rows of dim): y = h1·w2ᵀ;
//   5. out += gate·y, experts in order.
// Every value gets the arithmetic of the one-expert-at-a-time path below.
void experts_batched(const GrokConfig& c, const LayerWeights& l, const float* m, ThreadPool& pool, MoeScratch& s,
                     float* out) {
  const int64_t D = c.dim, E = c.n_experts, F = c.ffn_dim;
  s.up_in.resize(size_t(E));
  s.gate_in.resize(size_t(E));
  s.down_in.resize(size_t(E));
  s.h1.resize(size_t(E));
  s.hv.resize(size_t(E));
  s.y_experts.resize(size_t(E));
  std::vector<int32_t> active;
  std::vector<std::pair<int32_t, int64_t>> expert_rows;  // (expert, its row)
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = int64_t(s.rows[size_t(e)].size());
    if (n == 0) continue;
    const ExpertWeights& x = l.experts[size_t(e)];
    active.push_back(int32_t(e));
    s.up_in[size_t(e)].reset(MatmulInput::kind_for(x.w1), n, D);
    if (gate_needs_own_input(x)) s.gate_in[size_t(e)].reset(MatmulInput::kind_for(x.v), n, D);
    s.down_in[size_t(e)].reset(MatmulInput::kind_for(x.w2), n, F);
    s.h1[size_t(e)].resize(size_t(n * F));
    s.hv[size_t(e)].resize(size_t(n * F));
    s.y_experts[size_t(e)].resize(size_t(n * D));
    for (int64_t r = 0; r < n; ++r) expert_rows.emplace_back(int32_t(e), r);
  }
  auto for_each_row = [&](int64_t row_values, auto fn) {
    const int64_t n = int64_t(expert_rows.size());
    // As MatmulInput::set_all: a decode step's few rows on this thread (8
    // tokens × top-2 at dim 1024 are; their GELU over ffn 2816, 30 µs on
    // one thread, is split).
    if (n * row_values <= MatmulInput::kSerialValues) {
      for (const auto& [e, r] : expert_rows) fn(e, r);
      return;
    }
    pool.parallel_for(n, [&](int64_t b, int64_t end, int) {
      for (int64_t i = b; i < end; ++i) fn(expert_rows[size_t(i)].first, expert_rows[size_t(i)].second);
    });
  };

  for_each_row(D, [&](int32_t e, int64_t r) {
    const float* row = m + s.rows[size_t(e)][size_t(r)] * D;
    s.up_in[size_t(e)].set(r, row, 0, D);
    if (gate_needs_own_input(l.experts[size_t(e)])) s.gate_in[size_t(e)].set(r, row, 0, D);
  });

  const int64_t up_tasks = (F + kUpRows - 1) / kUpRows;
  pool.parallel_for(int64_t(active.size()) * 2 * up_tasks, [&](int64_t b, int64_t end, int) {
    for (int64_t i = b; i < end; ++i) {
      const int32_t e = active[size_t(i / (2 * up_tasks))];
      const int64_t r0 = (i % up_tasks) * kUpRows, r1 = std::min(F, r0 + kUpRows);
      const ExpertWeights& x = l.experts[size_t(e)];
      if ((i / up_tasks) % 2 == 0)
        matmul_rows(x.w1, s.up_in[size_t(e)], r0, r1, s.h1[size_t(e)].data() + r0, F);
      else
        matmul_rows(x.v, gate_needs_own_input(x) ? s.gate_in[size_t(e)] : s.up_in[size_t(e)], r0, r1,
                    s.hv[size_t(e)].data() + r0, F);
    }
  });

  for_each_row(F, [&](int32_t e, int64_t r) {
    float* h1 = s.h1[size_t(e)].data() + r * F;
    gelu_mul(h1, s.hv[size_t(e)].data() + r * F, F);
    s.down_in[size_t(e)].set(r, h1, 0, F);
  });

  const int64_t down_tasks = (D + kDownRows - 1) / kDownRows;
  pool.parallel_for(int64_t(active.size()) * down_tasks, [&](int64_t b, int64_t end, int) {
    for (int64_t i = b; i < end; ++i) {
      const int32_t e = active[size_t(i / down_tasks)];
      const int64_t r0 = (i % down_tasks) * kDownRows, r1 = std::min(D, r0 + kDownRows);
      matmul_rows(l.experts[size_t(e)].w2, s.down_in[size_t(e)], r0, r1, s.y_experts[size_t(e)].data() + r0, D);
    }
  });

  for (const int32_t e : active) {
    const std::vector<int64_t>& rows = s.rows[size_t(e)];
    const std::vector<float>& gates = s.row_gates[size_t(e)];
    const float* y = s.y_experts[size_t(e)].data();
    for (size_t r = 0; r < rows.size(); ++r) {
      float* o = out + rows[r] * D;
      for (int64_t d = 0; d < D; ++d) o[d] += gates[r] * y[r * size_t(D) + size_t(d)];
    }
  }
}

// One expert at a time, each product split over the pool by matmul: the
// path for input-major int8 weights, whose kernel splits the inputs.
void experts_one_by_one(const GrokConfig& c, const LayerWeights& l, const float* m, ThreadPool& pool, MoeScratch& s,
                        float* out) {
  const int64_t D = c.dim, E = c.n_experts, F = c.ffn_dim;
  s.h1.resize(1);
  s.hv.resize(1);
  std::vector<float>& h1 = s.h1[0];
  std::vector<float>& hv = s.hv[0];
  for (int64_t e = 0; e < E; ++e) {
    const std::vector<int64_t>& rows = s.rows[size_t(e)];
    const int64_t n = int64_t(rows.size());
    if (n == 0) continue;
    const ExpertWeights& x = l.experts[size_t(e)];
    s.x.resize(size_t(n * D));
    h1.resize(size_t(n * F));
    hv.resize(size_t(n * F));
    s.y.resize(size_t(n * D));
    for (int64_t r = 0; r < n; ++r) std::memcpy(&s.x[size_t(r * D)], m + rows[size_t(r)] * D, size_t(D) * 4);
    matmul(x.w1, s.x.data(), n, h1.data(), pool);
    matmul(x.v, s.x.data(), n, hv.data(), pool);
    gelu_mul(h1.data(), hv.data(), n * F, pool);
    matmul(x.w2, h1.data(), n, s.y.data(), pool);
    for (int64_t r = 0; r < n; ++r) {
      float* o = out + rows[size_t(r)] * D;
      const float g = s.row_gates[size_t(e)][size_t(r)];
      for (int64_t d = 0; d < D; ++d) o[d] += g * s.y[size_t(r * D + d)];
    }
  }
}

}  // namespace

void moe_block(const GrokConfig& c, const LayerWeights& l, const float* m, const uint8_t* valid, int64_t T,
               ThreadPool& pool, MoeScratch& s, float* out) {
  const int64_t D = c.dim, E = c.n_experts, K = c.n_experts_used;
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

  // Each expert's tokens in order (a gate of 0, from a padding token,
  // contributes nothing and is skipped).
  s.rows.resize(size_t(E));
  s.row_gates.resize(size_t(E));
  for (int64_t e = 0; e < E; ++e) {
    s.rows[size_t(e)].clear();
    s.row_gates[size_t(e)].clear();
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const int32_t e = s.chosen[size_t(t * K + k)];
      const float g = s.gates[size_t(t * K + k)];
      if (g == 0.0f) continue;
      s.rows[size_t(e)].push_back(t);
      s.row_gates[size_t(e)].push_back(g);
    }

  std::fill(out, out + T * D, 0.0f);
  if (experts_take_row_ranges(l))
    experts_batched(c, l, m, pool, s, out);
  else
    experts_one_by_one(c, l, m, pool, s, out);
}

}  // namespace grok
