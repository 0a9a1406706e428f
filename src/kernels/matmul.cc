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

// How a matrix is multiplied, and so which activations it takes.
enum class Route { kFloatRows, kDecodedRows, kBlockTiles, kPacked, kPacked8, kI8Columns };

Route route_for(const WeightMatrix& w, const DotKernels& k) {
  switch (w.dtype) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      return Route::kFloatRows;
    case DType::Q8_0:
      // activations8's packed layout is its kernel's alone.
      if (w.activations8) return w.packed && k.q8_0_packed8 ? Route::kPacked8 : Route::kBlockTiles;
      return w.packed && k.q8_0_packed ? Route::kPacked : Route::kBlockTiles;
    case DType::Q4_0:
      return w.packed && k.q4_0_packed ? Route::kPacked8 : Route::kBlockTiles;
    case DType::Q4_K:
    case DType::Q6_K:
      // A width of partial super-blocks goes to the decoder, which rejects it.
      if (w.cols % 256 != 0) return Route::kDecodedRows;
      return w.dtype == DType::Q6_K && w.packed && k.q6_k_packed ? Route::kPacked : Route::kBlockTiles;
    case DType::I8:
      return w.packed && k.i8_packed ? Route::kPacked : Route::kI8Columns;
    default:
      // Formats without a fast path yet (Q5_0, Q5_1, Q5_K).
      return Route::kDecodedRows;
  }
}

const char* kind_name(MatmulInput::Kind k) {
  switch (k) {
    case MatmulInput::Kind::kF32: return "fp32";
    case MatmulInput::Kind::kQ16: return "16-bit block";
    case MatmulInput::Kind::kQ8: return "8-bit block";
  }
  return "?";
}

MatmulInput::Kind input_kind(Route r) {
  switch (r) {
    case Route::kBlockTiles:
    case Route::kPacked:
      return MatmulInput::Kind::kQ16;
    case Route::kPacked8:
      return MatmulInput::Kind::kQ8;
    default:
      return MatmulInput::Kind::kF32;
  }
}

// Float weights: each row is multiplied with every token while it is in
// cache, so decode (one token) reads each weight byte exactly once.
void float_rows(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t r_begin, int64_t r_end, float* y,
                int64_t y_stride, const DotKernels& k) {
  const int64_t n = w.cols;
  for (int64_t r = r_begin; r < r_end; ++r)
    for (int64_t t = 0; t < n_tokens; ++t) {
      const std::byte* row = w.row(r);
      float v;
      if (w.dtype == DType::F32)  // stores keep f32 data 4-byte aligned (safetensors copies unaligned tensors)
        v = k.f32(reinterpret_cast<const float*>(row), x + t * n, n);
      else
        v = (w.dtype == DType::F16 ? k.f16 : k.bf16)(reinterpret_cast<const uint16_t*>(row), x + t * n, n);
      y[t * y_stride + r - r_begin] = v;
    }
}

// Formats without a fast path: each row decoded to fp32 once, then
// multiplied with every token.
void decoded_rows(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t r_begin, int64_t r_end, float* y,
                  int64_t y_stride, const DotKernels& k) {
  const int64_t n = w.cols;
  thread_local std::vector<float> row;  // this thread's own buffer, reused across calls
  row.resize(size_t(n));
  for (int64_t r = r_begin; r < r_end; ++r) {
    dequantize_row(w.dtype, w.row(r), row.data(), n);
    for (int64_t t = 0; t < n_tokens; ++t) y[t * y_stride + r - r_begin] = k.f32(row.data(), x + t * n, n);
  }
}

// Block-quantised weights in the file's layout: the ISA's tile kernel over
// groups of rows × tokens (the rows stay in cache while the activations
// stream past them). nb counts blocks of 32 for the K-quants too (a
// super-block spans 8 activation blocks).
void block_tile_rows(const WeightMatrix& w, const BlockQ16Act* xq, int64_t n_tokens, int64_t r_begin, int64_t r_end,
                     float* y, int64_t y_stride, DotKernels::TileFn tile) {
  const int64_t nb = w.cols / 32;
  for (int64_t r = r_begin; r < r_end; r += kTileRows) {
    const int rows = int(std::min<int64_t>(kTileRows, r_end - r));
    for (int64_t t = 0; t < n_tokens; t += kTileTokens) {
      const int tokens = int(std::min<int64_t>(kTileTokens, n_tokens - t));
      tile(w.row(r), w.row_bytes, rows, xq + t * nb, tokens, nb, y + t * y_stride + r - r_begin, y_stride);
    }
  }
}

