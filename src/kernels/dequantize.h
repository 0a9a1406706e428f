// Conversion of stored rows to fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "kernels/weight_matrix.h"

namespace grok {

// dst[0..n) = the n elements at src, decoded from `t`.
void dequantize_row(DType t, const std::byte* src, float* dst, int64_t n);

// W rows [r_begin, r_end) as fp32, out[(r - r_begin)·w.cols + c] = W[r][c],
// for every dtype. DType::I8 (stored input-major) is gathered tile by tile,
// W[r][c] = q·s exactly, or bf16(q·s) with round_to_bf16 (as matmul uses it).
void dequantize_rows(const WeightMatrix& w, int64_t r_begin, int64_t r_end, float* out);

// The whole matrix as fp32, for small tensors: norms, router.
std::vector<float> to_f32(const WeightMatrix& w);

}  // namespace grok
