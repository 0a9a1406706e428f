// y = x · Wᵀ for DType::I8 weights (the released checkpoint's int8 layout,
// kernels/weight_matrix.h), fp32 activations used as they are, fp32
// accumulation. One implementation for every ISA: each dot_<isa>.cc includes
// this header and instantiates I8Columns with its vector width, FMA and
// int8/bf16 conversions, and it is compiled there with that file's flags.
//
// The weights are stored input-major, so the weights of C consecutive
// outputs are C contiguous bytes of each stored row. A tile keeps T tokens ×
// C outputs of fp32 sums in registers and walks stored rows: it widens the
// row's C int8s to fp32 and FMAs them with the token's broadcast activation.
// Default mode: a block's sums are multiplied by the block's scale vector
// when the block ends and added to the output. round_to_bf16: each weight is
// formed as bf16(q·s) before its FMA, and the sums need no scaling.
//
// Decode (n_tokens ≤ kTokens) reads each weight byte exactly once: the rows
// go in groups of kGroupRows, and a group sweeps across the outputs tile by
// tile (the tiles' sums wait in a small buffer between groups), so memory is
// read as a few long sequential runs. matmul gives each thread a contiguous
// range of stored rows (all outputs) for the same reason: a range of outputs
// of every row instead touches a new page at every row and streams slower.
//
// Prompts are compute-bound: a range of outputs per thread, and each block's
// slice of a tile is packed into a contiguous buffer (the stored rows are a
// large, often power-of-two, stride apart and would fight over a few cache
// sets), then every 4-token tile runs over the packed copy.
//
// Tiles start on 64-byte lines of the stored rows where the stride allows;
// the few outputs before the first line and after the last whole vector go
// through a one-vector tile on a zero-padded copy. Every output sees the same
// sequence of fp32 operations whichever tile computes it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "kernels/weight_matrix.h"

namespace grok {
// Internal linkage on purpose: every dot_<isa>.cc gets its own copy, compiled
// for its ISA (inline functions with external linkage could be merged by the
// linker, and the generic path could end up running AVX-512 code).
namespace {

template <int W>
struct I8Vec;
#define GROK_I8_VEC(W_)                                       \
  template <>                                                \
  struct I8Vec<W_> {                                         \
    typedef float F __attribute__((vector_size(4 * W_)));    \
    typedef uint32_t U __attribute__((vector_size(4 * W_))); \
  }
GROK_I8_VEC(4);
GROK_I8_VEC(8);
GROK_I8_VEC(16);
#undef GROK_I8_VEC

// Isa provides kWidth (fp32 lanes per vector), kDecodeVecs (vectors of a
// one-token tile), kAccVecs (accumulator vectors a tile may hold), kPromptVecs
// (vectors of a 4-token prompt tile), and on F = I8Vec<kWidth>::F: splat(s)
// (s in every lane), fma(a, b, c) = a·b + c, load_i8(p) (kWidth int8s at any
// address, as fp32), load_bf16(p) (kWidth bf16s at any address, as fp32) and
// store_bf16(p, v) (the high halves of v's lanes, bf16 values, to any
// address). The conversions and the splat are the ISA's own instructions:
// GCC 12 turns __builtin_convertvector between element widths into scalar
// code, and a splat written as a loop into one masked broadcast per lane.
template <typename Isa>
struct I8Columns {
  static constexpr int W = Isa::kWidth;
  using F = typename I8Vec<W>::F;
  using U = typename I8Vec<W>::U;
  static constexpr int kTokens = 4;                 // decode up to this many tokens; prompt tiles
  static constexpr int64_t kGroupRows = 8;          // stored rows per decode sweep
  static constexpr int64_t kSpan = 32768;           // outputs × tokens of a decode sweep (its sums fit L2)
  static constexpr int kPrefetchBytes = 1024;       // decode prefetch distance along a stored row
  static constexpr int64_t kPackBytes = 128 << 10;  // a packed chunk of a prompt tile's block (fits L2)