// Packed Q8_0 / Q4_0 / Q6_K / I8 (kernels/packed_matrix.h): each group of 16
// rows stays in cache while the tokens stream past it, kPackedTokens at a time.
template <typename Block>
void packed_rows(const WeightMatrix& w, const Block* xq, int64_t n_tokens, int64_t r_begin, int64_t r_end, float* y,
                 int64_t y_stride, void (*tile)(const std::byte*, int64_t, int, const Block*, int, float*, int64_t)) {
  const int64_t nb = w.cols / 32;
  const uint64_t group_bytes = packed_group_bytes(w.dtype, w.cols);
  for (int64_t r = r_begin; r < r_end; r += kPackedRows) {
    const std::byte* group = w.packed + uint64_t(r / kPackedRows) * group_bytes;
    const int rows = int(std::min<int64_t>(kPackedRows, r_end - r));
    for (int64_t t = 0; t < n_tokens; t += kPackedTokens) {
      const int tokens = int(std::min<int64_t>(kPackedTokens, n_tokens - t));
      tile(group, nb, rows, xq + t * nb, tokens, y + t * y_stride + r - r_begin, y_stride);
    }
  }
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

MatmulInput::Kind MatmulInput::kind_for(const WeightMatrix& w) {
  return input_kind(route_for(w, active_dot_kernels()));
}

void MatmulInput::reset(Kind kind, int64_t n_tokens, int64_t cols) {
  if (kind != Kind::kF32 && cols % 32 != 0) fail("matmul: ", cols, " inputs are not whole blocks of 32");
  kind_ = kind;
  n_tokens_ = n_tokens;
  cols_ = cols;
  if (kind == Kind::kF32) {
    f32_.resize(size_t(n_tokens * cols));
    f32_view_ = f32_.data();
  } else {
    const size_t block = kind == Kind::kQ16 ? sizeof(BlockQ16Act) : sizeof(BlockQ8Act);
    blocks_.resize(size_t(n_tokens * cols / 32) * block);
    f32_view_ = nullptr;
  }
}

void MatmulInput::set(int64_t t, const float* x_row, int64_t c_begin, int64_t c_end) {
  const DotKernels& k = active_dot_kernels();
  const int64_t nb = cols_ / 32;
  switch (kind_) {
    case Kind::kF32:
      std::copy(x_row + c_begin, x_row + c_end, f32_.data() + t * cols_ + c_begin);
      return;
    case Kind::kQ16:
      k.quantize_act(x_row + c_begin, reinterpret_cast<BlockQ16Act*>(blocks_.data()) + t * nb + c_begin / 32,
                     (c_end - c_begin) / 32);
      return;
    case Kind::kQ8:
      k.quantize_act8(x_row + c_begin, reinterpret_cast<BlockQ8Act*>(blocks_.data()) + t * nb + c_begin / 32,
                      (c_end - c_begin) / 32);
      return;
  }
}

void MatmulInput::set_all(Kind kind, const float* x, int64_t n_tokens, int64_t cols, ThreadPool& pool) {
  if (kind == Kind::kF32) {
    kind_ = kind;
    n_tokens_ = n_tokens;
    cols_ = cols;
    f32_view_ = x;
    return;
  }
  reset(kind, n_tokens, cols);
  if (n_tokens * cols <= kSerialValues) {
    for (int64_t t = 0; t < n_tokens; ++t) set(t, x + t * cols, 0, cols);
    return;
  }
  pool.parallel_for(n_tokens, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) set(t, x + t * cols, 0, cols);
  });
}

const void* MatmulInput::blocks() const { return blocks_.data(); }

bool matmul_rows_supported(const WeightMatrix& w) {
  return route_for(w, active_dot_kernels()) != Route::kI8Columns;
}

