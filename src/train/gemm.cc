#include "train/gemm.h"

#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"

namespace grok {

#define GROK_GEMM_DECL(ns)                                                                                    \
  namespace ns {                                                                                              \
  void gemm_nt_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, \
                   float* C, int64_t ldc, bool accumulate);                                                   \
  }
GROK_GEMM_DECL(train_generic)
#if defined(__x86_64__)
GROK_GEMM_DECL(train_avx2)
GROK_GEMM_DECL(train_avx512)
#endif
#undef GROK_GEMM_DECL

void gemm_nt_on(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
#if defined(__x86_64__)
  if (isa == Isa::Avx512) return train_avx512::gemm_nt_f32(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  if (isa == Isa::Avx2) return train_avx2::gemm_nt_f32(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
#endif
  train_generic::gemm_nt_f32(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
             int64_t ldc, bool accumulate) {
  static const Isa isa = active_isa();
  gemm_nt_on(isa, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

// Double precision exists for the finite-difference tests: plain loops.
void gemm_nt(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
             double* C, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = accumulate ? C[i * ldc + j] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += A[i * lda + k] * B[j * ldb + k];
      C[i * ldc + j] = s;
    }
}

template <class T>
void gemm_nt(ThreadPool* pool, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
             T* C, int64_t ldc, bool accumulate) {
  // Rows in multiples of 4 (the kernel's block), at least ~64 KFLOP a chunk.
  if (!pool || pool->size() == 1 || M < 8 || M * N * K < (1 << 16))
    return gemm_nt(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
  const int64_t chunks = std::min<int64_t>((M + 3) / 4, int64_t(pool->size()) * 4);
  const int64_t rows = ((M + chunks - 1) / chunks + 3) / 4 * 4;
  pool->parallel_for((M + rows - 1) / rows, [&](int64_t b, int64_t e, int) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t i0 = c * rows, m = std::min(rows, M - i0);
      gemm_nt(m, N, K, A + i0 * lda, lda, B, ldb, C + i0 * ldc, ldc, accumulate);
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

template void gemm_nt<float>(ThreadPool*, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                             float*, int64_t, bool);
template void gemm_nt<double>(ThreadPool*, int64_t, int64_t, int64_t, const double*, int64_t, const double*,
                              int64_t, double*, int64_t, bool);
template void transpose<float>(const float*, int64_t, int64_t, int64_t, float*);
template void transpose<double>(const double*, int64_t, int64_t, int64_t, double*);
template void transpose<float>(ThreadPool*, const float*, int64_t, int64_t, int64_t, float*);
template void transpose<double>(ThreadPool*, const double*, int64_t, int64_t, int64_t, double*);

}  // namespace grok
