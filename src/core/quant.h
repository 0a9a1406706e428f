// Q8_0 block quantisation (ggml's layout: f16 scale d, then 32 int8 q;
// value = d * q). Shared by the GGUF writer/converter and the kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace grok {

// Quantises n floats (a multiple of 32) into n/32 BlockQ8_0 (34 bytes each).
// Per block: d = max|x| / 127, q = round(x / d), d stored as f16; an all-zero
// block gets d = 0, q = 0. Throws grok::Error for a bad n, a non-finite value or
// a block whose scale does not fit in f16.
std::vector<std::byte> quantize_q8_0(const float* x, int64_t n);

// Expands n/32 blocks at src (any alignment) into n floats.
void dequantize_q8_0(const std::byte* src, float* dst, int64_t n);

}  // namespace grok
