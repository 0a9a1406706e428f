#include "core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "kernels/dequantize.h"
#include "test_support.h"

namespace grok {
namespace {

BlockQ8_0 block_at(const std::vector<std::byte>& q, size_t b) {
  BlockQ8_0 blk;
  std::memcpy(&blk, q.data() + b * sizeof(BlockQ8_0), sizeof(BlockQ8_0));
  return blk;
}

TEST(QuantQ8_0, LayoutOfOneBlock) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16) * 0.25f;  // max |x| = 4 at j = 0
  const auto q = quantize_q8_0(x.data(), 32);
  ASSERT_EQ(q.size(), 34u);
  const BlockQ8_0 blk = block_at(q, 0);
  const float d = 4.0f / 127.0f;
  EXPECT_EQ(blk.d, f32_to_f16(d));
  EXPECT_EQ(blk.q[0], -127);
  EXPECT_EQ(blk.q[16], 0);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(blk.q[j], int8_t(std::round(x[j] / d))) << j;
}

TEST(QuantQ8_0, ZeroBlockHasZeroScale) {
  std::vector<float> x(64, 0.0f);
  x[40] = 1.0f;  // second block is not zero
  const auto q = quantize_q8_0(x.data(), 64);
  const BlockQ8_0 b0 = block_at(q, 0);
  EXPECT_EQ(b0.d, 0);
  for (int8_t v : b0.q) EXPECT_EQ(v, 0);
  EXPECT_EQ(block_at(q, 1).q[8], 127);
  std::vector<float> y(64, -1.0f);
  dequantize_q8_0(q.data(), y.data(), 64);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.0f);
  EXPECT_NEAR(y[40], 1.0f, 1e-3);
}

TEST(QuantQ8_0, RoundTripErrorIsHalfAStep) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  const int64_t n = 32 * 50;
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  const auto q = quantize_q8_0(x.data(), n);
  ASSERT_EQ(q.size(), size_t(n / 32 * 34));
  // Dequantise from an odd address: blocks in files are not 2-byte aligned.
  std::vector<std::byte> shifted(q.size() + 1);
  std::memcpy(shifted.data() + 1, q.data(), q.size());
  std::vector<float> y(n);
  dequantize_q8_0(shifted.data() + 1, y.data(), n);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float step = amax / 127.0f;
    // Half a step from rounding q, plus the f16 rounding of the scale (2^-11 relative) times |q| <= 127.
    for (int j = 0; j < 32; ++j)
      EXPECT_LE(std::fabs(x[b * 32 + j] - y[b * 32 + j]), step * (0.5f + 127.0f / 2048.0f) + 1e-6f);
  }
}

TEST(QuantQ8_0, NegationIsSymmetric) {
  std::vector<float> x(32), nx(32);
  for (int j = 0; j < 32; ++j) {
    x[j] = std::sin(float(j)) * 10.0f;
    nx[j] = -x[j];
  }
  const auto a = block_at(quantize_q8_0(x.data(), 32), 0);
  const auto b = block_at(quantize_q8_0(nx.data(), 32), 0);
  EXPECT_EQ(a.d, b.d);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(a.q[j], -b.q[j]);
}

TEST(QuantQ8_0, RejectsBadInput) {
  std::vector<float> x(32, 1.0f);
  EXPECT_THROW(quantize_q8_0(x.data(), 31), Error);
  EXPECT_THROW(quantize_q8_0(x.data(), -32), Error);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(quantize_q8_0(x.data(), 32), Error);
  x[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize_q8_0(x.data(), 32), Error);
  x[3] = 1e30f;  // scale beyond f16
  EXPECT_THROW(quantize_q8_0(x.data(), 32), Error);
  std::vector<float> y(32);
  std::vector<std::byte> q(34);
  EXPECT_THROW(dequantize_q8_0(q.data(), y.data(), 33), Error);
  EXPECT_TRUE(quantize_q8_0(x.data(), 0).empty());
}


// ---- Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K ----------------------------------

std::vector<float> gaussian(int64_t n, float stddev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<float> dequantized(DType t, const std::vector<std::byte>& q, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    e += double(x[i] - y[i]) * double(x[i] - y[i]);
    s += double(x[i]) * double(x[i]);
  }
  return std::sqrt(e / s);
}

template <typename Block>
std::vector<std::byte> bytes_of(const Block& b) {
  std::vector<std::byte> out(sizeof b);
  std::memcpy(out.data(), &b, sizeof b);
  return out;
}

