// Every kernel against an obviously right version on random inputs.
#include <atomic>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/dtype.h"
#include "core/quant.h"
#include "kernels/cpu/dot.h"
#include "kernels/dequantize.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"

namespace grok {
namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Stores `values` (rows × cols) in `dtype`.
std::vector<std::byte> encode(DType dtype, const std::vector<float>& values, int64_t rows, int64_t cols) {
  std::vector<std::byte> out;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = &values[size_t(r * cols)];
    if (dtype_block_elems(dtype) > 1) {
      const auto q = quantize(dtype, row, cols);
      out.insert(out.end(), q.begin(), q.end());
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) {
      uint16_t h = dtype == DType::F16 ? f32_to_f16(row[c]) : f32_to_bf16(row[c]);
      if (dtype == DType::F32) {
        const auto* p = reinterpret_cast<const std::byte*>(&row[c]);
        out.insert(out.end(), p, p + 4);
      } else {
        const auto* p = reinterpret_cast<const std::byte*>(&h);
        out.insert(out.end(), p, p + 2);
      }
    }
  }
  return out;
}

class MatmulTest : public ::testing::TestWithParam<DType> {};

TEST_P(MatmulTest, MatchesDoubleReferenceOnRandomInputs) {
  std::mt19937 rng(1);
  ThreadPool pool(3);
  for (auto [rows, cols, tokens] : {std::tuple{1, 32, 1}, {37, 64, 5}, {130, 96, 17}, {8, 4096, 2}}) {
    const auto w_f = random_vec(size_t(rows * cols), rng, 0.1f);
    const auto bytes = encode(GetParam(), w_f, rows, cols);
    const WeightMatrix w{GetParam(), rows, cols, bytes.data(), dtype_bytes(GetParam(), cols)};
    const auto x = random_vec(size_t(tokens * cols), rng);
    std::vector<float> y(size_t(tokens * rows)), y_ref(y.size());
    matmul(w, x.data(), tokens, y.data(), pool);
    matmul_reference(w, x.data(), tokens, y_ref.data());
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], y_ref[i], 1e-5 * std::sqrt(double(cols))) << rows << "x" << cols << " at " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, MatmulTest,
                         ::testing::Values(DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Dequantize, EveryDtypeDecodesWhatWasEncoded) {
  std::mt19937 rng(2);
  const auto v = random_vec(64, rng);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0}) {
    const auto bytes = encode(t, v, 1, 64);
    std::vector<float> out(64);
    dequantize_row(t, bytes.data(), out.data(), 64);
    const double tol = t == DType::F32 ? 0 : t == DType::F16 ? 2e-3 : t == DType::BF16 ? 2e-2 : 3e-2;
    for (size_t i = 0; i < 64; ++i) EXPECT_NEAR(out[i], v[i], tol * (1 + std::abs(v[i]))) << dtype_name(t);
  }
}

TEST(Dtype, HalfConversionsRoundToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7c00);                // overflow to inf
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie rounds to even
  for (uint32_t h = 0; h < 0x7c00; ++h) ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bf16_to_f32(0x4049)), 0x4049);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie rounds to even
}

TEST(Ops, DotMatchesDouble) {
  std::mt19937 rng(3);
  for (int n : {0, 1, 15, 16, 17, 100, 1000}) {
    const auto a = random_vec(size_t(n), rng), b = random_vec(size_t(n), rng);
    double ref = 0;
    for (int i = 0; i < n; ++i) ref += double(a[size_t(i)]) * b[size_t(i)];
    EXPECT_NEAR(dot(a.data(), b.data(), n), ref, 1e-5 * std::sqrt(double(n) + 1)) << n;
  }
}

TEST(Ops, RmsNormMatchesDefinition) {
  std::mt19937 rng(4);
  const auto x = random_vec(96, rng, 3.0f), scale = random_vec(96, rng);
  std::vector<float> y(96);
  rms_norm(x.data(), scale.data(), 96, 1e-5f, y.data());
  double ms = 0;
  for (float v : x) ms += double(v) * v / 96;
  for (size_t i = 0; i < 96; ++i) EXPECT_NEAR(y[i], scale[i] * x[i] / std::sqrt(ms + 1e-5), 1e-5);
}

TEST(Ops, RopeRotatesHalvesByPositionTimesFrequency) {
  std::mt19937 rng(5);
  const int64_t hd = 16, pos = 1234;
  auto x = random_vec(size_t(hd), rng);
  const auto orig = x;
  std::vector<float> rotation(static_cast<size_t>(hd));
  rope_rotation(hd, pos, 10000.0f, rotation.data());
  rope_apply(x.data(), hd, rotation.data());
  for (int64_t j = 0; j < hd / 2; ++j) {
    const double a = double(pos) * std::pow(10000.0, -2.0 * double(j) / double(hd));
    EXPECT_NEAR(x[size_t(j)], orig[size_t(j)] * std::cos(a) - orig[size_t(j + hd / 2)] * std::sin(a), 1e-5);
    EXPECT_NEAR(x[size_t(j + hd / 2)], orig[size_t(j + hd / 2)] * std::cos(a) + orig[size_t(j)] * std::sin(a), 1e-5);
  }
  auto y = orig;
  rope_rotation(hd, 0, 10000.0f, rotation.data());
  rope_apply(y.data(), hd, rotation.data());
  EXPECT_EQ(y, orig);  // position 0 is the identity
}

