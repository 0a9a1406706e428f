// Element types of stored weights and their scalar conversions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace grok {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  Q8_0,  // GGUF block: f16 scale d, then 32 int8 q; value = d * q
  I8,
  Q4_0,  // ggml blocks of 32 in 18 bytes: f16 d, 16 bytes of nibbles; d * (q - 8)
  Q4_K,  // ggml super-blocks of 256 in 144 bytes (8 sub-blocks, 6-bit scales and mins)
  Q6_K,  // ggml super-blocks of 256 in 210 bytes (16 sub-blocks, int8 scales)
  Q5_0,  // ggml blocks of 32 in 22 bytes: f16 d, 5th bits, nibbles; d * (q - 16)
  Q5_1,  // ggml blocks of 32 in 24 bytes: f16 d and m, 5th bits, nibbles; d * q + m
  Q5_K,  // ggml super-blocks of 256 in 176 bytes (Q4_K's scales, 5-bit levels)
};

// Elements per block (1 for plain types, 32 for Q8_0/Q4_0/Q5_0/Q5_1, 256
// for the k-quants) and bytes per block.
int64_t dtype_block_elems(DType t);
int64_t dtype_block_bytes(DType t);
std::string_view dtype_name(DType t);

// Bytes of n consecutive elements; throws grok::Error when n is not a whole
// number of blocks or the size overflows.
uint64_t dtype_bytes(DType t, int64_t n);

struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t q[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t f32_to_bf16(float f);  // round to nearest even, NaN stays NaN

}  // namespace grok
