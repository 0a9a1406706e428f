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

// Rotate-half (NeoX) rotary embedding of head vectors x[head_dim] at
// absolute position pos: pairs (j, j + head_dim/2) rotate by
// pos·base^(-2j/head_dim). In two steps, so that one position's rotation (a
// double-precision sin and cos per frequency) serves every head and layer:
// rope_rotation writes head_dim floats (the cosines, then the sines), which
// rope_apply applies to one head.
void rope_rotation(int64_t head_dim, int64_t pos, float base, float* cos_sin);
void rope_apply(float* x, int64_t head_dim, const float* cos_sin);

// In-place softmax of x[0..n).
void softmax(float* x, int64_t n);

// tanh-approximation GELU: 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))).
float gelu_tanh(float x);

}  // namespace grok