// Hand-built blocks decoded by the layout as ggml documents it, so a
// nibble-order or scale-packing mistake fails here even if quantise and
// dequantise agree with each other.
TEST(QuantQ4_0, HandBuiltBlock) {
  BlockQ4_0 b{};
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t(j | ((15 - j) << 4));
  const auto y = dequantized(DType::Q4_0, bytes_of(b), 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * float(j - 8)) << j;            // low nibbles: elements 0..15
    EXPECT_EQ(y[j + 16], 0.5f * float(7 - j)) << j + 16;  // high nibbles: 16..31
  }
}

TEST(QuantQ4_K, HandBuiltBlock) {
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) sc[j] = 8 * j + 5, m[j] = 63 - 7 * j;  // j >= 4 need the top bits
  BlockQ4_K b{};
  b.d = f32_to_f16(0.25f);
  b.dmin = f32_to_f16(0.5f);
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = uint8_t(m[j] | ((m[j + 4] >> 4) << 6));
    b.scales[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
  auto level = [](int e) { return (e * 7 + e / 32) % 16; };
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) b.qs[32 * g + l] = uint8_t(level(64 * g + l) | (level(64 * g + 32 + l) << 4));
  const auto y = dequantized(DType::Q4_K, bytes_of(b), 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.25f * float(sc[e / 32]) * float(level(e)) - 0.5f * float(m[e / 32])) << e;
}

// The 5th bit of element j is bit j of qh as a little-endian word: byte
// j / 8, bit j % 8 (so elements 16..31 use qh[2] and qh[3]).
template <typename Block>
void pack_q5_by_hand(Block& b, int (*level)(int)) {
  for (int j = 0; j < 16; ++j) b.qs[j] = uint8_t((level(j) & 15) | ((level(j + 16) & 15) << 4));
  for (int j = 0; j < 32; ++j) b.qh[j / 8] = uint8_t(b.qh[j / 8] | ((level(j) >> 4) << (j % 8)));
}

TEST(QuantQ5_0, HandBuiltBlock) {
  BlockQ5_0 b{};
  b.d = f32_to_f16(0.5f);
  auto level = [](int j) { return (j * 13 + 5) % 32; };  // every 5th-bit pattern across the block
  pack_q5_by_hand(b, +level);
  const auto y = dequantized(DType::Q5_0, bytes_of(b), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.5f * float(level(j) - 16)) << j;
}

TEST(QuantQ5_1, HandBuiltBlock) {
  BlockQ5_1 b{};
  b.d = f32_to_f16(0.25f);
  b.m = f32_to_f16(-3.0f);
  auto level = [](int j) { return (j * 11 + 7) % 32; };
  pack_q5_by_hand(b, +level);
  const auto y = dequantized(DType::Q5_1, bytes_of(b), 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.25f * float(level(j)) - 3.0f) << j;
}