TEST(Ops, SoftmaxAndGelu) {
  std::vector<float> x = {1.0f, 2.0f, 3.0f, -1e30f};
  softmax(x.data(), 4);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_NEAR(x[0], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(x[2], std::exp(3.0) / z, 1e-7);
  EXPECT_EQ(x[3], 0.0f);
  for (double v : {-5.0, -1.0, 0.0, 0.5, 3.0}) {
    const double ref = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(gelu_tanh(float(v)), ref, 1e-6) << v;
  }
}

TEST(ThreadPool, CoversEveryIndexOnceAndPropagatesErrors) {
  ThreadPool pool(4);
  for (int64_t n : {1, 3, 100, 1001}) {
    std::vector<int> hits(size_t(n), 0);
    pool.parallel_for(n, [&](int64_t b, int64_t e, int thread) {
      ASSERT_LT(thread, pool.size());
      for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
    });
    for (int h : hits) ASSERT_EQ(h, 1);
  }
  EXPECT_THROW(pool.parallel_for(10, [](int64_t b, int64_t, int) {
    if (b == 0) throw std::runtime_error("boom");
  }),
               std::runtime_error);
  int after = 0;
  pool.parallel_for(1, [&](int64_t, int64_t, int) { after = 1; });  // still usable
  EXPECT_EQ(after, 1);
}

// Many short jobs back to back, with threads that spin (the decode path) and
// with threads that always block (spin 0): a lost wake-up hangs the test, a
// chunk run twice or skipped breaks the sums.
TEST(ThreadPool, ManyShortJobsNeitherLoseNorRepeatWork) {
  for (auto spin : {ThreadPool::kDefaultSpin, std::chrono::microseconds(0)}) {
    ThreadPool pool(3, spin);
    std::vector<std::atomic<int64_t>> sums(size_t(pool.size()));
    int64_t expected = 0;
    for (int job = 0; job < 4000; ++job) {
      const int64_t n = 2 + job % 7;
      expected += n * (n - 1) / 2;
      pool.parallel_for(n, [&](int64_t b, int64_t e, int thread) {
        for (int64_t i = b; i < e; ++i) sums[size_t(thread)] += i;
      });
    }
    int64_t total = 0;
    for (auto& s : sums) total += s.load();
    EXPECT_EQ(total, expected) << "spin " << spin.count() << " us";
  }
}

}  // namespace
}  // namespace grok