void matmul_rows(const WeightMatrix& w, const MatmulInput& x, int64_t r_begin, int64_t r_end, float* y,
                 int64_t y_stride) {
  const DotKernels& k = active_dot_kernels();
  const Route route = route_for(w, k);
  if (x.kind() != input_kind(route) || x.cols() != w.cols)
    fail("matmul: activations prepared as ", kind_name(x.kind()), " rows of ", x.cols(), " for a ", dtype_name(w.dtype),
         " matrix that takes ", kind_name(input_kind(route)), " rows of ", w.cols);
  if (r_begin % kPackedRows != 0 || r_begin < 0 || r_end > w.rows)
    fail("matmul: rows [", r_begin, ", ", r_end, ") of ", w.rows, " are not a range starting on a group of 16");
  const int64_t n = x.n_tokens();
  const auto* q16 = static_cast<const BlockQ16Act*>(x.blocks());
  switch (route) {
    case Route::kFloatRows:
      return float_rows(w, x.f32(), n, r_begin, r_end, y, y_stride, k);
    case Route::kDecodedRows:
      return decoded_rows(w, x.f32(), n, r_begin, r_end, y, y_stride, k);
    case Route::kBlockTiles: {
      const DotKernels::TileFn tile = w.dtype == DType::Q8_0   ? k.q8_0_tile
                                      : w.dtype == DType::Q4_0 ? k.q4_0_tile
                                      : w.dtype == DType::Q4_K ? k.q4_k_tile
                                                               : k.q6_k_tile;
      return block_tile_rows(w, q16, n, r_begin, r_end, y, y_stride, tile);
    }
    case Route::kPacked: {
      const DotKernels::PackedTileFn tile = w.dtype == DType::Q8_0   ? k.q8_0_packed
                                            : w.dtype == DType::Q6_K ? k.q6_k_packed
                                                                     : k.i8_packed;
      return packed_rows(w, q16, n, r_begin, r_end, y, y_stride, tile);
    }
    case Route::kPacked8:
      return packed_rows(w, static_cast<const BlockQ8Act*>(x.blocks()), n, r_begin, r_end, y, y_stride,
                         w.dtype == DType::Q8_0 ? k.q8_0_packed8 : k.q4_0_packed);
    case Route::kI8Columns:
      break;
  }
  fail("matmul: input-major int8 weights have no row-range kernel");
}

void matmul(const WeightMatrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool) {
  const WeightMatrix* ws[] = {&w};
  float* const ys[] = {y};
  matmul_shared_input(ws, x, n_tokens, ys, pool);
}

void matmul_shared_input(std::span<const WeightMatrix* const> ws, const float* x, int64_t n_tokens,
                         std::span<float* const> ys, ThreadPool& pool) {
  if (ws.size() != ys.size()) fail("matmul: ", ws.size(), " matrices but ", ys.size(), " outputs");
  if (ws.empty()) return;
  const DotKernels& k = active_dot_kernels();
  const Route route = route_for(*ws[0], k);
  bool shared = route != Route::kI8Columns;
  for (const WeightMatrix* w : ws)
    shared = shared && w->cols == ws[0]->cols && input_kind(route_for(*w, k)) == input_kind(route) &&
             route_for(*w, k) != Route::kI8Columns;
  if (!shared) {
    // One at a time (a lone matrix other than input-major int8 always shares).
    for (size_t i = 0; i < ws.size(); ++i)
      if (route_for(*ws[i], k) == Route::kI8Columns)
        matmul_i8(*ws[i], x, n_tokens, ys[i], pool, k);
      else
        matmul_shared_input(ws.subspan(i, 1), x, n_tokens, ys.subspan(i, 1), pool);
    return;
  }
  // This thread's input and task table, reused by the next call. Workers
  // get plain pointers (naming a thread_local in the lambda would reach
  // their own, empty, copy).
  thread_local MatmulInput input;
  thread_local std::vector<int64_t> first_task;
  input.set_all(input_kind(route), x, n_tokens, ws[0]->cols, pool);
  // Tasks of 16 rows (contiguous ranges per thread, so each thread streams
  // its part of each matrix once), the matrices one after another:
  // first[i] is matrix i's first task.
  constexpr int64_t kRowsPerTask = 16;
  first_task.assign(ws.size() + 1, 0);
  for (size_t i = 0; i < ws.size(); ++i)
    first_task[i + 1] = first_task[i] + (ws[i]->rows + kRowsPerTask - 1) / kRowsPerTask;
  const MatmulInput* in = &input;
  const int64_t* first = first_task.data();
  pool.parallel_for(first_task.back(), [&](int64_t b, int64_t e, int) {
    for (size_t i = 0; i < ws.size() && b < e; ++i) {
      const int64_t tb = std::max(b, first[i]), te = std::min(e, first[i + 1]);
      if (tb >= te) continue;
      const WeightMatrix& w = *ws[i];
      const int64_t r0 = (tb - first[i]) * kRowsPerTask, r1 = std::min(w.rows, (te - first[i]) * kRowsPerTask);
      matmul_rows(w, *in, r0, r1, ys[i] + r0, w.rows);
    }
  });
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
