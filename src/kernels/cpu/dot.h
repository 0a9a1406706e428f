// Dot products of one stored weight row with one activation row: the inner
// loop of every matrix product. Written by hand per instruction set because
// the quantised formats need integer dot-product instructions (VNNI) and
// block-wise scaling that no SIMD library expresses directly.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/quant.h"
#include "kernels/cpu/isa.h"
#include "kernels/weight_matrix.h"

namespace grok {

// Activations quantised to 16 bits for the integer kernels, in blocks of 32
// matching the weights' blocks: value = d * q. 16 bits, not llama.cpp's 8:
// int16×int16 multiply-adds (madd_epi16, VNNI dpwssd) do as many products per
// instruction as the int8 ones, and the activation error falls from ~0.4% to
// ~0.002% of the block's largest value (8-bit moved logits by 0.6 on a random
// Q8_0 model; 16-bit keeps it within 1e-3 of the float64 reference). The
// packed Q4_0 kernel is the exception (BlockQ8Act below).
// `sum` = Σq lets formats with an offset (Q4_0's q-8) fold it in per block.
struct BlockQ16Act {
  float d;
  int32_t sum;
  int16_t q[32];
};
static_assert(sizeof(BlockQ16Act) == 72);

// Activations quantised to 8 bits (d = amax/127), for the packed Q4_0 kernel
// only: there the int16 products cost twice the instructions of the 4-bit
// weights' bytes and decode stopped being memory-bound, while u8×s8 VNNI
// (dpbusd) does 4 products a lane. The activation rounding (~0.4% of the
// block's largest value) is far below Q4_0's own weight rounding (~6% of
// its block's largest weight). q is stored in the packed Q4_0 lane order:
// q[8c + j] = activation 8c + kQ4_0LaneOrder[j] (kernels/packed_matrix.h).
struct BlockQ8Act {
  float d;
  int32_t sum;  // Σq, for Q4_0's offset
  int8_t q[32];
};
static_assert(sizeof(BlockQ8Act) == 40);
inline constexpr int kQ4_0LaneOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};

struct DotKernels {
  Isa isa;
  // n elements; n need not be a multiple of anything.
  float (*f32)(const float* w, const float* x, int64_t n);
  float (*f16)(const uint16_t* w, const float* x, int64_t n);
  float (*bf16)(const uint16_t* w, const float* x, int64_t n);
  // nb blocks of 32.
  float (*q8_0)(const BlockQ8_0* w, const BlockQ16Act* x, int64_t nb);
  float (*q4_0)(const BlockQ4_0* w, const BlockQ16Act* x, int64_t nb);
  // K-quant rows (BlockQ4_K / BlockQ6_K at w, any alignment) against nb32
  // activation blocks of 32, nb32 a multiple of 8 (a super-block is 256).
  float (*q4_k)(const std::byte* w, const BlockQ16Act* x, int64_t nb32);
  float (*q6_k)(const std::byte* w, const BlockQ16Act* x, int64_t nb32);
  // x[0..32·nb) -> nb activation blocks.
  void (*quantize_act)(const float* x, BlockQ16Act* out, int64_t nb);
  // The same as 8-bit blocks in the packed Q4_0 lane order.
  void (*quantize_act8)(const float* x, BlockQ8Act* out, int64_t nb);
  // A tile of up to kTileRows weight rows × kTileTokens tokens:
  // y[t·y_stride + r] = row r · token t, for r < rows, t < tokens. Rows are
  // row_bytes apart from w; token t's activation blocks start at x + t·nb.
  // Tiles let a kernel reuse each decoded weight block across tokens and
  // each activation block across rows (prompt processing is compute-bound).
  using TileFn = void (*)(const std::byte* w, uint64_t row_bytes, int rows, const BlockQ16Act* x, int tokens,
                          int64_t nb, float* y, int64_t y_stride);
  TileFn q8_0_tile;
  TileFn q4_0_tile;
  TileFn q4_k_tile;  // nb counts blocks of 32 here too
  TileFn q6_k_tile;
  // One group of a packed Q8_0 / Q4_0 / Q6_K matrix (kernels/packed_matrix.h) ×
  // up to kPackedTokens tokens: y[t·y_stride + r] = row r · token t for
  // r < rows, t < tokens. nullptr (left out of the table) where the ISA has no packed kernel (the
  // matrix's row-major data is used instead). Each (row, token) gets the
  // same arithmetic whatever `tokens` is: per block, the exact integer dot
  // converted to float, times fl(weight scale · activation scale), fused-
  // added to one float accumulator, blocks in order from zero.
  using PackedTileFn = void (*)(const std::byte* group, int64_t nb, int rows, const BlockQ16Act* x, int tokens,
                                float* y, int64_t y_stride);
  PackedTileFn q8_0_packed = nullptr;
  // Q4_0's takes 8-bit activation blocks (quantize_act8_scalar), same arithmetic.
  using PackedQ8TileFn = void (*)(const std::byte* group, int64_t nb, int rows, const BlockQ8Act* x, int tokens,
                                  float* y, int64_t y_stride);
  PackedQ8TileFn q4_0_packed = nullptr;
  // Q8_0's against 8-bit activation blocks (WeightMatrix::activations8).
  PackedQ8TileFn q8_0_packed8 = nullptr;
  PackedTileFn q6_k_packed = nullptr;  // per 16-weight sub-block instead of per block; nb counts blocks of 32
  PackedTileFn i8_packed = nullptr;    // as Q8_0's, the scales bf16
  // DType::I8 (kernels/cpu/i8_columns.h): for outputs r in [r_begin, r_end)
  // and tokens t < n_tokens, y[t·w.rows + r] = Σ x[t·w.cols + i]·W[r][i] over
  // the inputs i in [i_begin, i_end) (overwritten; 0 for an empty range), each
  // scale block's part of the range scaled as a whole. x is fp32, used as it
  // is (not quantised).
  void (*i8_columns)(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t i_begin, int64_t i_end,
                     int64_t r_begin, int64_t r_end, float* y);
  // h[i] = gelu_tanh(h[i])·v[i] for i < n (the experts' gated activation).
  void (*gelu_mul)(float* h, const float* v, int64_t n);
  // Attention: p[i] = cap·tanh(p[i]/cap) (Grok's logit cap), and softmax
  // numerators p[i] = e^(p[i] - shift).
  void (*soft_cap)(float* p, int64_t n, float cap);
  void (*exp_shifted)(float* p, int64_t n, float shift);
  // y[i] += a·x[i] (attention's weighted sum of values).
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // Attention over a block of cached keys or values, n_rows rows of len
  // floats one after another, in one call instead of one per key:
  // out[j] = rows[j]·x (f32's arithmetic), and y += a[j]·rows[j] in order
  // of j (axpy's), rows with a[j] = 0 skipped.
  void (*dot_rows)(const float* rows, int64_t n_rows, int64_t len, const float* x, float* out);
  void (*axpy_rows)(const float* rows, int64_t n_rows, int64_t len, const float* a, float* y);
};

