#include "kernels/dequantize.h"

#include <algorithm>
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

namespace {

// f32_to_bf16 kept as fp32, inline for the gather's inner loop.
inline float round_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    u |= 0x00400000u;  // NaN stays NaN, quiet
  else
    u += 0x7fffu + ((u >> 16) & 1);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// DType::I8: a tile of 64 outputs × 64 inputs at a time. The stored rows
// (one per input, 64 contiguous bytes each) are decoded into a transposed
// scratch tile, whose rows then go out as 64 contiguous floats: neither side
// walks memory with the matrix's large stride inside the tile.
void gather_i8(const WeightMatrix& w, int64_t r_begin, int64_t r_end, float* out) {
  if (!w.scales || w.scale_blocks < 1 || w.cols % w.scale_blocks != 0)
    fail("dequantize: I8 weights need scales in whole blocks (", w.cols, " inputs, ", w.scale_blocks, " blocks)");
  constexpr int64_t kTile = 64;
  const int64_t n = w.cols, bs = w.scale_block_cols();
  const auto* scales = reinterpret_cast<const std::byte*>(w.scales);
  float scale[kTile], tile[kTile][kTile];  // tile[input][output]
  for (int64_t r0 = r_begin; r0 < r_end; r0 += kTile) {
    const int64_t nr = std::min(kTile, r_end - r0);
    for (int64_t i0 = 0; i0 < n; i0 += kTile) {
      const int64_t ni = std::min(kTile, n - i0);
      for (int64_t i = i0; i < i0 + ni;) {
        const int64_t b = i / bs, run_end = std::min(i0 + ni, (b + 1) * bs);  // inputs of one block
        for (int64_t c = 0; c < nr; ++c) {
          uint16_t h;
          std::memcpy(&h, scales + 2 * uint64_t(b * w.rows + r0 + c), 2);
          scale[c] = bf16_to_f32(h);
        }
        for (; i < run_end; ++i) {
          const auto* q = reinterpret_cast<const int8_t*>(w.data + uint64_t(i) * w.row_bytes + uint64_t(r0));
          float* t = tile[i - i0];
          if (w.round_to_bf16)
            for (int64_t c = 0; c < nr; ++c) t[c] = round_bf16(float(q[c]) * scale[c]);
          else
            for (int64_t c = 0; c < nr; ++c) t[c] = float(q[c]) * scale[c];
        }
      }
      for (int64_t c = 0; c < nr; ++c) {
        float* o = out + (r0 - r_begin + c) * n + i0;
        for (int64_t ii = 0; ii < ni; ++ii) o[ii] = tile[ii][c];
      }
    }
  }
}

}  // namespace

void dequantize_rows(const WeightMatrix& w, int64_t r_begin, int64_t r_end, float* out) {
  if (w.dtype == DType::I8) return gather_i8(w, r_begin, r_end, out);
  for (int64_t r = r_begin; r < r_end; ++r) dequantize_row(w.dtype, w.row(r), out + (r - r_begin) * w.cols, w.cols);
}

std::vector<float> to_f32(const WeightMatrix& w) {
  std::vector<float> out(size_t(w.rows * w.cols));
  dequantize_rows(w, 0, w.rows, out.data());
  return out;
}

}  // namespace grok
