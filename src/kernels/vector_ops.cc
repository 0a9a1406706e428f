#include "kernels/vector_ops.h"

#include <algorithm>

#include "kernels/cpu/dot.h"

namespace grok {

void gelu_mul(float* h, const float* v, int64_t n, ThreadPool& pool) {
  const DotKernels& k = active_dot_kernels();
  constexpr int64_t kChunk = 4096;  // a few microseconds: smaller is not worth a pool call
  if (n <= kChunk) return k.gelu_mul(h, v, n);
  pool.parallel_for((n + kChunk - 1) / kChunk, [&](int64_t b, int64_t e, int) {
    k.gelu_mul(h + b * kChunk, v + b * kChunk, std::min(n, e * kChunk) - b * kChunk);
  });
}

void gelu_mul(float* h, const float* v, int64_t n) { active_dot_kernels().gelu_mul(h, v, n); }

void dot_rows(const float* rows, int64_t n_rows, int64_t len, const float* x, float* out) {
  active_dot_kernels().dot_rows(rows, n_rows, len, x, out);
}

void axpy_rows(const float* rows, int64_t n_rows, int64_t len, const float* a, float* y) {
  active_dot_kernels().axpy_rows(rows, n_rows, len, a, y);
}

void soft_cap(float* p, int64_t n, float cap) { active_dot_kernels().soft_cap(p, n, cap); }

void exp_shifted(float* p, int64_t n, float shift) { active_dot_kernels().exp_shifted(p, n, shift); }

}  // namespace grok
