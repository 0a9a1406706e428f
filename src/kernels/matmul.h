// y = x · Wᵀ for a stored weight matrix W [rows][cols] and fp32 activations,
// through the CPU's best kernels (kernels/cpu/dot.h). Accumulation is fp32
// whatever W's dtype. For quantised weight formats the activations are
// quantised to 16-bit blocks of 32 for the integer dot products (far finer
// than the reference's bf16 activations; repacked Q4_0's to 8-bit, see
// dot.h); float weights see fp32 activations, and so do DType::I8 weights
// when not repacked (the checkpoint's int8, kernels/cpu/i8_columns.h).
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
