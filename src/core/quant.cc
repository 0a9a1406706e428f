#include "core/quant.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"

namespace grok {

// The block layout is stored little-endian; we copy the scale bytes as-is.
static_assert(std::endian::native == std::endian::little, "Q8_0 code assumes a little-endian host");

namespace {
constexpr int64_t kBlock = 32;
constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
}  // namespace

std::vector<std::byte> quantize_q8_0(const float* x, int64_t n) {
  if (n < 0 || n % kBlock != 0)
    fail("quantize_q8_0: ", n, " values are not a whole number of 32-value blocks");
  const int64_t blocks = n / kBlock;
  std::vector<std::byte> out(size_t(blocks) * kBlockBytes);
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kBlock;
    float amax = 0.0f;
    for (int64_t j = 0; j < kBlock; ++j) {
      // Reject NaN/Inf here: they would make the scale meaningless and the
      // float->int8 conversion undefined.
      if (!std::isfinite(xb[j])) fail("quantize_q8_0: value ", b * kBlock + j, " is not finite");
      amax = std::max(amax, std::fabs(xb[j]));
    }
    const float d = amax / 127.0f;
    const uint16_t d16 = f32_to_f16(d);
    if ((d16 & 0x7c00) == 0x7c00) fail("quantize_q8_0: block ", b, " has values too large for an f16 scale");
    BlockQ8_0 blk{};
    blk.d = d16;
    if (d != 0.0f) {
      for (int64_t j = 0; j < kBlock; ++j) {
        const float q = std::round(xb[j] / d);
        blk.q[j] = int8_t(std::clamp(q, -127.0f, 127.0f));
      }
    }
    std::memcpy(out.data() + size_t(b) * kBlockBytes, &blk, kBlockBytes);
  }
  return out;
}

void dequantize_q8_0(const std::byte* src, float* dst, int64_t n) {
  if (n < 0 || n % kBlock != 0)
    fail("dequantize_q8_0: ", n, " values are not a whole number of 32-value blocks");
  for (int64_t b = 0; b < n / kBlock; ++b) {
    BlockQ8_0 blk;  // copy out: src need not be 2-byte aligned
    std::memcpy(&blk, src + size_t(b) * kBlockBytes, kBlockBytes);
    const float d = f16_to_f32(blk.d);
    for (int64_t j = 0; j < kBlock; ++j) dst[b * kBlock + j] = d * float(blk.q[j]);
  }
}

}  // namespace grok
