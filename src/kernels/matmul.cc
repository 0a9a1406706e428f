#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dot.h"
#include "kernels/dequantize.h"
#include "kernels/ops.h"

namespace grok {
namespace {

// Splits the rows over the pool; each row is read once and multiplied with
// every token while it is in cache, so decode (one token) streams each
// weight byte exactly once.
template <typename RowDot>
void for_each_row(const WeightMatrix& w, int64_t n_tokens, float* y, ThreadPool& pool, RowDot row_dot) {
  constexpr int64_t kRowsPerTask = 16;
  const int64_t tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  pool.parallel_for(tasks, [&](int64_t begin, int64_t end, int) {
    const int64_t r_end = std::min(w.rows, end * kRowsPerTask);
    for (int64_t r = begin * kRowsPerTask; r < r_end; ++r)
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = row_dot(w.row(r), t);
  });
}

}  // namespace

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const DotKernels& k = active_dot_kernels();
  const int64_t n = w.cols;
  switch (w.dtype) {
    case DType::F32:
      // Stores keep f32 data 4-byte aligned (safetensors copies unaligned tensors).
      return for_each_row(w, n_tokens, y, pool, [&](const std::byte* row, int64_t t) {
        return k.f32(reinterpret_cast<const float*>(row), x + t * n, n);
      });
    case DType::F16:
    case DType::BF16: {
      auto* dot = w.dtype == DType::F16 ? k.f16 : k.bf16;
      return for_each_row(w, n_tokens, y, pool, [&](const std::byte* row, int64_t t) {
        return dot(reinterpret_cast<const uint16_t*>(row), x + t * n, n);
      });
    }
    case DType::Q8_0: {
      // Activations to 16-bit blocks once per call, for the integer dot products.
      const int64_t nb = n / 32;
      // Reused across calls; workers get a plain pointer (naming the
      // thread_local in their lambdas would reach their own, empty, copy).
      thread_local std::vector<BlockQ16Act> xq_buffer;
      xq_buffer.resize(size_t(n_tokens * nb));
      BlockQ16Act* xq = xq_buffer.data();
      pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
        for (int64_t t = b; t < e; ++t) k.quantize_act(x + t * n, xq + t * nb, nb);
      });
      return for_each_row(w, n_tokens, y, pool, [&](const std::byte* row, int64_t t) {
        return k.q8_0(reinterpret_cast<const BlockQ8_0*>(row), xq + t * nb, nb);
      });
    }
    default: {
      // Formats without a fast path yet: decode each row once, then dot.
      std::vector<std::vector<float>> scratch(size_t(pool.size()), std::vector<float>(size_t(n)));
      constexpr int64_t kRowsPerTask = 16;
      pool.parallel_for((w.rows + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t begin, int64_t end, int thread) {
        std::vector<float>& buf = scratch[size_t(thread)];
        for (int64_t r = begin * kRowsPerTask; r < std::min(w.rows, end * kRowsPerTask); ++r) {
          dequantize_row(w.dtype, w.row(r), buf.data(), n);
          for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = k.f32(buf.data(), x + t * n, n);
        }
      });
    }
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
