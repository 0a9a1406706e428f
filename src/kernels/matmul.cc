#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

#include "kernels/dequantize.h"
#include "kernels/ops.h"

namespace grok {

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  // Each row of W is decoded once per call and reused for every token, so the
  // cost of decoding is amortised over the batch.
  constexpr int64_t kRowsPerTask = 8;
  const int64_t tasks = (w.rows + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<std::vector<float>> scratch(size_t(pool.size()));
  pool.parallel_for(tasks, [&](int64_t begin, int64_t end, int thread) {
    std::vector<float>& buf = scratch[size_t(thread)];
    if (w.dtype != DType::F32) buf.resize(size_t(w.cols));
    for (int64_t r = begin * kRowsPerTask; r < std::min(w.rows, end * kRowsPerTask); ++r) {
      const float* row;
      if (w.dtype == DType::F32) {
        row = reinterpret_cast<const float*>(w.row(r));  // stores align f32 data
      } else {
        dequantize_row(w.dtype, w.row(r), buf.data(), w.cols);
        row = buf.data();
      }
      for (int64_t t = 0; t < n_tokens; ++t) y[t * w.rows + r] = dot(row, x + t * w.cols, w.cols);
    }
  });
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