namespace grok {
namespace {

// Every ISA path this CPU has, against the scalar (generic) kernels.
class DotKernelsTest : public ::testing::TestWithParam<Isa> {};

TEST_P(DotKernelsTest, EveryPathMatchesTheScalarKernels) {
  const DotKernels& fast = dot_kernels(GetParam());
  const DotKernels& ref = dot_kernels(Isa::Generic);
  std::mt19937 rng(11);
  for (int64_t n : {32, 64, 96, 1024, 4096 + 32}) {
    const auto w = random_vec(size_t(n), rng, 0.1f), x = random_vec(size_t(n), rng);
    const double tol = 1e-5 * std::sqrt(double(n));
    EXPECT_NEAR(fast.f32(w.data(), x.data(), n), ref.f32(w.data(), x.data(), n), tol) << n;
    std::vector<uint16_t> h(static_cast<size_t>(n)), b(static_cast<size_t>(n));
    for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_f16(w[i]), b[i] = f32_to_bf16(w[i]);
    EXPECT_NEAR(fast.f16(h.data(), x.data(), n), ref.f16(h.data(), x.data(), n), tol) << n;
    EXPECT_NEAR(fast.bf16(b.data(), x.data(), n), ref.bf16(b.data(), x.data(), n), tol) << n;
    // Odd lengths exercise the scalar tails of the float kernels.
    EXPECT_NEAR(fast.f32(w.data(), x.data(), n - 7), ref.f32(w.data(), x.data(), n - 7), tol) << n;

    const int64_t nb = n / 32;
    const auto wq = quantize_q8_0(w.data(), n);
    std::vector<BlockQ16Act> xq(static_cast<size_t>(nb)), xq_ref(static_cast<size_t>(nb));
    fast.quantize_act(x.data(), xq.data(), nb);
    ref.quantize_act(x.data(), xq_ref.data(), nb);
    for (int64_t k = 0; k < nb; ++k) {
      ASSERT_EQ(xq[size_t(k)].d, xq_ref[size_t(k)].d);
      ASSERT_EQ(xq[size_t(k)].sum, xq_ref[size_t(k)].sum);
      ASSERT_EQ(0, std::memcmp(xq[size_t(k)].q, xq_ref[size_t(k)].q, sizeof xq[size_t(k)].q)) << "block " << k;
    }
    std::vector<BlockQ8Act> x8(static_cast<size_t>(nb)), x8_ref(static_cast<size_t>(nb));
    fast.quantize_act8(x.data(), x8.data(), nb);
    ref.quantize_act8(x.data(), x8_ref.data(), nb);
    for (int64_t k = 0; k < nb; ++k) {
      ASSERT_EQ(x8[size_t(k)].d, x8_ref[size_t(k)].d);
      ASSERT_EQ(x8[size_t(k)].sum, x8_ref[size_t(k)].sum);
      ASSERT_EQ(0, std::memcmp(x8[size_t(k)].q, x8_ref[size_t(k)].q, sizeof x8[size_t(k)].q)) << "8-bit block " << k;
    }
    if (n >= 64) {  // a zero block and a block of exact halves (ties round to even)
      auto special = x;
      std::fill(special.begin(), special.begin() + 32, 0.0f);
      for (int i = 32; i < 64; ++i) special[size_t(i)] = (i == 32 ? 32767.0f : float(i - 32) + 0.5f) * (i % 2 ? -1.0f : 1.0f);
      std::vector<BlockQ16Act> sq(2), sq_ref(2);
      fast.quantize_act(special.data(), sq.data(), 2);
      ref.quantize_act(special.data(), sq_ref.data(), 2);
      for (int k = 0; k < 2; ++k) {
        ASSERT_EQ(sq[size_t(k)].d, sq_ref[size_t(k)].d);
        ASSERT_EQ(sq[size_t(k)].sum, sq_ref[size_t(k)].sum);
        ASSERT_EQ(0, std::memcmp(sq[size_t(k)].q, sq_ref[size_t(k)].q, sizeof sq[size_t(k)].q)) << "special block " << k;
      }
      // 8-bit ties: a block whose largest value is 127 steps to exact halves.
      for (int i = 32; i < 64; ++i) special[size_t(i)] = (i == 32 ? 127.0f : float(i - 32) + 0.5f) * (i % 2 ? -1.0f : 1.0f);
      std::vector<BlockQ8Act> s8(2), s8_ref(2);
      fast.quantize_act8(special.data(), s8.data(), 2);
      ref.quantize_act8(special.data(), s8_ref.data(), 2);
      for (int k = 0; k < 2; ++k) {
        ASSERT_EQ(s8[size_t(k)].d, s8_ref[size_t(k)].d);
        ASSERT_EQ(s8[size_t(k)].sum, s8_ref[size_t(k)].sum);
        ASSERT_EQ(0, std::memcmp(s8[size_t(k)].q, s8_ref[size_t(k)].q, sizeof s8[size_t(k)].q)) << "special 8-bit block " << k;
      }
    }
    const auto* wb = reinterpret_cast<const BlockQ8_0*>(wq.data());
    // Integer block sums are exact; only the fp32 scaling order differs.
    const double itol = 1e-6 * std::sqrt(double(n)) * 4;
    EXPECT_NEAR(fast.q8_0(wb, xq.data(), nb), ref.q8_0(wb, xq.data(), nb), itol) << n;
    const auto w4 = quantize(DType::Q4_0, w.data(), n);
    const auto* w4b = reinterpret_cast<const BlockQ4_0*>(w4.data());
    EXPECT_NEAR(fast.q4_0(w4b, xq.data(), nb), ref.q4_0(w4b, xq.data(), nb), itol) << n;
  }
}

TEST_P(DotKernelsTest, TilesMatchTheScalarKernelsOnEveryEdge) {
  const DotKernels& fast = dot_kernels(GetParam());
  const DotKernels& ref = dot_kernels(Isa::Generic);
  std::mt19937 rng(13);
  const int rows = 6, tokens = 7;  // full 4×4 tiles, 4×1 and 1×1 edges
  const int64_t n = 256, nb = n / 32;
  const auto x = random_vec(size_t(tokens * n), rng);
  std::vector<BlockQ16Act> xq(static_cast<size_t>(tokens * nb));
  ref.quantize_act(x.data(), xq.data(), tokens * nb);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    const auto w = random_vec(size_t(rows * n), rng, 0.1f);
    const auto wq = quantize(t, w.data(), rows * n);
    const uint64_t row_bytes = dtype_bytes(t, n);
    std::vector<float> y(size_t(rows * tokens)), y_ref(y.size());
    auto tile = t == DType::Q8_0 ? fast.q8_0_tile : fast.q4_0_tile;
    auto tile_ref = t == DType::Q8_0 ? ref.q8_0_tile : ref.q4_0_tile;
    for (int r = 0; r < rows; r += kTileRows)
      for (int k = 0; k < tokens; k += kTileTokens) {
        const int nr = std::min(kTileRows, rows - r), nt = std::min(kTileTokens, tokens - k);
        tile(wq.data() + r * row_bytes, row_bytes, nr, xq.data() + k * nb, nt, nb, &y[size_t(k * rows + r)], rows);
        tile_ref(wq.data() + r * row_bytes, row_bytes, nr, xq.data() + k * nb, nt, nb, &y_ref[size_t(k * rows + r)],
                 rows);
      }
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], y_ref[i], 1e-4) << dtype_name(t) << " at " << i;
  }
}

// The vector GELU against the double formula, over the range where it
// matters and far beyond (saturation both ways), every tail length, and
// a position-independent result (the padded tail uses the vector code).
TEST_P(DotKernelsTest, GeluMulMatchesTheDoubleFormula) {
  const DotKernels& k = dot_kernels(GetParam());
  std::vector<float> x;
  for (double v = -12; v <= 12; v += 0.001) x.push_back(float(v));
  for (float v : {-1e30f, -1e4f, -100.0f, -30.0f, -0.0f, 0.0f, 1e-30f, 30.0f, 100.0f, 1e4f, 1e30f}) x.push_back(v);
  for (int64_t n : {int64_t(x.size()), int64_t(1), int64_t(7), int64_t(17), int64_t(33)}) {
    std::vector<float> h(x.begin(), x.begin() + n);
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = 1.0f + float(i % 5) * 0.25f;
    k.gelu_mul(h.data(), v.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double xi = x[size_t(i)];
      const double ref =
          0.5 * xi * (1 + std::tanh(std::sqrt(2 / M_PI) * (xi + 0.044715 * xi * xi * xi))) * v[size_t(i)];
      ASSERT_NEAR(h[size_t(i)], ref, 1e-6 * std::max(1.0, std::fabs(ref))) << "x = " << xi << ", n = " << n;
    }
  }
  // Element 3 of a 4-long array (the tail) equals element 19 of a 20-long one (the body).
  std::vector<float> a(20, 0.7f), b(4, 0.7f), ones(20, 1.0f);
  k.gelu_mul(a.data(), ones.data(), 20);
  k.gelu_mul(b.data(), ones.data(), 4);
  EXPECT_EQ(a[19], b[3]);
}