// The two above from an ISA's own dot and axpy (inlined in its file).
template <float (*Dot)(const float*, const float*, int64_t)>
void dot_rows_of(const float* rows, int64_t n_rows, int64_t len, const float* x, float* out) {
  for (int64_t j = 0; j < n_rows; ++j) out[j] = Dot(rows + j * len, x, len);
}
template <void (*Axpy)(float, const float*, float*, int64_t)>
void axpy_rows_of(const float* rows, int64_t n_rows, int64_t len, const float* a, float* y) {
  for (int64_t j = 0; j < n_rows; ++j)
    if (a[j] != 0.0f) Axpy(a[j], rows + j * len, y, len);
}

constexpr int kTileRows = 4;
constexpr int kTileTokens = 4;
constexpr int kPackedTokens = 8;

// A tile computed one (row, token) dot at a time: the generic and AVX2 tiles.
template <typename Block, float (*Dot)(const Block*, const BlockQ16Act*, int64_t)>
void tile_by_dots(const std::byte* w, uint64_t row_bytes, int rows, const BlockQ16Act* x, int tokens, int64_t nb,
                  float* y, int64_t y_stride) {
  for (int r = 0; r < rows; ++r)
    for (int t = 0; t < tokens; ++t)
      y[t * y_stride + r] = Dot(reinterpret_cast<const Block*>(w + r * row_bytes), x + t * nb, nb);
}

// The scalar activation quantiser. Every path gives the same activation
// blocks bit for bit (AVX-512 has a vector copy of it; a test checks).
void quantize_act_scalar(const float* x, BlockQ16Act* out, int64_t nb);
// x[0..32·nb) -> nb 8-bit blocks in the packed Q4_0 lane order; every ISA's
// version gives the same blocks bit for bit.
void quantize_act8_scalar(const float* x, BlockQ8Act* out, int64_t nb);

const DotKernels& dot_kernels(Isa isa);  // throws if the CPU lacks `isa`
inline const DotKernels& active_dot_kernels() { return dot_kernels(active_isa()); }

// Per-ISA tables, defined in dot_<isa>.cc (each compiled for its ISA).
extern const DotKernels kDotGeneric;
extern const DotKernels kDotAvx2;
extern const DotKernels kDotAvx512;

}  // namespace grok
