// Checks shared by the block quantisers in quant.cc and quant_k.cc.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace grok::quant_detail {

inline void require_blocks(const char* fn, int64_t n, int64_t block) {
  if (n < 0 || n % block != 0) fail(fn, ": ", n, " values are not a whole number of ", block, "-value blocks");
}

// NaN/Inf would make a block's scale meaningless and float->int conversion
// undefined, so they are rejected with the value's index.
inline void require_finite(const char* fn, const float* x, int64_t n, int64_t first_index) {
  for (int64_t j = 0; j < n; ++j)
    if (!std::isfinite(x[j])) fail(fn, ": value ", first_index + j, " is not finite");
}

// A scale as f16; a block whose scale overflows f16 cannot be stored.
inline uint16_t f16_scale(const char* fn, float d, int64_t block) {
  const uint16_t h = f32_to_f16(d);
  if ((h & 0x7c00) == 0x7c00) fail(fn, ": block ", block, " has values too large for an f16 scale");
  return h;
}

}  // namespace grok::quant_detail