// Attention's vector cap and exponential against double formulas: both
// sides of the cap's polynomial/exponential switch, saturation, every tail.
TEST_P(DotKernelsTest, SoftCapAndExpMatchTheDoubleFormulas) {
  const DotKernels& k = dot_kernels(GetParam());
  std::vector<float> x;
  for (double v = -400; v <= 400; v += 0.0137) x.push_back(float(v));
  for (float v : {-1e30f, -0.0f, 0.0f, 1e-30f, 1e-6f, 18.75f, 18.76f, 1e30f}) x.push_back(v);
  const float cap = 30.0f;
  for (int64_t n : {int64_t(x.size()), int64_t(5), int64_t(23)}) {
    std::vector<float> p(x.begin(), x.begin() + n);
    k.soft_cap(p.data(), n, cap);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = cap * std::tanh(double(x[size_t(i)]) / cap);
      ASSERT_NEAR(p[size_t(i)], ref, 1e-6 * std::max(1.0, std::fabs(ref))) << "cap of " << x[size_t(i)];
    }
    std::vector<float> e(x.begin(), x.begin() + n);
    for (float& v : e) v = std::clamp(v, -150.0f, 80.0f);  // softmax: p - shift <= 0; a margin above
    const std::vector<float> in = e;
    k.exp_shifted(e.data(), n, 60.0f);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(double(in[size_t(i)] - 60.0f));  // the float difference, as specified
      ASSERT_NEAR(e[size_t(i)], ref, 3e-7 * ref + 1e-37) << "exp of " << in[size_t(i)] << " - 60";
    }
  }
}

// Attention's weighted sum of values: y += a·x against double arithmetic,
// every tail length, and the same value for an element wherever it lies.
TEST_P(DotKernelsTest, AxpyMatchesDoubleArithmetic) {
  const DotKernels& k = dot_kernels(GetParam());
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(16), int64_t(33), int64_t(64), int64_t(257)}) {
    std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
    for (float& v : x) v = u(rng);
    for (float& v : y) v = u(rng);
    const float a = u(rng);
    const std::vector<float> y0 = y;
    k.axpy(a, x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = double(y0[size_t(i)]) + double(a) * double(x[size_t(i)]);
      ASSERT_NEAR(y[size_t(i)], ref, 1e-6 * std::max(1.0, std::fabs(ref))) << "n = " << n << ", i = " << i;
    }
  }
  std::vector<float> x(20, 0.3f), a(20, 1.1f), b(4, 1.1f);
  k.axpy(0.7f, x.data(), a.data(), 20);
  k.axpy(0.7f, x.data(), b.data(), 4);
  EXPECT_EQ(a[19], b[3]);
}

// Attention's block calls give what one call per key gives, bit for bit,
// and skip the rows whose weight is 0 (a NaN there must not reach y).
TEST_P(DotKernelsTest, RowCallsEqualOneCallPerRow) {
  const DotKernels& k = dot_kernels(GetParam());
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  for (int64_t len : {int64_t(16), int64_t(64), int64_t(72)}) {
    const int64_t n = 9;
    std::vector<float> rows(static_cast<size_t>(n * len)), x(static_cast<size_t>(len)), a(static_cast<size_t>(n));
    for (float& v : rows) v = u(rng);
    for (float& v : x) v = u(rng);
    for (float& v : a) v = u(rng);
    a[3] = 0.0f;
    rows[size_t(3 * len + 1)] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> out(static_cast<size_t>(n));
    k.dot_rows(rows.data(), n, len, x.data(), out.data());
    for (int64_t j = 0; j < n; ++j)
      if (j != 3) EXPECT_EQ(out[size_t(j)], k.f32(rows.data() + j * len, x.data(), len)) << "row " << j;
    std::vector<float> y(static_cast<size_t>(len), 0.5f);
    std::vector<float> expected = y;
    k.axpy_rows(rows.data(), n, len, a.data(), y.data());
    for (int64_t j = 0; j < n; ++j)
      if (j != 3) k.axpy(a[size_t(j)], rows.data() + j * len, expected.data(), len);
    for (int64_t i = 0; i < len; ++i) ASSERT_EQ(y[size_t(i)], expected[size_t(i)]) << "len " << len << ", " << i;
  }
}

