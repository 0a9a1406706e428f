#include "kernels/dequantize.h"

#include <cstring>

#include "core/error.h"
#include "core/quant.h"

namespace grok {

void dequantize_row(DType t, const std::byte* src, float* dst, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = f16_to_f32(h);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
      }
      return;
    case DType::Q8_0:
      dequantize_q8_0(src, dst, n);
      return;
    case DType::Q4_0:
      dequantize_q4_0(src, dst, n);
      return;
    case DType::Q4_K:
      dequantize_q4_k(src, dst, n);
      return;
    case DType::Q6_K:
      dequantize_q6_k(src, dst, n);
      return;
    case DType::Q5_0:
      dequantize_q5_0(src, dst, n);
      return;
    case DType::Q5_1:
      dequantize_q5_1(src, dst, n);
      return;
    case DType::Q5_K:
      dequantize_q5_k(src, dst, n);
      return;
    case DType::I8:
      for (int64_t i = 0; i < n; ++i) dst[i] = float(int8_t(src[i]));
      return;
  }
  fail("dequantize_row: unknown dtype");
}

std::vector<float> to_f32(const WeightMatrix& w) {
  std::vector<float> out(size_t(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) dequantize_row(w.dtype, w.row(r), out.data() + r * w.cols, w.cols);
  return out;
}

}  // namespace grok
