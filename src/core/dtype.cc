#include "core/dtype.h"

#include <cmath>
#include <limits>

#include "core/error.h"

namespace grok {

int64_t dtype_block_elems(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q5_1: return 32;
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K: return 256;
    default: return 1;
  }
}

int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8_0: return 34;
    case DType::I8: return 1;
    case DType::Q4_0: return 18;
    case DType::Q4_K: return 144;
    case DType::Q6_K: return 210;
    case DType::Q5_0: return 22;
    case DType::Q5_1: return 24;
    case DType::Q5_K: return 176;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
    case DType::I8: return "I8";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_K: return "Q4_K";
    case DType::Q6_K: return "Q6_K";
    case DType::Q5_0: return "Q5_0";
    case DType::Q5_1: return "Q5_1";
    case DType::Q5_K: return "Q5_K";
  }
  return "?";
}

uint64_t dtype_bytes(DType t, int64_t n) {
  const int64_t be = dtype_block_elems(t);
  if (n < 0 || n % be != 0)
    fail(n, " elements of ", dtype_name(t), " are not a whole number of ", be, "-element blocks");
  const uint64_t blocks = uint64_t(n / be);
  const uint64_t bb = uint64_t(dtype_block_bytes(t));
  if (blocks > std::numeric_limits<uint64_t>::max() / bb) fail("tensor size overflows");
  return blocks * bb;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) {
        man <<= 1;
        --exp;
      }
      man &= 0x3ff;
      u = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const uint32_t absu = u & 0x7fffffffu;
  if (absu >= 0x7f800000u) return sign | (absu > 0x7f800000u ? 0x7e00 : 0x7c00);
  if (absu >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: inf
  if (absu < 0x38800000u) {                        // below f16 normal range
    // f16 subnormals are multiples of 2^-24: round |f| / 2^-24 to nearest even.
    float a;
    std::memcpy(&a, &absu, 4);
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  const uint32_t mant_odd = (absu >> 13) & 1;
  const uint32_t r = absu + 0xfffu + mant_odd;  // round to nearest even at bit 13
  return sign | uint16_t((r - (112u << 23)) >> 13);
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

}  // namespace grok