  static F load(const float* p) {
    F v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(float* p, F v) { std::memcpy(p, &v, sizeof v); }
  // f32_to_bf16 (round to nearest even) on every lane, kept as fp32. Exact for
  // NaNs too: q·s is only NaN when s is (low 16 bits 0, so no carry) or 0·inf.
  static F round_bf16(F v) {
    U u = (U)v;
    u += 0x7fffu + ((u >> 16) & 1u);
    return (F)(u & 0xffff0000u);
  }

  // Where a tile's weights come from: int8 straight from the matrix, scaled
  // at the end of the block (Scaled) or rounded as bf16(q·s) per weight in
  // the loop (Rounded), or bf16(q·s) precomputed by pack (Bf16).
  enum class Src { Scaled, Rounded, Bf16 };
  // What a tile does with its sums at the end: keep them as they are (the
  // block goes on: they come back as acc_in), or finish its part of the
  // block into the output, as the first part (y = …) or a later one (y += …).
  enum class Out { Partial, First, Add };

  // For T tokens and C = NV·W outputs: acc[t] = (acc_in ? acc_in[t·C + ·] : 0)
  // + Σ_{i<k} x[t·x_stride + i] · w_i, w_i the C weights of row i at
  // w + i·stride; then out[t·out_stride + ·] = acc (Partial), or
  // (First ? 0 : out) + (Scaled ? scale·acc : acc).
  template <int NV, int T, Src S>
  static void tile(const std::byte* w, uint64_t stride, int64_t k, const float* x, int64_t x_stride,
                   const float* scale, const float* acc_in, float* out, int64_t out_stride, Out mode) {
    constexpr int C = NV * W;
    F acc[T][NV];
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < NV; ++v) acc[t][v] = acc_in ? load(acc_in + t * C + v * W) : F{};
    for (int64_t i = 0; i < k; ++i) {
      const std::byte* p = w + uint64_t(i) * stride;
      if constexpr (S != Src::Bf16)
        if (stride > uint64_t(C))  // not a packed copy
          for (int c = 0; c < C; c += 64) __builtin_prefetch(p + kPrefetchBytes + c);
      F wv[NV];
      for (int v = 0; v < NV; ++v) {
        if constexpr (S == Src::Bf16) {
          wv[v] = Isa::load_bf16(p + 2 * v * W);
        } else {
          wv[v] = Isa::load_i8(p + v * W);
          if constexpr (S == Src::Rounded) wv[v] = round_bf16(wv[v] * load(scale + v * W));
        }
      }
      for (int t = 0; t < T; ++t) {
        const F xb = Isa::splat(x[t * x_stride + i]);
        for (int v = 0; v < NV; ++v) acc[t][v] = Isa::fma(xb, wv[v], acc[t][v]);
      }
    }
    // Every operation explicit (GCC contracts a·b + c into an FMA in C++ by
    // default, in some instantiations and not others): an output's value must
    // not depend on the tile that computes it, or on the thread count.
    for (int t = 0; t < T; ++t)
      for (int v = 0; v < NV; ++v) {
        float* dst = out + t * out_stride + v * W;
        F r = acc[t][v];
        if constexpr (S == Src::Scaled) {
          if (mode == Out::First) r = r * load(scale + v * W);
          if (mode == Out::Add) r = Isa::fma(r, load(scale + v * W), load(dst));
        } else {
          if (mode == Out::Add) r = r + load(dst);
        }
        store(dst, r);
      }
  }

  // fn(b, i0, i1) for the part [i0, i1) of each scale block b inside [i_begin, i_end).
  template <typename Fn>
  static void for_block_parts(const WeightMatrix& w, int64_t i_begin, int64_t i_end, Fn fn) {
    const int64_t bs = w.scale_block_cols();
    for (int64_t b = i_begin / bs; b * bs < i_end; ++b) fn(b, std::max(i_begin, b * bs), std::min(i_end, (b + 1) * bs));
  }