// A token's result must not depend on the tokens it is batched with (a
// served request gives the same output whatever else is running): each
// token computed in a 6-row × 9-token call (full tiles and both edges)
// equals, bit for bit, the same token computed alone.
TEST_P(DotKernelsTest, TilesGiveEachTokenTheResultItGetsAlone) {
  const DotKernels& k = dot_kernels(GetParam());
  std::mt19937 rng(17);
  const int rows = 6, tokens = 9;
  const int64_t n = 512, nb = n / 32;
  const auto x = random_vec(size_t(tokens * n), rng);
  std::vector<BlockQ16Act> xq(size_t(tokens * nb));
  k.quantize_act(x.data(), xq.data(), tokens * nb);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const auto wq = encode(t, random_vec(size_t(rows * n), rng, 0.1f), rows, n);
    const uint64_t row_bytes = dtype_bytes(t, n);
    auto tile = t == DType::Q8_0 ? k.q8_0_tile : t == DType::Q4_0 ? k.q4_0_tile : t == DType::Q4_K ? k.q4_k_tile : k.q6_k_tile;
    std::vector<float> batched(size_t(rows * tokens)), alone(batched.size());
    for (int r = 0; r < rows; r += kTileRows) {
      const int nr = std::min(kTileRows, rows - r);
      for (int tk = 0; tk < tokens; tk += kTileTokens)  // as matmul calls it
        tile(wq.data() + r * row_bytes, row_bytes, nr, xq.data() + tk * nb, std::min(kTileTokens, tokens - tk), nb,
             &batched[size_t(tk * rows + r)], rows);
      for (int tk = 0; tk < tokens; ++tk)
        tile(wq.data() + r * row_bytes, row_bytes, nr, xq.data() + tk * nb, 1, nb, &alone[size_t(tk * rows + r)], rows);
    }
    for (size_t i = 0; i < batched.size(); ++i) ASSERT_EQ(batched[i], alone[i]) << dtype_name(t) << " at " << i;
  }
}

// K-quant rows (Q4_K, Q6_K) stored one byte past an aligned address, as in a
// mapped file: quantised from random floats (realistic blocks), or random
// bytes with f16 scales of either sign and a sane size (every level and
// sub-block scale pattern).
std::vector<std::byte> k_quant_rows(DType t, int64_t rows, int64_t cols, bool random_bytes, std::mt19937& rng) {
  const uint64_t bytes = dtype_bytes(t, rows * cols), block = uint64_t(dtype_block_bytes(t));
  std::vector<std::byte> out(1 + bytes);
  if (!random_bytes) {
    const auto q = encode(t, random_vec(size_t(rows * cols), rng, 0.1f), rows, cols);
    std::copy(q.begin(), q.end(), out.begin() + 1);
    return out;
  }
  for (auto& b : out) b = std::byte(rng());
  std::uniform_real_distribution<float> size(1e-4f, 2e-3f);
  std::uniform_int_distribution<int> sign(0, 1);
  auto put_f16 = [&](std::byte* p) {
    const uint16_t h = f32_to_f16((sign(rng) ? -1.0f : 1.0f) * size(rng));
    std::memcpy(p, &h, 2);
  };
  for (uint64_t k = 0; k < bytes / block; ++k) {
    std::byte* blk = out.data() + 1 + k * block;
    if (t == DType::Q4_K) {
      put_f16(blk + offsetof(BlockQ4_K, d));
      put_f16(blk + offsetof(BlockQ4_K, dmin));
    } else {
      put_f16(blk + offsetof(BlockQ6_K, d));
    }
  }
  return out;
}

// |d·sc·q| + |dmin·m| per weight (|value| for Q6_K): the size of the terms
// each output sums, which bounds both its fp32 rounding and the activation
// rounding's effect. Q4_K's is its own decoding with d := |d|, dmin := -|dmin|.
std::vector<float> k_quant_magnitudes(DType t, const std::byte* w, int64_t rows, int64_t cols) {
  const uint64_t bytes = dtype_bytes(t, rows * cols), block = uint64_t(dtype_block_bytes(t));
  std::vector<std::byte> abs_scales(w, w + bytes);
  if (t == DType::Q4_K)
    for (uint64_t k = 0; k < bytes / block; ++k) {
      std::byte* blk = abs_scales.data() + k * block;
      blk[offsetof(BlockQ4_K, d) + 1] &= std::byte(0x7f);
      blk[offsetof(BlockQ4_K, dmin) + 1] |= std::byte(0x80);
    }
  std::vector<float> mag(size_t(rows * cols));
  dequantize_row(t, abs_scales.data(), mag.data(), rows * cols);
  for (float& m : mag) m = std::abs(m);
  return mag;
}

// Tolerance of a K-quant output against the double reference: the 16-bit
// activation rounding moves each x by at most half its block's step δ, plus
// 2e-6 of Σ|term| for the fp32 scaling and summation:
//   |y - y_ref| <= Σ_i mag_i·(δ_i/2 + 2e-6·|x_i|).
constexpr double kKQuantFp32Tolerance = 2e-6;

double k_quant_tolerance(const float* mag, const float* x, const BlockQ16Act* xq, int64_t cols) {
  double tol = 0;
  for (int64_t i = 0; i < cols; ++i)
    tol += double(mag[i]) * (0.5 * double(xq[i / 32].d) + kKQuantFp32Tolerance * std::abs(double(x[i])));
  return tol;
}

