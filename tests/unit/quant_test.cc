#include "core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

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

}  // namespace
}  // namespace grok
