// The training matrix product against a plain triple loop, on every
// instruction-set path this CPU has, for sizes off the kernel's blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "train/gemm.h"

namespace grok {
namespace {

TEST(Gemm, MatchesPlainLoopsOnEveryIsa) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  for (Isa isa : supported_isas())
    for (auto [M, N, K] : {std::tuple{1, 1, 1}, {4, 4, 16}, {7, 9, 33}, {13, 5, 600}, {32, 64, 1100}}) {
      const int64_t lda = K + 3, ldb = K + 1, ldc = N + 2;  // strides wider than the rows
      std::vector<float> A(size_t(M * lda)), B(size_t(N * ldb)), C(size_t(M * ldc)), C0;
      for (float& x : A) x = d(rng);
      for (float& x : B) x = d(rng);
      for (float& x : C) x = d(rng);
      C0 = C;
      for (bool acc : {false, true}) {
        C = C0;
        gemm_nt_on(isa, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, acc);
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j) {
            double s = acc ? C0[size_t(i * ldc + j)] : 0.0;
            double mag = std::abs(s);
            for (int64_t k = 0; k < K; ++k) {
              s += double(A[size_t(i * lda + k)]) * double(B[size_t(j * ldb + k)]);
              mag += std::abs(double(A[size_t(i * lda + k)]) * double(B[size_t(j * ldb + k)]));
            }
            ASSERT_NEAR(C[size_t(i * ldc + j)], s, 1e-6 * mag + 1e-6)
                << isa_name(isa) << " M" << M << " N" << N << " K" << K << " at " << i << "," << j;
          }
      }
    }
}

TEST(Gemm, ThreadSplitDoesNotChangeTheResult) {
  std::mt19937_64 rng(8);
  std::normal_distribution<float> d(0.f, 1.f);
  const int64_t M = 77, N = 40, K = 300;
  std::vector<float> A(size_t(M * K)), B(size_t(N * K)), C1(size_t(M * N)), C2(size_t(M * N));
  for (float& x : A) x = d(rng);
  for (float& x : B) x = d(rng);
  ThreadPool pool(3);
  gemm_nt<float>(nullptr, M, N, K, A.data(), K, B.data(), K, C1.data(), N, false);
  gemm_nt<float>(&pool, M, N, K, A.data(), K, B.data(), K, C2.data(), N, false);
  EXPECT_EQ(C1, C2);
}

TEST(Gemm, Transpose) {
  const std::vector<double> src = {1, 2, 3, 9, 4, 5, 6, 9};  // 2 × 3, row stride 4
  std::vector<double> dst(6);
  transpose(src.data(), 2, 3, 4, dst.data());
  EXPECT_EQ(dst, (std::vector<double>{1, 4, 2, 5, 3, 6}));
}

}  // namespace
}  // namespace grok
