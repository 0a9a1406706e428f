#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dot.h"
#include "kernels/dequantize.h"
#include "kernels/ops.h"

namespace grok {
namespace {

// Splits the rows over the pool in tasks of 16 (contiguous ranges per
// thread, so each thread streams its part of W once): fn(r_begin, r_end).
template <typename Fn>
void for_each_row_range(const WeightMatrix& w, ThreadPool& pool, Fn fn) {
  constexpr int64_t kRowsPerTask = 16;
  pool.parallel_for((w.rows + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t begin, int64_t end, int) {
    fn(begin * kRowsPerTask, std::min(w.rows, end * kRowsPerTask));
  });
}

// Float weights: each row is multiplied with every token while it is in
// cache, so decode (one token) reads each weight byte exactly once.
template <typename RowDot>
void matmul_rows(const WeightMatrix& w, int64_t n_tokens, float* y, ThreadPool& pool, RowDot row_dot) {
  for_each_row_range(w, pool, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = row_dot(w.row(r), t);
  });
}

// Block-quantised weights: activations to 16-bit blocks once per call, then
// the ISA's tile kernel over groups of rows × tokens (a task's weight rows
// stay in cache while the activations stream past them).
void matmul_blocks(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                   const DotKernels& k, DotKernels::TileFn tile) {
  const int64_t n = w.cols, nb = n / 32;
  // Reused across calls; workers get a plain pointer (naming the
  // thread_local in their lambdas would reach their own, empty, copy).
  thread_local std::vector<BlockQ16Act> xq_buffer;
  xq_buffer.resize(size_t(n_tokens * nb));
  BlockQ16Act* xq = xq_buffer.data();
  pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) k.quantize_act(x + t * n, xq + t * nb, nb);
  });
  for_each_row_range(w, pool, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; r += kTileRows) {
      const int rows = int(std::min<int64_t>(kTileRows, r_end - r));
      for (int64_t t = 0; t < n_tokens; t += kTileTokens) {
        const int tokens = int(std::min<int64_t>(kTileTokens, n_tokens - t));
        tile(w.row(r), w.row_bytes, rows, xq + t * nb, tokens, nb, y + t * w.rows + r, w.rows);
      }
    }
  });
}

// Formats without a fast path yet (K-quants, Q5): each row decoded to fp32
// once, then multiplied with every token.
void matmul_decoded_rows(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                         const DotKernels& k) {
  const int64_t n = w.cols;
  for_each_row_range(w, pool, [&](int64_t r_begin, int64_t r_end) {
    thread_local std::vector<float> row;  // this worker's own buffer, reused across calls
    row.resize(size_t(n));
    for (int64_t r = r_begin; r < r_end; ++r) {
      dequantize_row(w.dtype, w.row(r), row.data(), n);
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = k.f32(row.data(), x + t * n, n);
    }
  });
}

}  // namespace

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const DotKernels& k = active_dot_kernels();
  const int64_t n = w.cols;
  switch (w.dtype) {
    case DType::F32:
      // Stores keep f32 data 4-byte aligned (safetensors copies unaligned tensors).
      return matmul_rows(w, n_tokens, y, pool, [&](const std::byte* row, int64_t t) {
        return k.f32(reinterpret_cast<const float*>(row), x + t * n, n);
      });
    case DType::F16:
    case DType::BF16: {
      auto* dot = w.dtype == DType::F16 ? k.f16 : k.bf16;
      return matmul_rows(w, n_tokens, y, pool, [&](const std::byte* row, int64_t t) {
        return dot(reinterpret_cast<const uint16_t*>(row), x + t * n, n);
      });
    }
    case DType::Q8_0:
      return matmul_blocks(w, x, n_tokens, y, pool, k, k.q8_0_tile);
    case DType::Q4_0:
      return matmul_blocks(w, x, n_tokens, y, pool, k, k.q4_0_tile);
    default:
      return matmul_decoded_rows(w, x, n_tokens, y, pool, k);
  }
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.dtype, w.row(r), row.data(), w.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += double(row[size_t(c)]) * double(x[t * w.cols + c]);
      y[t * w.rows + r] = float(s);
    }
  }
}

}  // namespace grok