TEST_P(DotKernelsTest, KQuantDotsMatchTheScalarKernels) {
  const DotKernels& fast = dot_kernels(GetParam());
  const DotKernels& ref = dot_kernels(Isa::Generic);
  std::mt19937 rng(14);
  for (DType t : {DType::Q4_K, DType::Q6_K})
    for (bool random_bytes : {false, true})
      for (int64_t n : {256, 512, 2048, 6144}) {
        const auto w = k_quant_rows(t, 1, n, random_bytes, rng);
        const auto mag = k_quant_magnitudes(t, w.data() + 1, 1, n);
        const auto x = random_vec(size_t(n), rng);
        const int64_t nb = n / 32;
        std::vector<BlockQ16Act> xq(static_cast<size_t>(nb));
        ref.quantize_act(x.data(), xq.data(), nb);
        // The integer sums are exact: only the fp32 scaling and summation differ.
        double tol = 0;
        for (int64_t i = 0; i < n; ++i)
          tol += kKQuantFp32Tolerance * mag[size_t(i)] * std::abs(xq[size_t(i / 32)].d * xq[size_t(i / 32)].q[i % 32]);
        auto dot = t == DType::Q4_K ? fast.q4_k : fast.q6_k;
        auto dot_ref = t == DType::Q4_K ? ref.q4_k : ref.q6_k;
        EXPECT_NEAR(dot(w.data() + 1, xq.data(), nb), dot_ref(w.data() + 1, xq.data(), nb), tol)
            << dtype_name(t) << (random_bytes ? " random bytes" : "") << " n " << n;
      }
}

// A random K-quant matrix (one byte past an aligned address) and tokens,
// with the double reference and what the tolerance needs.
struct KQuantCase {
  KQuantCase(DType t, int64_t rows_, int64_t cols_, int64_t tokens_, bool random_bytes, std::mt19937& rng)
      : rows(rows_), cols(cols_), tokens(tokens_), nb(cols_ / 32),
        bytes(k_quant_rows(t, rows_, cols_, random_bytes, rng)),
        w{t, rows_, cols_, bytes.data() + 1, dtype_bytes(t, cols_)},
        mag(k_quant_magnitudes(t, w.data, rows_, cols_)),
        x(random_vec(size_t(tokens_ * cols_), rng)),
        xq(size_t(tokens_ * nb)),
        y_ref(size_t(tokens_ * rows_)),
        name(cat(dtype_name(t), random_bytes ? " random bytes " : " ", rows_, "x", cols_)) {
    quantize_act_scalar(x.data(), xq.data(), tokens * nb);  // every ISA gives these blocks
    matmul_reference(w, x.data(), tokens, y_ref.data());
  }
  KQuantCase(const KQuantCase&) = delete;  // w points into bytes

  // Every output within k_quant_tolerance of the double reference.
  void expect_close(const std::vector<float>& y) const {
    for (int64_t tk = 0; tk < tokens; ++tk)
      for (int64_t r = 0; r < rows; ++r) {
        const double tol = k_quant_tolerance(&mag[size_t(r * cols)], &x[size_t(tk * cols)], &xq[size_t(tk * nb)], cols);
        ASSERT_NEAR(y[size_t(tk * rows + r)], y_ref[size_t(tk * rows + r)], tol)
            << name << " token " << tk << " of " << tokens << ", row " << r;
      }
  }

  int64_t rows, cols, tokens, nb;
  std::vector<std::byte> bytes;
  WeightMatrix w;
  std::vector<float> mag, x;
  std::vector<BlockQ16Act> xq;
  std::vector<float> y_ref;
  std::string name;
};

// Every ISA's K-quant tiles, run as matmul runs them, against the double
// reference; matmul itself (the active ISA, several threads) below.
TEST_P(DotKernelsTest, KQuantTilesMatchTheDoubleReference) {
  const DotKernels& k = dot_kernels(GetParam());
  std::mt19937 rng(15);
  for (DType t : {DType::Q4_K, DType::Q6_K})
    for (bool random_bytes : {false, true})
      for (auto [rows, cols] : {std::pair{int64_t(1), int64_t(256)}, {6, 768}, {37, 2048}})
        for (int64_t tokens : {1, 3, 5}) {
          const KQuantCase c(t, rows, cols, tokens, random_bytes, rng);
          std::vector<float> y(size_t(tokens * rows), NAN);
          auto tile = t == DType::Q4_K ? k.q4_k_tile : k.q6_k_tile;
          for (int64_t r = 0; r < rows; r += kTileRows)
            for (int64_t tk = 0; tk < tokens; tk += kTileTokens)
              tile(c.w.row(r), c.w.row_bytes, int(std::min<int64_t>(kTileRows, rows - r)), c.xq.data() + tk * c.nb,
                   int(std::min<int64_t>(kTileTokens, tokens - tk)), c.nb, &y[size_t(tk * rows + r)], rows);
          c.expect_close(y);
        }
}

TEST(MatmulKQuant, MatchesDoubleReference) {
  std::mt19937 rng(16);
  ThreadPool pool(3);
  for (DType t : {DType::Q4_K, DType::Q6_K})
    for (bool random_bytes : {false, true})
      for (auto [rows, cols] : {std::pair{int64_t(1), int64_t(256)}, {37, 512}, {130, 1024}, {20, 6144}})
        for (int64_t tokens : {1, 3, 5}) {
          const KQuantCase c(t, rows, cols, tokens, random_bytes, rng);
          std::vector<float> y(size_t(tokens * rows));
          matmul(c.w, c.x.data(), tokens, y.data(), pool);
          c.expect_close(y);
        }
}

