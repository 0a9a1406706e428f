#include "core/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant_util.h"

namespace grok {

// Block layouts are stored little-endian; scales are copied as-is.
static_assert(std::endian::native == std::endian::little, "quantisation code assumes a little-endian host");

using namespace quant_detail;

void quantize_q8_0(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q8_0", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    require_finite("quantize_q8_0", xb, 32, b * 32);
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    BlockQ8_0 blk{};
    blk.d = f16_scale("quantize_q8_0", d, b);
    if (d != 0.0f)
      for (int j = 0; j < 32; ++j) blk.q[j] = int8_t(std::clamp(std::round(xb[j] / d), -127.0f, 127.0f));
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

std::vector<std::byte> quantize_q8_0(const float* x, int64_t n) { return quantize(DType::Q8_0, x, n); }

void dequantize_q8_0(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q8_0", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    BlockQ8_0 blk;  // copy out: src need not be 2-byte aligned
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * float(blk.q[j]);
  }
}

void quantize_q4_0(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q4_0", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    require_finite("quantize_q4_0", xb, 32, b * 32);
    // The value of largest magnitude maps to q = 0 (-8 d): the 16 levels
    // -8..7 then reach it exactly, whichever its sign.
    float m = 0.0f;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(xb[j]) > std::fabs(m)) m = xb[j];
    const float d = m / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!std::isfinite(id)) id = 0.0f;  // d subnormal: it is 0 as f16 anyway
    BlockQ4_0 blk{};
    blk.d = f16_scale("quantize_q4_0", d, b);
    auto level = [&](float v) {
      // v * id lies in [-8, 8]; +8.5 then truncation rounds half up.
      return uint8_t(std::min(15, int(v * id + 8.5f)));
    };
    for (int j = 0; j < 16; ++j) blk.qs[j] = uint8_t(level(xb[j]) | (level(xb[j + 16]) << 4));
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_q4_0(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q4_0", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    BlockQ4_0 blk;
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    float* y = dst + b * 32;
    for (int j = 0; j < 16; ++j) {
      y[j] = d * float(int(blk.qs[j] & 0xf) - 8);
      y[j + 16] = d * float(int(blk.qs[j] >> 4) - 8);
    }
  }
}

namespace {

// Q5_0 / Q5_1 levels are 5 bits: the low nibble goes where Q4_0 puts it, the
// 5th bit of element j into bit j of the little-endian word qh.
template <typename Block>
void store_q5_level(Block& blk, uint32_t& qh, int j, int q) {
  blk.qs[j % 16] |= uint8_t((q & 0xf) << (j < 16 ? 0 : 4));
  qh |= uint32_t(q >> 4) << j;
}

template <typename Block>
int q5_level(const Block& blk, uint32_t qh, int j) {
  return ((blk.qs[j % 16] >> (j < 16 ? 0 : 4)) & 0xf) | int((qh >> j) & 1) << 4;
}

}  // namespace

void quantize_q5_0(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q5_0", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    require_finite("quantize_q5_0", xb, 32, b * 32);
    // As Q4_0: the value of largest magnitude is level 0 (-16 d).
    float m = 0.0f;
    for (int j = 0; j < 32; ++j)
      if (std::fabs(xb[j]) > std::fabs(m)) m = xb[j];
    const float d = m / -16.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!std::isfinite(id)) id = 0.0f;
    BlockQ5_0 blk{};
    blk.d = f16_scale("quantize_q5_0", d, b);
    uint32_t qh = 0;
    for (int j = 0; j < 32; ++j) store_q5_level(blk, qh, j, std::min(31, int(xb[j] * id + 16.5f)));
    std::memcpy(blk.qh, &qh, 4);
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_q5_0(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q5_0", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    BlockQ5_0 blk;
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * float(q5_level(blk, qh, j) - 16);
  }
}

void quantize_q5_1(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q5_1", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + b * 32;
    require_finite("quantize_q5_1", xb, 32, b * 32);
    const auto [lo, hi] = std::minmax_element(xb, xb + 32);
    const float min = *lo, d = (*hi - min) / 31.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    if (!std::isfinite(id)) id = 0.0f;
    BlockQ5_1 blk{};
    blk.d = f16_scale("quantize_q5_1", d, b);
    blk.m = f16_scale("quantize_q5_1", min, b);
    uint32_t qh = 0;
    // (x - min) * id lies in [0, 31]; +0.5 then truncation rounds half up.
    for (int j = 0; j < 32; ++j) store_q5_level(blk, qh, j, std::min(31, int((xb[j] - min) * id + 0.5f)));
    std::memcpy(blk.qh, &qh, 4);
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_q5_1(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q5_1", n, 32);
  for (int64_t b = 0; b < n / 32; ++b) {
    BlockQ5_1 blk;
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    const float d = f16_to_f32(blk.d), m = f16_to_f32(blk.m);
    for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * float(q5_level(blk, qh, j)) + m;
  }
}

void quantize(DType t, const float* x, int64_t n, std::byte* dst) {
  switch (t) {
    case DType::F32:
      if (n < 0) fail("quantize: negative count");
      std::memcpy(dst, x, size_t(n) * 4);
      return;
    case DType::F16:
    case DType::BF16:
      if (n < 0) fail("quantize: negative count");
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::Q8_0: return quantize_q8_0(x, n, dst);
    case DType::Q4_0: return quantize_q4_0(x, n, dst);
    case DType::Q4_K: return quantize_q4_k(x, n, dst);
    case DType::Q6_K: return quantize_q6_k(x, n, dst);
    case DType::Q5_0: return quantize_q5_0(x, n, dst);
    case DType::Q5_1: return quantize_q5_1(x, n, dst);
    case DType::Q5_K: return quantize_q5_k(x, n, dst);
    case DType::I8: break;
  }
  fail("quantize: cannot produce dtype ", dtype_name(t));
}

std::vector<std::byte> quantize(DType t, const float* x, int64_t n) {
  if (t == DType::I8) fail("quantize: cannot produce dtype ", dtype_name(t));
  std::vector<std::byte> out(dtype_bytes(t, n));  // checks n is whole blocks
  quantize(t, x, n, out.data());
  return out;
}

}  // namespace grok
