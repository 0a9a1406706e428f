// The one matrix product training needs, C = A·Bᵀ (+ C), with both operands
// row-major and contiguous along the shared dimension K. The three products
// of a linear layer's forward and backward passes all take this form once
// the operand that is not contiguous along K has been transposed (transpose()),
// which costs O(rows·cols) against the product's O(M·N·K).
//
// Hand-written rather than BLAS: each C element is reduced in one fixed
// order whatever the thread count or the row split (training is then
// bit-identical for a seed on any number of threads), and the float path
// runs a register-blocked kernel per instruction set (train/cpu/).
#pragma once

#include <cstdint>

namespace grok {

class ThreadPool;

// C[M][N] = A[M][K]·B[N][K]ᵀ, plus C's old value when `accumulate`.
// lda/ldb/ldc are row strides in elements. One thread.
void gemm_nt(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
             float* C, int64_t ldc, bool accumulate);
void gemm_nt(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B, int64_t ldb,
             double* C, int64_t ldc, bool accumulate);

// The float product on one instruction-set path (tests compare them all).
enum class Isa;
void gemm_nt_on(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                float* C, int64_t ldc, bool accumulate);

// The same, with the rows of C split over the pool's threads (pool may be
// null: one thread). The result does not depend on the split.
template <class T>
void gemm_nt(ThreadPool* pool, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
             T* C, int64_t ldc, bool accumulate);

// dst[cols][rows] = src[rows][cols]ᵀ (src row stride ld_src).
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst);
// The same with bands of rows on the pool's threads (pool may be null).
template <class T>
void transpose(ThreadPool* pool, const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst);

}  // namespace grok
