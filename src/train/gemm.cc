#include "train/gemm.h"

#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"

namespace grok {

#define GROK_GEMM_DECL(ns)                                                                                 \
  namespace ns {                                                                                           \
  void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, \
                int64_t ldb, float* C, int64_t ldc, bool accumulate);                                      \
  }
GROK_GEMM_DECL(train_generic)
#if defined(__x86_64__)
GROK_GEMM_DECL(train_avx2)
GROK_GEMM_DECL(train_avx512)
#endif
#undef GROK_GEMM_DECL

void gemm_on(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
#if defined(__x86_64__)
  if (isa == Isa::Avx512) return train_avx512::gemm_f32(M, N, K, A, a_rs, a_cs, B, ldb, C, ldc, accumulate);
  if (isa == Isa::Avx2) return train_avx2::gemm_f32(M, N, K, A, a_rs, a_cs, B, ldb, C, ldc, accumulate);
#endif
  train_generic::gemm_f32(M, N, K, A, a_rs, a_cs, B, ldb, C, ldc, accumulate);
}

void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
          int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  static const Isa isa = active_isa();
  gemm_on(isa, M, N, K, A, a_rs, a_cs, B, ldb, C, ldc, accumulate);
}

// Double precision exists for the finite-difference tests: plain loops.
void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t a_rs, int64_t a_cs, const double* B,
          int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = accumulate ? C[i * ldc + j] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += A[i * a_rs + k * a_cs] * B[k * ldb + j];
      C[i * ldc + j] = s;
    }
}

template <class T>
void gemm(ThreadPool* pool, int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  if (!pool || pool->size() == 1 || M * N * K < (1 << 17))
    return gemm(M, N, K, A, a_rs, a_cs, B, ldb, C, ldc, accumulate);
  // About four blocks a thread: row bands in multiples of the kernel's 6
  // rows, and, when rows alone are too few, column bands in multiples of 64
  // (a multiple of every kernel's tile width, so each column keeps its
  // arithmetic).
  const int64_t target = int64_t(pool->size()) * 4;
  const int64_t row_bands = std::min<int64_t>((M + 5) / 6, target);
  const int64_t col_bands = std::min<int64_t>((N + 63) / 64, std::max<int64_t>(1, target / row_bands));
  const int64_t rows = ((M + row_bands - 1) / row_bands + 5) / 6 * 6;
  const int64_t cols = ((N + col_bands - 1) / col_bands + 63) / 64 * 64;
  const int64_t nr = (M + rows - 1) / rows, nc = (N + cols - 1) / cols;
  pool->parallel_for(nr * nc, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t i0 = (t / nc) * rows, j0 = (t % nc) * cols;
      const int64_t m = std::min(rows, M - i0), n = std::min(cols, N - j0);
      gemm(m, n, K, A + i0 * a_rs, a_rs, a_cs, B + j0, ldb, C + i0 * ldc + j0, ldc, accumulate);
    }
  });
}

template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst) {
  constexpr int64_t kTile = 32;  // both sides stay in L1
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * ld_src + c];
    }
}

template <class T>
void transpose(ThreadPool* pool, const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst) {
  constexpr int64_t kBand = 32;  // rows a task: the tile height, so each task writes whole tiles
  if (!pool || pool->size() == 1 || rows * cols < (1 << 16)) return transpose(src, rows, cols, ld_src, dst);
  pool->parallel_for((rows + kBand - 1) / kBand, [&](int64_t b, int64_t e, int) {
    for (int64_t band = b; band < e; ++band) {
      const int64_t r0 = band * kBand, r1 = std::min(rows, r0 + kBand);
      for (int64_t c0 = 0; c0 < cols; c0 += kBand) {
        const int64_t c1 = std::min(cols, c0 + kBand);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * ld_src + c];
      }
    }
  });
}

template void gemm<float>(ThreadPool*, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                          int64_t, float*, int64_t, bool);
template void gemm<double>(ThreadPool*, int64_t, int64_t, int64_t, const double*, int64_t, int64_t, const double*,
                           int64_t, double*, int64_t, bool);
template void transpose<float>(const float*, int64_t, int64_t, int64_t, float*);
template void transpose<double>(const double*, int64_t, int64_t, int64_t, double*);
template void transpose<float>(ThreadPool*, const float*, int64_t, int64_t, int64_t, float*);
template void transpose<double>(ThreadPool*, const double*, int64_t, int64_t, int64_t, double*);

}  // namespace grok
