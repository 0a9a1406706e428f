// The one matrix product training needs, C = A·B (+ C), with B and C
// row-major and A read through two strides, so A may be an operand or the
// transpose of one in place: the three products of a linear layer's forward
// and backward passes (y = x·Wᵀ via a transposed copy of W, O(in·out)
// against the product's O(n·in·out), dx = dy·W, dW = dyᵀ·x) and
// attention's all take this form.
//
// Hand-written rather than BLAS: each C element is one multiply-add chain
// over k in order whatever the thread count or the split of C (training is
// then bit-identical for a seed on any number of threads), and the float
// path runs a register-blocked kernel per instruction set (train/cpu/).
#pragma once

#include <cstdint>

namespace grok {

class ThreadPool;

// C[M][N] = A·B (+ C's old value when `accumulate`), A(i, k) = A[i·a_rs + k·a_cs]
// (a_cs = 1: A row-major with row stride a_rs; a_rs = 1: Aᵀ stored row-major
// with row stride a_cs), B[K][N] with row stride ldb, C with row stride ldc.
// One thread.
void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
          int64_t ldb, float* C, int64_t ldc, bool accumulate);
void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t a_rs, int64_t a_cs, const double* B,
          int64_t ldb, double* C, int64_t ldc, bool accumulate);

// The float product on one instruction-set path (tests compare them all).
enum class Isa;
void gemm_on(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate);

// The same with C split into blocks over the pool's threads (pool may be
// null: one thread). The result does not depend on the split.
template <class T>
void gemm(ThreadPool* pool, int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B,
          int64_t ldb, T* C, int64_t ldc, bool accumulate);

// dst[cols][rows] = src[rows][cols]ᵀ (src row stride ld_src).
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst);
// The same with bands of rows on the pool's threads (pool may be null).
template <class T>
void transpose(ThreadPool* pool, const T* src, int64_t rows, int64_t cols, int64_t ld_src, T* dst);

}  // namespace grok
