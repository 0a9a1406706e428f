#include "kernels/matmul.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/dot.h"
#include "kernels/dequantize.h"
#include "kernels/ops.h"
#include "kernels/packed_matrix.h"

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

// x [n_tokens][32·nb] as activation blocks (16-bit BlockQ16Act, or the
// packed Q4_0 kernel's 8-bit BlockQ8Act), in a buffer of the calling
// thread's that the next call reuses.
template <typename Block>
const Block* quantize_activations(const float* x, int64_t n_tokens, int64_t nb, ThreadPool& pool,
                                  void (*quantize)(const float*, Block*, int64_t)) {
  // Workers get a plain pointer (naming the thread_local in their lambdas
  // would reach their own, empty, copy).
  thread_local std::vector<Block> buffer;
  buffer.resize(size_t(n_tokens * nb));
  Block* xq = buffer.data();
  pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) quantize(x + t * 32 * nb, xq + t * nb, nb);
  });
  return xq;
}

// Block-quantised weights: activations to 16-bit blocks once per call, then
// the ISA's tile kernel over groups of rows × tokens (a task's weight rows
// stay in cache while the activations stream past them). nb counts blocks of
// 32 for the K-quants too (a super-block spans 8 activation blocks).
void matmul_blocks(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                   const DotKernels& k, DotKernels::TileFn tile) {
  const int64_t nb = w.cols / 32;
  const BlockQ16Act* xq = quantize_activations(x, n_tokens, nb, pool, k.quantize_act);
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

// Packed Q8_0 / Q4_0 / Q6_K (kernels/packed_matrix.h): a task's group of 16 rows
// stays in cache while the tokens stream past it, kPackedTokens at a time.
template <typename Block>
void matmul_packed(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                   void (*quantize)(const float*, Block*, int64_t),
                   void (*tile)(const std::byte*, int64_t, int, const Block*, int, float*, int64_t)) {
  const int64_t nb = w.cols / 32;
  const Block* xq = quantize_activations(x, n_tokens, nb, pool, quantize);
  const uint64_t group_bytes = packed_group_bytes(w.dtype, w.cols);
  static_assert(kPackedRows == 16, "one task is one group");
  for_each_row_range(w, pool, [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; r += kPackedRows) {
      const std::byte* group = w.packed + uint64_t(r / kPackedRows) * group_bytes;
      const int rows = int(std::min<int64_t>(kPackedRows, r_end - r));
      for (int64_t t = 0; t < n_tokens; t += kPackedTokens) {
        const int tokens = int(std::min<int64_t>(kPackedTokens, n_tokens - t));
        tile(group, nb, rows, xq + t * nb, tokens, y + t * w.rows + r, w.rows);
      }
    }
  });
}

// Formats without a fast path yet (Q5_0, Q5_1, Q5_K): each row decoded to fp32
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

// Int8 weights stored input-major (DType::I8). Outputs are split in ranges
// of whole 64-byte lines of the stored rows where the stride allows (the
// first range short, up to the first line boundary), so no line is read by
// two tasks.
//
// Prompts (compute-bound) split only the outputs. Decode (memory-bound)
// splits the stored rows instead, in up to kI8RowParts contiguous parts
// (whole scale blocks when the block count allows): tasks reading a range of
// outputs from every stored row jump to a new page at each row and streamed
// about 1.3x slower on a 2-core Zen 4 than tasks reading contiguous runs of
// rows. Each row part sums into its own buffer, added up in part order
// afterwards; the parts depend on the matrix only, so results do not depend
// on the number of threads.
constexpr int64_t kI8RowParts = 8, kI8MinPartRows = 512, kI8DecodeTokens = 4;

