// The training matrix product against a plain triple loop, on every
// instruction-set path this CPU has, for sizes off the kernel's blocks and
// both layouts of A.
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
    for (auto [M, N, K] : {std::tuple{1, 1, 1}, {6, 64, 16}, {7, 9, 33}, {13, 5, 600}, {32, 100, 1100},
                           {20, 530, 40}, {5, 17, 0}})
      for (bool a_transposed : {false, true}) {
        // A(i, k) at i·a_rs + k·a_cs, either layout, strides wider than the rows
        const int64_t a_rs = a_transposed ? 1 : K + 3, a_cs = a_transposed ? M + 2 : 1;
        const int64_t ldb = N + 1, ldc = N + 2;
        std::vector<float> A(size_t(a_transposed ? std::max(K, 1) * a_cs : M * a_rs)), B(size_t(K * ldb + 1)),
            C(size_t(M * ldc)), C0;
        for (float& x : A) x = d(rng);
        for (float& x : B) x = d(rng);
        for (float& x : C) x = d(rng);
        C0 = C;
        for (bool acc : {false, true}) {
          C = C0;
          gemm_on(isa, M, N, K, A.data(), a_rs, a_cs, B.data(), ldb, C.data(), ldc, acc);
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double s = acc ? C0[size_t(i * ldc + j)] : 0.0;
              double mag = std::abs(s);
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(A[size_t(i * a_rs + k * a_cs)]) * double(B[size_t(k * ldb + j)]);
                s += p;
                mag += std::abs(p);
              }
              ASSERT_NEAR(C[size_t(i * ldc + j)], s, 1e-6 * mag + 1e-6)
                  << isa_name(isa) << " M" << M << " N" << N << " K" << K << " transposed A " << a_transposed
                  << " at " << i << "," << j;
            }
        }
      }
}

TEST(Gemm, ThreadSplitDoesNotChangeTheResult) {
  std::mt19937_64 rng(8);
  std::normal_distribution<float> d(0.f, 1.f);
  ThreadPool pool(3);
  // Many rows (split by rows), few rows and many columns (split by
  // columns too), and a column tail that is not a whole vector.
  for (auto [M, N, K] : {std::tuple{77, 40, 300}, {8, 1000, 700}, {9, 203, 300}}) {
    std::vector<float> A(size_t(M * K)), B(size_t(N * K)), C1(size_t(M * N)), C2(size_t(M * N));
    for (float& x : A) x = d(rng);
    for (float& x : B) x = d(rng);
    gemm<float>(nullptr, M, N, K, A.data(), K, 1, B.data(), N, C1.data(), N, false);
    gemm<float>(&pool, M, N, K, A.data(), K, 1, B.data(), N, C2.data(), N, false);
    EXPECT_EQ(C1, C2) << "M" << M << " N" << N << " K" << K;
  }
}

TEST(Gemm, Transpose) {
  const std::vector<double> src = {1, 2, 3, 9, 4, 5, 6, 9};  // 2 × 3, row stride 4
  std::vector<double> dst(6);
  transpose(src.data(), 2, 3, 4, dst.data());
  EXPECT_EQ(dst, (std::vector<double>{1, 4, 2, 5, 3, 6}));
}

}  // namespace
}  // namespace grok