  // Block b's scale for output r. The scales may sit at any byte offset.
  static const std::byte* scales_at(const WeightMatrix& w, int64_t b, int64_t r) {
    return reinterpret_cast<const std::byte*>(w.scales) + 2 * uint64_t(b * w.rows + r);
  }
  // Block b's scales for outputs [r, r + n) as fp32 (n a multiple of W).
  static void load_scales(const WeightMatrix& w, int64_t b, int64_t r, int64_t n, float* out) {
    const std::byte* s = scales_at(w, b, r);
    for (int64_t c = 0; c < n; c += W) store(out + c, Isa::load_bf16(s + 2 * c));
  }
  // The same for n ≤ NV·W outputs, zeros after them.
  template <int NV>
  static void load_scales_padded(const WeightMatrix& w, int64_t b, int64_t r, int64_t n, float* out) {
    const std::byte* s = scales_at(w, b, r);
    for (int v = 0; v < NV; ++v) {
      const int64_t left = n - v * W;
      if (left >= W) {
        store(out + v * W, Isa::load_bf16(s + 2 * v * W));
        continue;
      }
      std::byte part[2 * W] = {};
      if (left > 0) std::memcpy(part, s + 2 * v * W, size_t(2 * left));
      store(out + v * W, Isa::load_bf16(part));
    }
  }

  // Decode: outputs [r, r + n) (n a multiple of C = NV·W, n·T ≤ kSpan) for
  // tokens [0, T) over stored rows [i_begin, i_end).
  template <int NV, int T>
  static void direct(const WeightMatrix& w, const float* x, int64_t i_begin, int64_t i_end, int64_t r, int64_t n,
                     float* y, float* scale, float* acc) {
    constexpr int C = NV * W;
    bool first = true;
    for_block_parts(w, i_begin, i_end, [&](int64_t b, int64_t i_b, int64_t i_e) {
      load_scales(w, b, r, n, scale);
      for (int64_t i0 = i_b; i0 < i_e; i0 += kGroupRows) {
        const int64_t k = std::min(kGroupRows, i_e - i0);
        const bool fresh = i0 == i_b, last = i0 + k == i_e;
        const Out mode = !last ? Out::Partial : first ? Out::First : Out::Add;
        const std::byte* wp = w.data + uint64_t(i0) * w.row_bytes + uint64_t(r);
        for (int64_t j = 0; j < n; j += C) {
          float* a = acc + j * T;
          float* out = last ? y + r + j : a;
          const int64_t os = last ? w.rows : C;
          if (w.round_to_bf16)
            tile<NV, T, Src::Rounded>(wp + j, w.row_bytes, k, x + i0, w.cols, scale + j, fresh ? nullptr : a, out, os,
                                      mode);
          else
            tile<NV, T, Src::Scaled>(wp + j, w.row_bytes, k, x + i0, w.cols, scale + j, fresh ? nullptr : a, out, os,
                                     mode);
        }
      }
      first = false;
    });
  }

  // Stored rows [i0, i0 + k) of outputs [r, r + n) (n ≤ C = NV·W) as a
  // contiguous copy of C columns a row, zeros past n: the int8s as they are,
  // or (round_to_bf16) the bits of bf16(q·s).
  template <int NV>
  static void pack(const WeightMatrix& w, int64_t i0, int64_t k, int64_t r, int64_t n, const float* scale,
                   std::byte* out) {
    constexpr int C = NV * W;
    std::byte padded[C] = {};
    for (int64_t i = 0; i < k; ++i) {
      const std::byte* row = w.data + uint64_t(i0 + i) * w.row_bytes + uint64_t(r);
      if (n < C) row = static_cast<const std::byte*>(std::memcpy(padded, row, size_t(n)));
      if (!w.round_to_bf16) {
        std::memcpy(out + i * C, row, C);
        continue;
      }
      for (int v = 0; v < NV; ++v)
        Isa::store_bf16(out + 2 * (i * C + v * W), round_bf16(Isa::load_i8(row + v * W) * load(scale + v * W)));
    }
  }

