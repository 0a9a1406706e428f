// Element-wise and row operations of the model, in fp32. Each is simple
// enough to be its own reference; tests check them against double versions.
#pragma once

#include <cstdint>

namespace grok {

// Sum of a[i]*b[i] with 16 independent fp32 partial sums (vectorisable, and
// a smaller rounding error than one running sum).
float dot(const float* a, const float* b, int64_t n);

// y = scale ⊙ x / sqrt(mean(x²) + eps); y may alias x.
void rms_norm(const float* x, const float* scale, int64_t n, float eps, float* y);

// Rotate-half (NeoX) rotary embedding of one head vector x[head_dim] at
// absolute position pos: pairs (j, j + head_dim/2) rotate by pos·base^(-2j/head_dim).
void rope_neox(float* x, int64_t head_dim, int64_t pos, float base);

// In-place softmax of x[0..n).
void softmax(float* x, int64_t n);

// tanh-approximation GELU: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
float gelu_tanh(float x);

}  // namespace grok
