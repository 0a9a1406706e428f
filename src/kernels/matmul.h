// y = x · Wᵀ for a stored weight matrix W [rows][cols] and fp32 activations.
// Accumulation is fp32 whatever W's dtype (the reference rounds to bf16; fp32
// is the deliberate precision improvement SPEC.md allows).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/weight_matrix.h"

namespace grok {

// x: [n_tokens][w.cols], y: [n_tokens][w.rows] (overwritten).
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// Obviously-right version for tests: dequantise, accumulate in double.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);

}  // namespace grok