TEST(DotKernels, ActivationBlocksAreWithinHalfAStepOfTheInput) {
  std::mt19937 rng(12);
  const auto x = random_vec(256, rng, 5.0f);
  std::vector<BlockQ16Act> q(8);
  quantize_act_scalar(x.data(), q.data(), 8);
  for (int b = 0; b < 8; ++b)
    for (int i = 0; i < 32; ++i)
      ASSERT_LE(std::abs(q[size_t(b)].d * q[size_t(b)].q[i] - x[size_t(b * 32 + i)]), q[size_t(b)].d * 0.5f + 1e-7f);
}

// DType::I8: the released checkpoint's int8 weights, stored input-major
// [cols][rows] with bf16 scales [blocks][rows], both at odd byte offsets (as
// in a mapped file).
struct I8Matrix {
  std::vector<std::byte> q, scales;
  WeightMatrix w;

  int8_t quant(int64_t r, int64_t i) const { return int8_t(q[size_t(1 + i * w.rows + r)]); }
  float scale(int64_t r, int64_t i) const {
    uint16_t h;
    std::memcpy(&h, &scales[size_t(1 + 2 * (i / w.scale_block_cols() * w.rows + r))], 2);
    return bf16_to_f32(h);
  }
  // W[r][i] by the definition: q·s (exact in fp32: 8-bit times 8-bit
  // significands), or the reference's bf16(q·s).
  float weight(int64_t r, int64_t i) const {
    const float v = float(quant(r, i)) * scale(r, i);
    return w.round_to_bf16 ? bf16_to_f32(f32_to_bf16(v)) : v;
  }
};

I8Matrix random_i8(int64_t rows, int64_t cols, int64_t blocks, bool round_to_bf16, std::mt19937& rng) {
  I8Matrix m;
  m.q.resize(size_t(rows * cols + 1));
  for (auto& b : m.q) b = std::byte(rng());
  // Scales of both signs over several binades, with full bf16 mantissas.
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> exp(-12, 2), sign(0, 1);
  m.scales.resize(size_t(2 * blocks * rows + 1));
  for (int64_t j = 0; j < blocks * rows; ++j) {
    const uint16_t h = f32_to_bf16((sign(rng) ? -1.0f : 1.0f) * std::ldexp(mant(rng), exp(rng)));
    std::memcpy(&m.scales[size_t(1 + 2 * j)], &h, 2);
  }
  m.w = WeightMatrix{DType::I8, rows, cols, m.q.data() + 1, uint64_t(rows)};
  m.w.scales = reinterpret_cast<const uint16_t*>(m.scales.data() + 1);
  m.w.scale_blocks = blocks;
  m.w.round_to_bf16 = round_to_bf16;
  return m;
}

// Relative tolerance of the fp32 kernels against double sums, per output, as
// a fraction of Σ|x·w| (the scale of the rounding errors of any order of summation).
constexpr double kI8Tolerance = 1e-5;

// Checks y[t·rows + r] for r in [r0, r1) against Σ_{i in [i0, i1)} x·W[r][i] in double.
void expect_i8_near(const I8Matrix& m, const std::vector<float>& x, int64_t tokens, const std::vector<float>& y,
                    int64_t i0, int64_t i1, int64_t r0, int64_t r1, const std::string& what) {
  const int64_t rows = m.w.rows, cols = m.w.cols;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t r = r0; r < r1; ++r) {
      double ref = 0, mag = 0;
      for (int64_t i = i0; i < i1; ++i) {
        const double p = double(x[size_t(t * cols + i)]) * m.weight(r, i);
        ref += p;
        mag += std::abs(p);
      }
      ASSERT_NEAR(y[size_t(t * rows + r)], ref, kI8Tolerance * mag + 1e-30)
          << what << " " << rows << "x" << cols << "/" << m.w.scale_blocks << (m.w.round_to_bf16 ? " bf16" : "")
          << " token " << t << " of " << tokens << ", output " << r << ", inputs [" << i0 << ", " << i1 << ")";
    }
}

// {rows (outputs), cols (inputs), scale blocks}: one block and several, odd
// block sizes, outputs not a multiple of 16 or 64, prompts long enough to
// pack in several chunks, decode split in row parts on and off block bounds.
const std::vector<std::tuple<int64_t, int64_t, int64_t>> kI8Shapes = {
    {1, 32, 1},     {15, 7, 1},      {37, 64, 4},    {130, 96, 3},   {300, 35, 5},
    {333, 1024, 8}, {192, 1024, 8}, {70, 2500, 1}, {100, 1536, 3}, {128, 48, 2}};

TEST_P(DotKernelsTest, I8ColumnsMatchTheDoubleReferenceOnEveryRange) {
  const DotKernels& k = dot_kernels(GetParam());
  std::mt19937 rng(21);
  for (auto [rows, cols, blocks] : kI8Shapes)
    for (bool round : {false, true})
      for (int64_t tokens : {1, 3, 4, 5, 9}) {
        const I8Matrix m = random_i8(rows, cols, blocks, round, rng);
        const auto x = random_vec(size_t(tokens * cols), rng);
        std::vector<float> y(size_t(tokens * rows), NAN);
        // Output ranges with ragged ends; all inputs.
        const int64_t a = std::min<int64_t>(rows, 5), b = std::max(a, rows - 3);
        for (auto [r0, r1] : {std::pair{int64_t(0), a}, {a, b}, {b, rows}})
          k.i8_columns(m.w, x.data(), tokens, 0, cols, r0, r1, y.data());
        expect_i8_near(m, x, tokens, y, 0, cols, 0, rows, std::string(isa_name(GetParam())));
        // Input ranges: inside one block, across blocks, empty.
        const int64_t i0 = cols / 3, i1 = cols - cols / 5;
        std::fill(y.begin(), y.end(), NAN);
        k.i8_columns(m.w, x.data(), tokens, i0, i1, 0, rows, y.data());
        expect_i8_near(m, x, tokens, y, i0, i1, 0, rows, std::string(isa_name(GetParam())) + " input range");
        k.i8_columns(m.w, x.data(), tokens, i0, i0, 0, rows, y.data());
        for (float v : y) ASSERT_EQ(v, 0.0f);
      }
}

