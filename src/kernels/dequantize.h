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

// The whole matrix (or a row range) as fp32, for small tensors: norms, router.
std::vector<float> to_f32(const WeightMatrix& w);

}  // namespace grok
