// Element-wise vector functions of the model through the CPU's best kernels
// (kernels/cpu/vec_math.h): the experts' gated GELU, attention's logit cap
// and softmax exponentials.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace grok {

// h[i] = gelu_tanh(h[i])·v[i] for i < n, split over the pool when long (a
// prompt's expert activations).
void gelu_mul(float* h, const float* v, int64_t n, ThreadPool& pool);
// The same on the calling thread (inside a pool task); any split of [0, n)
// gives the same values.
void gelu_mul(float* h, const float* v, int64_t n);

// out[j] = rows[j]·x for j < n_rows, rows of len floats one after another
// (a block of cached keys), in SIMD lanes: each as the ISA's fp32 dot gives
// it (ops.h's dot is the portable one).
void dot_rows(const float* rows, int64_t n_rows, int64_t len, const float* x, float* out);

// y += a[j]·rows[j] for j < n_rows in order, skipping a[j] = 0 (a block of
// cached values): as axpy row by row.
void axpy_rows(const float* rows, int64_t n_rows, int64_t len, const float* a, float* y);

// p[i] = cap·tanh(p[i]/cap) for i < n.
void soft_cap(float* p, int64_t n, float cap);

// p[i] = e^(p[i] - shift) for i < n (softmax numerators).
void exp_shifted(float* p, int64_t n, float shift);

}  // namespace grok