  // One tile of T tokens over a packed chunk.
  template <int NV, int T>
  static void packed_tile(const std::byte* packed, int64_t k, const float* x, int64_t x_stride, const float* scale,
                          const float* acc_in, float* out, int64_t out_stride, Out mode, bool rounded) {
    constexpr int C = NV * W;
    if (rounded)
      tile<NV, T, Src::Bf16>(packed, 2 * C, k, x, x_stride, scale, acc_in, out, out_stride, mode);
    else
      tile<NV, T, Src::Scaled>(packed, C, k, x, x_stride, scale, acc_in, out, out_stride, mode);
  }

  // Prompt: outputs [r, r + n) (n ≤ C = NV·W) for every token over stored
  // rows [i_begin, i_end), each block's slice packed (in chunks of at most
  // kPackBytes) and reused by every 4-token tile; y[t·y_stride + c] for the
  // C columns c (of which n are outputs). acc [n_tokens][C] carries the
  // tiles' sums between chunks.
  template <int NV>
  static void prompt(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t i_begin, int64_t i_end,
                     int64_t r, int64_t n, float* y, int64_t y_stride, std::byte* packed, float* acc) {
    constexpr int C = NV * W;
    alignas(64) float scale[C];
    const bool rounded = w.round_to_bf16;
    const int64_t chunk = std::max<int64_t>(1, kPackBytes / (rounded ? 2 * C : C));
    bool first = true;
    for_block_parts(w, i_begin, i_end, [&](int64_t b, int64_t i_b, int64_t i_e) {
      load_scales_padded<NV>(w, b, r, n, scale);
      for (int64_t i0 = i_b; i0 < i_e; i0 += chunk) {
        const int64_t k = std::min(chunk, i_e - i0);
        const bool fresh = i0 == i_b, last = i0 + k == i_e;
        const Out mode = !last ? Out::Partial : first ? Out::First : Out::Add;
        pack<NV>(w, i0, k, r, n, scale, packed);
        for (int64_t t = 0; t < n_tokens; t += kTokens) {
          const float* xt = x + t * w.cols + i0;
          const float* in = fresh ? nullptr : acc + t * C;
          float* out = last ? y + t * y_stride : acc + t * C;
          const int64_t os = last ? y_stride : C;
          switch (std::min<int64_t>(kTokens, n_tokens - t)) {
            case 1: packed_tile<NV, 1>(packed, k, xt, w.cols, scale, in, out, os, mode, rounded); break;
            case 2: packed_tile<NV, 2>(packed, k, xt, w.cols, scale, in, out, os, mode, rounded); break;
            case 3: packed_tile<NV, 3>(packed, k, xt, w.cols, scale, in, out, os, mode, rounded); break;
            default: packed_tile<NV, 4>(packed, k, xt, w.cols, scale, in, out, os, mode, rounded); break;
          }
        }
      }
      first = false;
    });
  }

  static constexpr int pow2_floor(int n) { return n >= 16 ? 16 : n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1; }

  // Sweeps of tiles of NV vectors while whole tiles fit, then of NV/2, ...:
  // returns where the whole vectors end.
  template <int NV, int T>
  static int64_t direct_from(const WeightMatrix& w, const float* x, int64_t i_begin, int64_t i_end, int64_t r,
                             int64_t r_end, float* y, float* scale, float* acc) {
    constexpr int64_t C = NV * W, kMaxSpan = std::max<int64_t>(C, kSpan / T / C * C);
    while (r_end - r >= C) {
      const int64_t n = std::min(kMaxSpan, (r_end - r) / C * C);
      direct<NV, T>(w, x, i_begin, i_end, r, n, y, scale, acc);
      r += n;
    }
    if constexpr (NV > 1) return direct_from<NV / 2, T>(w, x, i_begin, i_end, r, r_end, y, scale, acc);
    return r;
  }
  template <int NV>
  static int64_t prompt_from(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t i_begin, int64_t i_end,
                             int64_t r, int64_t r_end, float* y, std::byte* packed, float* acc) {
    for (; r_end - r >= NV * W; r += NV * W)
      prompt<NV>(w, x, n_tokens, i_begin, i_end, r, NV * W, y + r, w.rows, packed, acc);
    if constexpr (NV > 1) return prompt_from<NV / 2>(w, x, n_tokens, i_begin, i_end, r, r_end, y, packed, acc);
    return r;
  }