void matmul_i8(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
               const DotKernels& k) {
  if (!w.scales || w.scale_blocks < 1 || w.cols % w.scale_blocks != 0 || w.row_bytes < uint64_t(w.rows))
    fail("matmul: I8 weights need scales in whole blocks (", w.cols, " inputs, ", w.scale_blocks, " blocks)");
  constexpr int64_t kLine = 64;
  const int64_t misalign = int64_t(reinterpret_cast<uintptr_t>(w.data) % kLine);
  // Output line l covers [first + l·kLine, first + (l+1)·kLine), clamped to [0, rows).
  const int64_t first = w.row_bytes % kLine == 0 && misalign ? -misalign : 0;
  const int64_t lines = (w.rows - first + kLine - 1) / kLine;
  auto output = [&](int64_t l) { return std::clamp(first + l * kLine, int64_t(0), w.rows); };
  const int64_t parts = n_tokens > kI8DecodeTokens ? 1 : std::clamp(w.cols / kI8MinPartRows, int64_t(1), kI8RowParts);
  if (parts == 1) {
    pool.parallel_for(lines, [&](int64_t b, int64_t e, int) {
      k.i8_columns(w, x, n_tokens, 0, w.cols, output(b), output(e), y);
    });
    return;
  }
  // Row part p is stored rows [row(p), row(p + 1)), in `ranges` output ranges
  // so that the tasks divide evenly among the threads.
  const int64_t bs = w.scale_block_cols();
  auto row = [&](int64_t p) {
    return w.scale_blocks % parts == 0 ? p * (w.scale_blocks / parts) * bs : w.cols * p / parts;
  };
  const int64_t ranges = std::min<int64_t>(lines, pool.size() / std::gcd(int64_t(pool.size()), parts));
  thread_local std::vector<float> partial_buffer;  // parts 1.. (part 0 sums straight into y)
  partial_buffer.resize(size_t((parts - 1) * n_tokens * w.rows));
  float* partial = partial_buffer.data();
  pool.parallel_for(parts * ranges, [&](int64_t b, int64_t e, int) {
    for (int64_t task = b; task < e; ++task) {
      const int64_t p = task / ranges, c = task % ranges;
      float* out = p == 0 ? y : partial + (p - 1) * n_tokens * w.rows;
      k.i8_columns(w, x, n_tokens, row(p), row(p + 1), output(lines * c / ranges), output(lines * (c + 1) / ranges),
                   out);
    }
  });
  pool.parallel_for(lines, [&](int64_t b, int64_t e, int) {
    const int64_t r0 = output(b), r1 = output(e);
    for (int64_t p = 1; p < parts; ++p)
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* src = partial + ((p - 1) * n_tokens + t) * w.rows;
        float* dst = y + t * w.rows;
        for (int64_t r = r0; r < r1; ++r) dst[r] += src[r];
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
      if (w.packed && k.q8_0_packed) return matmul_packed(w, x, n_tokens, y, pool, k.quantize_act, k.q8_0_packed);
      return matmul_blocks(w, x, n_tokens, y, pool, k, k.q8_0_tile);
    case DType::Q4_0:
      if (w.packed && k.q4_0_packed) return matmul_packed(w, x, n_tokens, y, pool, k.quantize_act8, k.q4_0_packed);
      return matmul_blocks(w, x, n_tokens, y, pool, k, k.q4_0_tile);
    case DType::Q4_K:
    case DType::Q6_K:
      // A width of partial super-blocks goes to the decoder, which rejects it.
      if (n % 256 != 0) return matmul_decoded_rows(w, x, n_tokens, y, pool, k);
      if (w.dtype == DType::Q6_K && w.packed && k.q6_k_packed)
        return matmul_packed(w, x, n_tokens, y, pool, k.quantize_act, k.q6_k_packed);
      return matmul_blocks(w, x, n_tokens, y, pool, k, w.dtype == DType::Q4_K ? k.q4_k_tile : k.q6_k_tile);
    case DType::I8:
      if (w.packed && k.i8_packed) return matmul_packed(w, x, n_tokens, y, pool, k.quantize_act, k.i8_packed);
      return matmul_i8(w, x, n_tokens, y, pool, k);
    default:
      return matmul_decoded_rows(w, x, n_tokens, y, pool, k);
  }
}

void matmul_reference(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y) {
  std::vector<float> row(size_t(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    // I8: q·s exactly (an int8 times a bf16 fits fp32's significand), or bf16(q·s).
    dequantize_rows(w, r, r + 1, row.data());
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += double(row[size_t(c)]) * double(x[t * w.cols + c]);
      y[t * w.rows + r] = float(s);
    }
  }
}

}  // namespace grok
