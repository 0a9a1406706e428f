// Block quantisation in ggml's layouts (Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K,
// Q6_K), byte for byte as llama.cpp reads and writes them. Shared by the GGUF
// writer, the quantiser and the kernels. Every format stores its scales as
// f16; values are reconstructed as described at each block struct.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace grok {

// Sub-block j's 6-bit scale and min from a Q4_K/Q5_K super-block's 12 scale
// bytes (ggml's get_scale_min_k4); shared by the dequantiser and the kernels.
inline void q4_k_scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// 32 values: value[j] = d * (q - 8), q a nibble; qs[j] holds element j in its
// low nibble and element j + 16 in its high nibble.
struct BlockQ4_0 {
  uint16_t d;  // f16
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18);

// 32 values: value[j] = d * (q - 16), q 5 bits. Its low 4 bits are nibbles as
// in Q4_0 (qs[j]: element j low, j + 16 high); its 5th bit is bit j of qh
// read as a little-endian uint32 (so elements 16..31 take bits 16..31).
struct BlockQ5_0 {
  uint16_t d;  // f16
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q5_0's levels without the offset: value[j] = d * q + m.
struct BlockQ5_1 {
  uint16_t d;  // f16
  uint16_t m;  // f16, the block's minimum
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// 256 values in 8 sub-blocks of 32: value = d * sc[s] * q - dmin * m[s],
// q a nibble, sc/m 6-bit. scales[0..3] low 6 bits: sc[0..3]; scales[4..7]
// low 6 bits: m[0..3]; scales[8..11]: sc[4..7] in the low nibble, m[4..7] in
// the high nibble, their top two bits in the top bits of scales[0..3] (sc)
// and scales[4..7] (m). qs: four 32-byte groups, group g holds element
// 64g + l in byte l's low nibble and 64g + 32 + l in its high nibble.
struct BlockQ4_K {
  uint16_t d;     // f16 scale of the sub-block scales
  uint16_t dmin;  // f16 scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q4_K with 5-bit q (0..31): d, dmin and scales as in Q4_K, qs holds the low
// 4 bits in Q4_K's order, and the 5th bit of element 64g + l (l < 32) is
// bit 2g of qh[l], that of element 64g + 32 + l bit 2g + 1 of qh[l].
struct BlockQ5_K {
  uint16_t d;     // f16 scale of the sub-block scales
  uint16_t dmin;  // f16 scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 256 values in 16 sub-blocks of 16: value = d * scales[e / 16] * (q - 32),
// q 6 bits. For element e = 128h + 32g + l (g = 0..3, l = 0..31): the low 4
// bits are in ql[64h + l + 32(g & 1)] (low nibble for g < 2, high for g >= 2),
// the top 2 bits in qh[32h + l] at bit 2g.
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// Quantises n floats (whole blocks of dtype_block_elems(t)) into
// dtype_bytes(t, n) bytes at dst, for t in F32, F16, BF16, Q8_0, Q4_0, Q5_0,
// Q5_1, Q4_K, Q5_K, Q6_K. Throws grok::Error for a bad n, a non-finite value,
// a scale beyond f16, or an unsupported t.
void quantize(DType t, const float* x, int64_t n, std::byte* dst);
std::vector<std::byte> quantize(DType t, const float* x, int64_t n);

// Q8_0: d = max|x| / 127, q = round(x / d); an all-zero block gets d = 0.
std::vector<std::byte> quantize_q8_0(const float* x, int64_t n);

// The inverse of each block format: n/block blocks at src (any alignment)
// into n floats. Throws grok::Error when n is not whole blocks.
void dequantize_q8_0(const std::byte* src, float* dst, int64_t n);
void dequantize_q4_0(const std::byte* src, float* dst, int64_t n);
void dequantize_q5_0(const std::byte* src, float* dst, int64_t n);
void dequantize_q5_1(const std::byte* src, float* dst, int64_t n);
void dequantize_q4_k(const std::byte* src, float* dst, int64_t n);
void dequantize_q5_k(const std::byte* src, float* dst, int64_t n);
void dequantize_q6_k(const std::byte* src, float* dst, int64_t n);

// The per-format quantisers behind quantize() (dst holds dtype_bytes(t, n)).
// Q4_0: d = m / -8 with m the value of largest magnitude, q = round(x/d + 8)
// clamped to 15 (the rounding ggml's reference quantiser uses, so the bytes
// match llama.cpp's); Q5_0 the same with -16 and 31. Q5_1: d = (max - min)
// / 31, m = min, q = round((x - m) / d), again ggml's reference rounding.
// Q4_K / Q5_K / Q6_K: per sub-block, a short search over scales with a
// least-squares refit, then the sub-block scales are themselves quantised
// and the values requantised with the scales as stored.
void quantize_q8_0(const float* x, int64_t n, std::byte* dst);
void quantize_q4_0(const float* x, int64_t n, std::byte* dst);
void quantize_q5_0(const float* x, int64_t n, std::byte* dst);
void quantize_q5_1(const float* x, int64_t n, std::byte* dst);
void quantize_q4_k(const float* x, int64_t n, std::byte* dst);
void quantize_q5_k(const float* x, int64_t n, std::byte* dst);
void quantize_q6_k(const float* x, int64_t n, std::byte* dst);

}  // namespace grok