  // Fewer than W outputs (a range's head up to a line boundary, or the end
  // of the matrix): a one-vector prompt tile over zero-padded copies, into
  // tail [n_tokens][W], then copied out. The same operations as every other
  // output, so an output's value does not depend on the tile computing it.
  static void narrow(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t i_begin, int64_t i_end,
                     int64_t r, int64_t n, float* y, std::byte* packed, float* acc, float* tail) {
    prompt<1>(w, x, n_tokens, i_begin, i_end, r, n, tail, W, packed, acc);
    for (int64_t t = 0; t < n_tokens; ++t) std::memcpy(y + t * w.rows + r, tail + t * W, size_t(n) * sizeof(float));
  }

  // Outputs [r, r_end): whole vectors, then the rest.
  static void run(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t i_begin, int64_t i_end, int64_t r,
                  int64_t r_end, float* y, float* scale, float* acc, std::byte* packed, float* tail) {
    constexpr int kAcc = Isa::kAccVecs;
    switch (n_tokens) {
      case 1:
        r = direct_from<pow2_floor(std::min(Isa::kDecodeVecs, kAcc)), 1>(w, x, i_begin, i_end, r, r_end, y, scale,
                                                                          acc);
        break;
      case 2: r = direct_from<pow2_floor(kAcc / 2), 2>(w, x, i_begin, i_end, r, r_end, y, scale, acc); break;
      case 3: r = direct_from<pow2_floor(kAcc / 3), 3>(w, x, i_begin, i_end, r, r_end, y, scale, acc); break;
      case 4: r = direct_from<pow2_floor(kAcc / 4), 4>(w, x, i_begin, i_end, r, r_end, y, scale, acc); break;
      default: r = prompt_from<Isa::kPromptVecs>(w, x, n_tokens, i_begin, i_end, r, r_end, y, packed, acc);
    }
    if (r < r_end) narrow(w, x, n_tokens, i_begin, i_end, r, r_end - r, y, packed, acc, tail);
  }

  // The DotKernels::i8_columns entry (see there).
  static void columns(const WeightMatrix& w, const float* x, int64_t n_tokens, int64_t i_begin, int64_t i_end,
                      int64_t r_begin, int64_t r_end, float* y) {
    if (i_begin >= i_end) {
      for (int64_t t = 0; t < n_tokens; ++t) std::fill(y + t * w.rows + r_begin, y + t * w.rows + r_end, 0.0f);
      return;
    }
    if (n_tokens <= 0 || r_begin >= r_end) return;
    // This thread's scratch, reused across calls.
    thread_local std::vector<float> scale, acc, tail;
    thread_local std::vector<std::byte> packed;
    constexpr int64_t kC = Isa::kPromptVecs * W;
    scale.resize(size_t(kSpan));
    acc.resize(size_t(std::max(kSpan, (n_tokens + kTokens) * kC)));
    tail.resize(size_t(n_tokens * W));
    packed.resize(size_t(kPackBytes + 2 * kC));
    // Tiles start on 64-byte lines of the stored rows where the stride allows.
    int64_t head = 0;
    if (w.row_bytes % 64 == 0) head = int64_t(-(reinterpret_cast<uintptr_t>(w.data) + uint64_t(r_begin)) % 64);
    head = std::min(head, r_end - r_begin);
    if (head > 0)
      run(w, x, n_tokens, i_begin, i_end, r_begin, r_begin + head, y, scale.data(), acc.data(), packed.data(),
          tail.data());
    run(w, x, n_tokens, i_begin, i_end, r_begin + head, r_end, y, scale.data(), acc.data(), packed.data(),
        tail.data());
  }
};

}  // namespace
}  // namespace grok