TEST(QuantQ5_K, HandBuiltBlock) {
  int sc[8], m[8];
  for (int j = 0; j < 8; ++j) sc[j] = 63 - 6 * j, m[j] = 8 * j + 7;  // j >= 4 need the top bits
  BlockQ5_K b{};
  b.d = f32_to_f16(0.125f);
  b.dmin = f32_to_f16(0.75f);
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = uint8_t(m[j] | ((m[j + 4] >> 4) << 6));
    b.scales[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
  auto level = [](int e) { return (e * 7 + e / 32 + e / 64) % 32; };
  for (int g = 0; g < 4; ++g)
    for (int l = 0; l < 32; ++l) {
      const int lo = level(64 * g + l), hi = level(64 * g + 32 + l);
      b.qs[32 * g + l] = uint8_t((lo & 15) | ((hi & 15) << 4));
      b.qh[l] = uint8_t(b.qh[l] | ((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
    }
  const auto y = dequantized(DType::Q5_K, bytes_of(b), 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.125f * float(sc[e / 32]) * float(level(e)) - 0.75f * float(m[e / 32])) << e;
}

TEST(QuantQ6_K, HandBuiltBlock) {
  BlockQ6_K b{};
  b.d = f32_to_f16(0.125f);
  for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(j * 9 - 70);  // negative and positive
  auto level = [](int e) { return (e * 5 + 3) % 64; };              // 6 bits, stored with +32
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int q0 = level(128 * h + l), q1 = level(128 * h + 32 + l);
      const int q2 = level(128 * h + 64 + l), q3 = level(128 * h + 96 + l);
      b.ql[64 * h + l] = uint8_t((q0 & 15) | ((q2 & 15) << 4));
      b.ql[64 * h + 32 + l] = uint8_t((q1 & 15) | ((q3 & 15) << 4));
      b.qh[32 * h + l] = uint8_t((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
    }
  const auto y = dequantized(DType::Q6_K, bytes_of(b), 256);
  for (int e = 0; e < 256; ++e)
    EXPECT_EQ(y[e], 0.125f * float(b.scales[e / 16]) * float(level(e) - 32)) << e;
}

TEST(QuantQ4_0, ExtremeValueIsExactAndErrorIsHalfAStep) {
  const int64_t n = 32 * 64;
  const auto x = gaussian(n, 2.0f, 11);
  const auto q = quantize(DType::Q4_0, x.data(), n);
  ASSERT_EQ(q.size(), size_t(n / 32 * 18));
  const auto y = dequantized(DType::Q4_0, q, n);
  for (int64_t b = 0; b < n / 32; ++b) {
    int64_t at = b * 32;
    for (int64_t i = b * 32; i < b * 32 + 32; ++i)
      if (std::fabs(x[i]) > std::fabs(x[at])) at = i;
    const float d = std::fabs(x[at]) / 8;
    // The value of largest magnitude is level -8 exactly (up to d's f16 rounding).
    EXPECT_NEAR(y[at], x[at], d * 8.0f / 2048.0f) << b;
    for (int64_t i = b * 32; i < b * 32 + 32; ++i) {
      // Half a step plus d's f16 rounding times |q - 8| <= 8; values of the
      // other sign beyond level 7 lose up to a whole step.
      const bool clipped = x[i] * x[at] < 0 && std::fabs(x[i]) > 7 * d;
      EXPECT_LE(std::fabs(x[i] - y[i]), d * ((clipped ? 1.0f : 0.5f) + 8.0f / 2048.0f) + 1e-6f) << i;
    }
  }
}

// Relative RMS error on Gaussian data, with a little room over what was
// measured here: Q8_0 0.0054, Q4_0 0.0859, Q5_0 0.0427, Q5_1 0.0378, Q4_K
// 0.0714, Q5_K 0.0359, Q6_K 0.0167 (ggml's reference quantisers on the same
// kind of data: Q4_0, Q5_0 and Q5_1 the same bytes, Q4_K 0.0712, Q6_K 0.0177).
TEST(QuantFormats, GaussianRoundTripError) {
  const int64_t n = 256 * 256;
  const auto x = gaussian(n, 0.02f, 5);
  const struct {
    DType t;
    double bound;
  } cases[] = {{DType::Q8_0, 0.006}, {DType::Q4_0, 0.09},  {DType::Q5_0, 0.045}, {DType::Q5_1, 0.04},
               {DType::Q4_K, 0.075}, {DType::Q5_K, 0.038}, {DType::Q6_K, 0.018}};
  for (const auto& c : cases) {
    const auto q = quantize(c.t, x.data(), n);
    ASSERT_EQ(q.size(), dtype_bytes(c.t, n));
    const double err = relative_rms_error(x, dequantized(c.t, q, n));
    std::printf("%s: relative RMS error %.4f\n", std::string(dtype_name(c.t)).c_str(), err);
    EXPECT_LT(err, c.bound) << dtype_name(c.t);
    EXPECT_GT(err, c.bound / 4) << dtype_name(c.t) << ": suspiciously exact";
  }
}

TEST(QuantFormats, SpecialBlocks) {
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const int64_t n = 768;
    SCOPED_TRACE(std::string(dtype_name(t)));
    std::vector<float> zeros(n, 0.0f);
    for (float v : dequantized(t, quantize(t, zeros.data(), n), n)) ASSERT_EQ(v, 0.0f);
    // Super-block 0: one-signed data with an offset (Q4_K's min); 1: a
    // constant run among small values; 2: one outlier among tiny values.
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = i < 256 ? -1.0f - 0.01f * float(i % 37) : 0.001f * float(i % 5);
    for (int64_t i = 256; i < 288; ++i) x[i] = 0.75f;
    x[600] = 40.0f;
    const auto y = dequantized(t, quantize(t, x.data(), n), n);
    const std::vector<float> head(x.begin(), x.begin() + 512), yhead(y.begin(), y.begin() + 512);
    EXPECT_LT(relative_rms_error(head, yhead), t == DType::Q4_0 ? 0.12 : 0.05);
    for (int64_t i = 256; i < 288; ++i) EXPECT_NEAR(y[i], 0.75f, 0.02f) << i;
    EXPECT_NEAR(y[600], 40.0f, 40.0f / 512);
    for (int64_t i = 512; i < n; ++i) EXPECT_NEAR(y[i], x[i], 40.0f / 8 / 2) << i;
  }
}

TEST(QuantFormats, NegationKeepsMagnitudes) {
  // Q4_0 and Q6_K are symmetric up to their extra negative level, so -x
  // must come back with (nearly) the same error as x.
  const auto x = gaussian(1024, 1.0f, 3);
  std::vector<float> nx(x.size());
  for (size_t i = 0; i < x.size(); ++i) nx[i] = -x[i];
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const double a = relative_rms_error(x, dequantized(t, quantize(t, x.data(), 1024), 1024));
    const double b = relative_rms_error(nx, dequantized(t, quantize(t, nx.data(), 1024), 1024));
    EXPECT_NEAR(a, b, 0.1 * a) << dtype_name(t);
  }
}

TEST(QuantFormats, DequantizeFromOddAddressesAndF16Fallbacks) {
  const auto x = gaussian(512, 1.0f, 9);
  for (DType t : {DType::F16, DType::BF16, DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    const auto q = quantize(t, x.data(), 512);
    std::vector<std::byte> shifted(q.size() + 1);
    std::memcpy(shifted.data() + 1, q.data(), q.size());
    std::vector<float> a(512), b(512);
    dequantize_row(t, q.data(), a.data(), 512);
    dequantize_row(t, shifted.data() + 1, b.data(), 512);
    EXPECT_EQ(a, b) << dtype_name(t);
  }
}

TEST(QuantFormats, RejectBadInput) {
  std::vector<float> x(512, 1.0f);
  for (DType t : {DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    SCOPED_TRACE(std::string(dtype_name(t)));
    test::expect_error([&] { quantize(t, x.data(), dtype_block_elems(t) + 1); }, "whole number");
    x[300] = std::numeric_limits<float>::quiet_NaN();
    test::expect_error([&] { quantize(t, x.data(), 512); }, "value 300 is not finite");
    x[300] = 1e30f;
    test::expect_error([&] { quantize(t, x.data(), 512); }, "too large for an f16 scale");
    x[300] = 1.0f;
    std::vector<std::byte> q(dtype_bytes(t, 512));
    std::vector<float> y(512);
    EXPECT_THROW(dequantize_row(t, q.data(), y.data(), 511), Error);
  }
  test::expect_error([&] { quantize(DType::I8, x.data(), 32); }, "I8");
}

TEST(QuantFormats, GgufWriteReadEveryType) {
  const auto x = gaussian(4 * 512, 0.5f, 21);
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0, DType::Q4_0,
                         DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K};
  GgufWriter w;
  for (DType t : types) w.add_tensor(std::string("w.") + std::string(dtype_name(t)), t, {4, 512}, quantize(t, x.data(), 4 * 512));
  const std::string path = test::temp_dir() + "/every-type.gguf";
  w.write(path);
  const GgufFile g = GgufFile::open(path);
  for (DType t : types) {
    const TensorInfo* ti = g.tensors().find(std::string("w.") + std::string(dtype_name(t)));
    ASSERT_NE(ti, nullptr);
    EXPECT_EQ(ti->dtype, t);
    EXPECT_EQ(ti->shape, (std::vector<int64_t>{4, 512}));
    const auto q = quantize(t, x.data(), 4 * 512);
    ASSERT_EQ(ti->nbytes, q.size());
    EXPECT_EQ(std::memcmp(ti->data, q.data(), q.size()), 0) << dtype_name(t);
    std::vector<float> y(4 * 512);
    for (int r = 0; r < 4; ++r) dequantize_row(t, ti->data + r * dtype_bytes(t, 512), y.data() + r * 512, 512);
    EXPECT_LT(relative_rms_error(x, y), 0.12) << dtype_name(t);
  }
  // Rows must be whole blocks of the type: 64 is not a Q4_K super-block.
  GgufWriter bad;
  test::expect_error([&] { bad.add_tensor("w", DType::Q4_K, {4, 64}, std::vector<std::byte>(144)); }, "not whole Q4_K blocks");
}

}  // namespace
}  // namespace grok