TEST(MatmulI8, MatchesDoubleReferenceWhateverTheThreadCount) {
  std::mt19937 rng(22);
  ThreadPool pool1(1), pool3(3);
  for (auto [rows, cols, blocks] : kI8Shapes)
    for (bool round : {false, true})
      for (int64_t tokens : {1, 3, 4, 5, 9}) {
        const I8Matrix m = random_i8(rows, cols, blocks, round, rng);
        const auto x = random_vec(size_t(tokens * cols), rng);
        std::vector<float> y(size_t(tokens * rows)), y1(y.size()), y_ref(y.size());
        matmul(m.w, x.data(), tokens, y.data(), pool3);
        expect_i8_near(m, x, tokens, y, 0, cols, 0, rows, "matmul");
        matmul_reference(m.w, x.data(), tokens, y_ref.data());
        expect_i8_near(m, x, tokens, y_ref, 0, cols, 0, rows, "matmul_reference");
        matmul(m.w, x.data(), tokens, y1.data(), pool1);
        ASSERT_EQ(y1, y) << rows << "x" << cols << " tokens " << tokens;  // same sums in the same order
      }
}

TEST(MatmulI8, RoundToBf16UsesTheRoundedWeights) {
  // q = 127, s = 1 + 2^-7: q·s = 127.9921875 needs 15 bits; bf16 keeps 8 and rounds it to 128.
  std::vector<std::byte> q = {std::byte(127)};
  const uint16_t s = f32_to_bf16(1.0f + std::ldexp(1.0f, -7));
  WeightMatrix w{DType::I8, 1, 1, q.data(), 1};
  w.scales = &s;
  ThreadPool pool(2);
  const float x = 1.0f;
  float y = 0, y_ref = 0;
  matmul(w, &x, 1, &y, pool);
  matmul_reference(w, &x, 1, &y_ref);
  EXPECT_EQ(y, 127.9921875f);
  EXPECT_EQ(y_ref, 127.9921875f);
  w.round_to_bf16 = true;
  matmul(w, &x, 1, &y, pool);
  matmul_reference(w, &x, 1, &y_ref);
  EXPECT_EQ(y, 128.0f);
  EXPECT_EQ(y_ref, 128.0f);

  // On a random matrix the two modes give clearly different outputs.
  std::mt19937 rng(23);
  I8Matrix m = random_i8(64, 256, 2, false, rng);
  const auto xs = random_vec(256, rng);
  std::vector<float> exact(64), rounded(64);
  matmul(m.w, xs.data(), 1, exact.data(), pool);
  m.w.round_to_bf16 = true;
  matmul(m.w, xs.data(), 1, rounded.data(), pool);
  int differ = 0;
  for (int64_t r = 0; r < 64; ++r) {
    double mag = 0;
    for (int64_t i = 0; i < 256; ++i) mag += std::abs(double(xs[size_t(i)]) * m.weight(r, i));
    differ += std::abs(exact[size_t(r)] - rounded[size_t(r)]) > 10 * kI8Tolerance * mag;
  }
  EXPECT_GT(differ, 32);
}

TEST(Dequantize, I8RowsEqualTheDefinitionExactly) {
  std::mt19937 rng(24);
  for (bool round : {false, true})
    for (auto [rows, cols, blocks] : {std::tuple{int64_t(150), int64_t(200), int64_t(5)}, {70, 129, 3}, {64, 64, 1}}) {
      const I8Matrix m = random_i8(rows, cols, blocks, round, rng);
      const int64_t r0 = rows > 64 ? 3 : 0, r1 = rows > 64 ? rows - 2 : rows;
      std::vector<float> out(size_t((r1 - r0) * cols));
      dequantize_rows(m.w, r0, r1, out.data());
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < cols; ++i)
          ASSERT_EQ(out[size_t((r - r0) * cols + i)], m.weight(r, i)) << r << "," << i << (round ? " bf16" : "");
      const auto all = to_f32(m.w);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < cols; ++i) ASSERT_EQ(all[size_t(r * cols + i)], m.weight(r, i)) << r << "," << i;
    }
  // Row-major dtypes: dequantize_row per row.
  const auto v = random_vec(3 * 64, rng);
  const auto bytes = encode(DType::Q8_0, v, 3, 64);
  const WeightMatrix w{DType::Q8_0, 3, 64, bytes.data(), dtype_bytes(DType::Q8_0, 64)};
  std::vector<float> rows(128), row(64);
  dequantize_rows(w, 1, 3, rows.data());
  for (int64_t r = 1; r < 3; ++r) {
    dequantize_row(DType::Q8_0, w.row(r), row.data(), 64);
    for (size_t i = 0; i < 64; ++i) ASSERT_EQ(rows[size_t(r - 1) * 64 + i], row[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, DotKernelsTest, ::testing::ValuesIn(supported_isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace grok
