// y = x · Wᵀ for a stored weight matrix W [rows][cols] and fp32 activations,
// through the CPU's best kernels (kernels/cpu/dot.h). Accumulation is fp32
// whatever W's dtype. For quantised weight formats the activations are
// quantised to 16-bit blocks of 32 for the integer dot products (far finer
// than the reference's bf16 activations; repacked Q4_0's, and repacked
// Q8_0's with WeightMatrix::activations8, to 8-bit, see dot.h); float weights see fp32 activations, and so do DType::I8 weights
// when not repacked (the checkpoint's int8, kernels/cpu/i8_columns.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/weight_matrix.h"

namespace grok {

// x: [n_tokens][w.cols], y: [n_tokens][w.rows] (overwritten).
void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool);

// y_i = x · W_iᵀ for matrices that take the same input (attention's q, k and
// v): the input prepared once and all their rows in one pool call, with the
// values matmul() gives each. Matrices whose kernels take different
// activations go through matmul() one by one.
void matmul_shared_input(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_tokens,
                         std::span<float* const> ys, ThreadPool& pool);

// Activations prepared once for a weight format's kernel (fp32 rows, or
// 16- or 8-bit blocks of 32), so that row ranges of several matrices, run
// from pool tasks the caller schedules, share them: the MoE block computes
// all its experts' products in one pool call each instead of one per
// expert and matrix.
class MatmulInput {
 public:
  enum class Kind { kF32, kQ16, kQ8 };
  static Kind kind_for(const WeightMatrix& w);  // what matmul_rows(w, ...) takes

  // n_tokens rows of `cols` (a multiple of 32 for the block kinds).
  void reset(Kind kind, int64_t n_tokens, int64_t cols);
  // Token t's columns [c_begin, c_end) from x_row (the token's whole row);
  // for the block kinds both ends are multiples of 32. Distinct tokens or
  // column ranges may be set from different threads.
  void set(int64_t t, const float* x_row, int64_t c_begin, int64_t c_end);
  // All tokens from x [n_tokens][cols], through the pool; kF32 keeps a
  // pointer to x instead of a copy.
  // Up to kSerialValues values (a decode batch's rows) on the calling thread,
  // which takes less time than a hand-off to the pool.
  void set_all(Kind kind, const float* x, int64_t n_tokens, int64_t cols, ThreadPool& pool);
  static constexpr int64_t kSerialValues = 16384;

  Kind kind() const { return kind_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t cols() const { return cols_; }
  const float* f32() const { return f32_view_; }
  const void* blocks() const;

 private:
  Kind kind_ = Kind::kF32;
  int64_t n_tokens_ = 0, cols_ = 0;
  const float* f32_view_ = nullptr;
  std::vector<float> f32_;
  std::vector<std::byte> blocks_;  // BlockQ16Act or BlockQ8Act (kernels/cpu/dot.h)
};

// Whether matmul_rows handles w: every format except DType::I8 weights kept
// in the checkpoint's input-major layout (their kernel splits the inputs).
bool matmul_rows_supported(const WeightMatrix& w);

// On the calling thread: y[t·y_stride + r − r_begin] = row r · token t for
// r in [r_begin, r_end) and t < x.n_tokens(), x prepared for w's kind.
// r_begin is a multiple of 16. Each (row, token) gets the same arithmetic
// as in matmul(), whatever the range and the other tokens.
void matmul_rows(const WeightMatrix& w, const MatmulInput& x, int64_t r_begin, int64_t r_end, float* y,
                 int64_t y_stride);

// Obviously-right version for tests: dequantise, accumulate in double.
void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y);

}  // namespace grok
