// AVX-512 (F, BW, VL, VNNI) kernels (compiled with those flags; called only
// when the CPU has them). Floats use 512-bit FMAs; quantised prompts use
// 4-row × 4-token tiles of VNNI's int16 dot product, one 32-element block per
// 512-bit instruction.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/dot.h"
#include "kernels/cpu/i8_columns.h"
#include "kernels/cpu/vec_math.h"

namespace grok {
namespace {

template <typename Load, typename Tail>
float dot16(const float* x, int64_t n, Load load, Tail tail) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_fmadd_ps(load(i), _mm512_loadu_ps(x + i), a0);
    a1 = _mm512_fmadd_ps(load(i + 16), _mm512_loadu_ps(x + i + 16), a1);
    a2 = _mm512_fmadd_ps(load(i + 32), _mm512_loadu_ps(x + i + 32), a2);
    a3 = _mm512_fmadd_ps(load(i + 48), _mm512_loadu_ps(x + i + 48), a3);
  }
  for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(load(i), _mm512_loadu_ps(x + i), a0);
  float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) s += tail(i) * x[i];
  return s;
}

float f32_dot(const float* w, const float* x, int64_t n) {
  return dot16(x, n, [w](int64_t i) { return _mm512_loadu_ps(w + i); }, [w](int64_t i) { return w[i]; });
}

float f16_dot(const uint16_t* w, const float* x, int64_t n) {
  return dot16(
      x, n, [w](int64_t i) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))); },
      [w](int64_t i) { return _cvtsh_ss(w[i]); });
}

float bf16_dot(const uint16_t* w, const float* x, int64_t n) {
  return dot16(
      x, n,
      [w](int64_t i) {
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      },
      [w](int64_t i) { return bf16_to_f32(w[i]); });
}

// The 32 weights of a block as int16, and their scale.
struct WidenQ8_0 {
  static __m512i widen(const std::byte* p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)));
  }
  static float scale(const std::byte* p) { return _cvtsh_ss(load_u16(p)); }
  static constexpr uint64_t kBlockBytes = sizeof(BlockQ8_0);
  static uint16_t load_u16(const std::byte* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
  }
};

struct WidenQ4_0 {
  // Byte i holds element i (low nibble) and i + 16 (high nibble): widened
  // to int16 first, one AND and one shift split them, and the 8 is
  // subtracted in int16 so no offset term is needed.
  static __m512i widen(const std::byte* p) {
    const __m256i q = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    const __m256i lo = _mm256_and_si256(q, _mm256_set1_epi16(0x0F)), hi = _mm256_srli_epi16(q, 4);
    return _mm512_sub_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi16(8));
  }
  static float scale(const std::byte* p) { return WidenQ8_0::scale(p); }
  static constexpr uint64_t kBlockBytes = sizeof(BlockQ4_0);
};

// R × T outputs stay in registers over all blocks; each block's weights
// are widened once and used for all T tokens, each activation block for all
// R rows. Every output gets the same arithmetic whatever R and T are (per
// block: an exact int32 dot in 16 lanes, converted, times the product of
// the two scales, added to 16 float lanes; even and odd blocks into two
// accumulators, so a single row's FMAs are not one dependency chain; the
// two added and their lanes summed at the end), so a token's result does
// not depend on which other tokens share its tile: decode (1 × 1), tile
// edges and full tiles agree bit for bit.
template <typename W, int R, int T>
void tile_fixed(const std::byte* w, uint64_t row_bytes, const BlockQ16Act* x, int64_t nb, float* y,
                int64_t y_stride) {
  __m512 acc[2][R][T];
  for (auto& half : acc)
    for (auto& row : half)
      for (auto& a : row) a = _mm512_setzero_ps();
  auto block = [&](int64_t b, __m512 (&a)[R][T]) {
    __m512i wv[R];
    float wd[R];
    for (int r = 0; r < R; ++r) {
      const std::byte* blk = w + r * row_bytes + uint64_t(b) * W::kBlockBytes;
      wv[r] = W::widen(blk);
      wd[r] = W::scale(blk);
    }
    for (int t = 0; t < T; ++t) {
      const BlockQ16Act& xb = x[t * nb + b];
      const __m512i xv = _mm512_loadu_si512(xb.q);
      for (int r = 0; r < R; ++r) {
        const __m512i s = _mm512_dpwssd_epi32(_mm512_setzero_si512(), wv[r], xv);
        a[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(wd[r] * xb.d), a[r][t]);
      }
    }
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    block(b, acc[0]);
    block(b + 1, acc[1]);
  }
  if (b < nb) block(b, acc[0]);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * y_stride + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][r][t], acc[1][r][t]));
}

template <typename W>
float row_dot(const std::byte* w, const BlockQ16Act* x, int64_t nb) {
  float y;
  tile_fixed<W, 1, 1>(w, 0, x, nb, &y, 1);
  return y;
}

// Groups of 4 rows × 4 tokens where possible (as two 2 × 4 tiles); decode
// and the edges one (row, token) at a time (several rows per call stream
// slower here: each row is a separate memory stream).
template <typename W>
void tile(const std::byte* w, uint64_t row_bytes, int rows, const BlockQ16Act* x, int tokens, int64_t nb, float* y,
          int64_t y_stride) {
  int r = 0;
  if (tokens >= kTileTokens)
    for (; r + kTileRows <= rows; r += kTileRows) {
      int t = 0;
      // Two 2-row halves: 2 × 4 outputs × 2 accumulators fill half the registers.
      for (; t + kTileTokens <= tokens; t += kTileTokens)
        for (int h = 0; h < kTileRows; h += 2)
          tile_fixed<W, 2, kTileTokens>(w + (r + h) * row_bytes, row_bytes, x + t * nb, nb, y + t * y_stride + r + h,
                                        y_stride);
      for (; t < tokens; ++t)
        for (int rr = r; rr < r + kTileRows; ++rr) y[t * y_stride + rr] = row_dot<W>(w + rr * row_bytes, x + t * nb, nb);
    }
  for (; r < rows; ++r)
    for (int t = 0; t < tokens; ++t) y[t * y_stride + r] = row_dot<W>(w + r * row_bytes, x + t * nb, nb);
}

// Packed Q8_0 / Q4_0 / I8 groups (kernels/packed_matrix.h): lane r of every
// register is row r. Q8_0 and I8 chunks are widened to int16 pairs and
// multiplied with one broadcast 16-bit activation pair per token (16 dpwssd
// per block per token for 16 rows); Q4_0's nibbles are masked into bytes
// and multiplied with 4 broadcast 8-bit activations (8 dpbusd). Integer sums
// are exact, so a token's block sum may be split over S accumulators (to
// break the dependency chain when few tokens share the tile) without
// changing any result.
template <typename P, int T, int S>
void packed_block_tile_fixed(const std::byte* group, int64_t nb, int rows, const typename P::Act* x, float* y,
                             int64_t y_stride);

// acc + Σ lane pairs of w × the activation pair at a, broadcast.
inline __m512i dpwssd_pair(__m512i acc, __m512i w, const int16_t* a) {
  int32_t pair;
  std::memcpy(&pair, a, 4);
  return _mm512_dpwssd_epi32(acc, w, _mm512_set1_epi32(pair));
}

// The same with the broadcast folded into the instruction ({1to16}), which
// GCC 12 does not do by itself: a separate vpbroadcastd per token is a third
// of a multi-token tile's instructions. An 8-token Q8_0 tile ran 1.3-1.5x
// faster with it; Q6_K's showed no difference through the noise, so it
// keeps the intrinsic.
inline __m512i dpwssd_pair_folded(__m512i acc, __m512i w, const int16_t* a) {
  asm("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int32_t(*)[1]>(a)));
  return acc;
}

// acc + Σ lane quads of the unsigned bytes w × the 4 signed bytes at a, broadcast.
inline __m512i dpbusd_quad_folded(__m512i acc, __m512i w, const int8_t* a) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*reinterpret_cast<const int32_t(*)[1]>(a)));
  return acc;
}

// Asks for the lines `kPrefetchBytes` past [p, p + bytes) (harmless past the
// end: prefetches never fault). The hardware prefetcher alone left decode
// of packed Q4_0 at 21-27 GB/s on a [131072][1024] matrix; with this, 39-43
// (2 threads, Zen 4; the row kernel reads 30). Tiles of 4 or more tokens
// are compute-bound and take longer per byte, so the same distance in bytes
// is less time ahead: an 8-token Q8_0 tile over a [131072][1024] matrix
// (2 threads, Zen 5) took 4.4-4.5 ms at 4 KiB and 3.7 ms at 16 KiB.
template <int T>
inline void prefetch_ahead(const std::byte* p, uint64_t bytes) {
  constexpr uint64_t distance = T >= 4 ? 16384 : 4096;
  const char* ahead = reinterpret_cast<const char*>(p) + distance;
  for (uint64_t line = 0; line < bytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
}

// Blocks of 32 with one scale each (Q8_0, Q4_0, I8).
template <typename P>
struct PackedBlocks {
  using Act = typename P::Act;
  template <int T, int S>
  static void tile(const std::byte* group, int64_t nb, int rows, const Act* x, float* y, int64_t y_stride) {
    packed_block_tile_fixed<P, T, S>(group, nb, rows, x, y, y_stride);
  }
};

struct PackedQ8_0 {
  using Act = BlockQ16Act;
  static constexpr uint64_t kQuantBytes = 512;
  static __m512 scales(const __m256i* p) { return _mm512_cvtph_ps(_mm256_load_si256(p)); }
  static __m512i init(const Act&) { return _mm512_setzero_si512(); }
  // f(j, weights): chunk j, whose activations start at q + 2j.
  template <typename F>
  static void chunks(const std::byte* q, F&& f) {
    for (int j = 0; j < 16; ++j)
      f(j, _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * j))));
  }
  static __m512i dot(__m512i acc, __m512i w, const Act& x, int j) { return dpwssd_pair_folded(acc, w, x.q + 2 * j); }
};

// The formats multiplied with 8-bit activations: unsigned weight bytes,
// 4 a lane, against 4 broadcast activations (dpbusd).
struct Packed8BitActs {
  using Act = BlockQ8Act;
  static __m512 scales(const __m256i* p) { return PackedQ8_0::scales(p); }
  static __m512i dot(__m512i acc, __m512i w, const Act& x, int j) { return dpbusd_quad_folded(acc, w, x.q + 4 * j); }
};

struct PackedQ4_0 : Packed8BitActs {
  static constexpr uint64_t kQuantBytes = 256;
  // The nibbles are unsigned; Σ(q − 8)·a = Σq·a − 8·Σa.
  static __m512i init(const Act& x) { return _mm512_set1_epi32(-8 * x.sum); }
  // Lane bytes of a 64-byte chunk c, low nibbles: weights 8c + {0, 4, 1, 5};
  // high nibbles: 8c + {2, 6, 3, 7} (kQ4_0LaneOrder, which the activations
  // follow), so "j" 2c and 2c + 1 read activations q + 4j.
  template <typename F>
  static void chunks(const std::byte* q, F&& f) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_load_si512(q + 64 * c);
      f(2 * c, _mm512_and_si512(v, mask));
      f(2 * c + 1, _mm512_and_si512(_mm512_srli_epi32(v, 4), mask));
    }
  }
};

// Packed Q8_0 against 8-bit activations (WeightMatrix::activations8): half
// the multiply-adds of the 16-bit path (dpbusd does 4 products a lane),
// which keeps an 8-token tile nearer memory speed on two Zen 5 cores. The
// packing stored each weight as q + 128 (dpbusd takes unsigned bytes), in
// Q4_0's activation order, so Σ(q + 128)·a − 128·Σa is the exact sum.
struct PackedQ8_0Act8 : Packed8BitActs {
  static constexpr uint64_t kQuantBytes = 512;
  static __m512i init(const Act& x) { return _mm512_set1_epi32(-128 * x.sum); }
  template <typename F>
  static void chunks(const std::byte* q, F&& f) {
    for (int j = 0; j < 8; ++j) f(j, _mm512_load_si512(q + 64 * j));
  }
};

// The checkpoint's int8: Q8_0's chunks, each row's scale a bf16.
struct PackedI8 : PackedQ8_0 {
  static __m512 scales(const __m256i* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_load_si256(p)), 16));
  }
};

template <typename P, int T, int S>
void packed_block_tile_fixed(const std::byte* group, int64_t nb, int rows, const typename P::Act* x, float* y,
                             int64_t y_stride) {
  const auto* scales = reinterpret_cast<const __m256i*>(group + uint64_t(nb) * P::kQuantBytes);
  __m512 acc[T];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const __m512 wd = P::scales(scales + b);
    prefetch_ahead<T>(group + uint64_t(b) * P::kQuantBytes, P::kQuantBytes);
    __m512i sum[T][S];
    for (int t = 0; t < T; ++t) {
      sum[t][0] = P::init(x[t * nb + b]);
      for (int s = 1; s < S; ++s) sum[t][s] = _mm512_setzero_si512();
    }
    P::chunks(group + uint64_t(b) * P::kQuantBytes, [&](int j, __m512i wv) {
      for (int t = 0; t < T; ++t) sum[t][j % S] = P::dot(sum[t][j % S], wv, x[t * nb + b], j);
    });
    for (int t = 0; t < T; ++t) {
      __m512i s = sum[t][0];
      for (int i = 1; i < S; ++i) s = _mm512_add_epi32(s, sum[t][i]);
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wd, _mm512_set1_ps(x[t * nb + b].d)), acc[t]);
    }
  }
  const __mmask16 valid = rows >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1);
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

// Packed Q6_K groups: as above, per 16-weight sub-block (its own scale)
// instead of per block of 32, on levels stored as int8. A sub-block's exact
// integer sum is converted once and scaled by (d·scale, exact in fp32) · the
// activation block's d.
template <int T, int S>
void packed_q6_k_tile_fixed(const std::byte* group, int64_t nb, int rows, const BlockQ16Act* x, float* y,
                            int64_t y_stride) {
  constexpr uint64_t kQuantBytes = 4352;
  const int64_t n_super = nb / 8;
  const auto* d_all = reinterpret_cast<const __m256i*>(group + uint64_t(n_super) * kQuantBytes);
  __m512 acc[T];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < n_super; ++sb) {
    const std::byte* q = group + uint64_t(sb) * kQuantBytes;
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(d_all + sb));
    for (int j = 0; j < 16; ++j) {
      prefetch_ahead<T>(q + 256 * j, 256);
      __m512i sum[T][S];
      for (auto& st : sum)
        for (auto& v : st) v = _mm512_setzero_si512();
      for (int c = 0; c < 8; ++c) {
        const __m512i wv =
            _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * (8 * j + c))));
        for (int t = 0; t < T; ++t)
          sum[t][c % S] = dpwssd_pair(sum[t][c % S], wv, x[t * nb + sb * 8 + j / 2].q + 16 * (j % 2) + 2 * c);
      }
      const __m128i sc8 = _mm_load_si128(reinterpret_cast<const __m128i*>(q + 4096 + 16 * j));
      const __m512 dsc = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc8)));
      for (int t = 0; t < T; ++t) {
        __m512i s = sum[t][0];
        for (int i = 1; i < S; ++i) s = _mm512_add_epi32(s, sum[t][i]);
        const float xd = x[t * nb + sb * 8 + j / 2].d;
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dsc, _mm512_set1_ps(xd)), acc[t]);
      }
    }
  }
  const __mmask16 valid = rows >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << rows) - 1);
  for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(y + t * y_stride, valid, acc[t]);
}

struct PackedQ6_K {
  using Act = BlockQ16Act;
  template <int T, int S>
  static void tile(const std::byte* group, int64_t nb, int rows, const BlockQ16Act* x, float* y, int64_t y_stride) {
    packed_q6_k_tile_fixed<T, S>(group, nb, rows, x, y, y_stride);
  }
};

template <typename P>
void packed_tile(const std::byte* group, int64_t nb, int rows, const typename P::Act* x, int tokens, float* y,
                 int64_t y_stride) {
  switch (tokens) {
    case 1: return P::template tile<1, 4>(group, nb, rows, x, y, y_stride);
    case 2: return P::template tile<2, 2>(group, nb, rows, x, y, y_stride);
    case 3: return P::template tile<3, 2>(group, nb, rows, x, y, y_stride);
    case 4: return P::template tile<4, 1>(group, nb, rows, x, y, y_stride);
    case 5: return P::template tile<5, 1>(group, nb, rows, x, y, y_stride);
    case 6: return P::template tile<6, 1>(group, nb, rows, x, y, y_stride);
    case 7: return P::template tile<7, 1>(group, nb, rows, x, y, y_stride);
    case 8: return P::template tile<8, 1>(group, nb, rows, x, y, y_stride);
  }
}

// K-quant rows: the AVX2 kernels (see kDotAvx512 below); prompts use them one
// (row, token) at a time.
float q4_k_row(const std::byte* w, const BlockQ16Act* x, int64_t nb32) { return kDotAvx2.q4_k(w, x, nb32); }
float q6_k_row(const std::byte* w, const BlockQ16Act* x, int64_t nb32) { return kDotAvx2.q6_k(w, x, nb32); }

// 32 zmm registers: decode keeps 256 outputs in 16 accumulators, prompts 64
// outputs × 4 tokens.
struct I8Avx512 {
  static constexpr int kWidth = 16, kDecodeVecs = 16, kAccVecs = 16, kPromptVecs = 4;
  using F = I8Vec<16>::F;
  static F splat(float s) { return _mm512_set1_ps(s); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F load_i8(const std::byte* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static F load_bf16(const std::byte* p) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
  static void store_bf16(std::byte* p, F v) {
    const __m256i h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), h);
  }
};

// quantize_act_scalar's arithmetic (and quantize_act8_scalar's), 32 lanes at
// a time: the same blocks bit for bit (the product rounds to nearest even,
// as nearbyint does). The block's levels as int32, its d and Σq.
struct RoundedBlock {
  __m512i q0, q1;
  float d;
  int32_t sum;
};
RoundedBlock round_block(const float* x, float levels) {
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float d = amax / levels, inv = d > 0 ? 1.0f / d : 0.0f;
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(inv)));
  const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(inv)));
  return {q0, q1, d, _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1))};
}

void quantize_act(const float* x, BlockQ16Act* out, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const RoundedBlock r = round_block(x + b * 32, 32767.0f);
    out[b].d = r.d;
    out[b].sum = r.sum;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), _mm512_cvtsepi32_epi16(r.q0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q + 16), _mm512_cvtsepi32_epi16(r.q1));
  }
}

// The 8-bit blocks' lane order is one byte shuffle within each 16-byte half.
void quantize_act8(const float* x, BlockQ8Act* out, int64_t nb) {
  const __m256i order = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,  //
                                         0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
  for (int64_t b = 0; b < nb; ++b) {
    const RoundedBlock r = round_block(x + b * 32, 127.0f);
    out[b].d = r.d;
    out[b].sum = r.sum;
    const __m256i q = _mm256_set_m128i(_mm512_cvtsepi32_epi8(r.q1), _mm512_cvtsepi32_epi8(r.q0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), _mm256_shuffle_epi8(q, order));
  }
}

struct VecAvx512 {
  static constexpr int kWidth = 16;
  using F = __m512;
  static F splat(float s) { return _mm512_set1_ps(s); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F abs(F a) { return _mm512_abs_ps(a); }
  static F select_lt(F a, F b, F t, F f) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t); }
  static F copysign(F a, F b) {
    const __m512i sign = _mm512_set1_epi32(int(0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_andnot_si512(sign, _mm512_castps_si512(a)),
                                               _mm512_and_si512(sign, _mm512_castps_si512(b))));
  }
  static F round(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
};

}  // namespace

// Q8_0 and Q4_0 rows are the tiles' 1 × 1 case (decode and prompts give the
// same result for a token). K-quant rows are the AVX2 kernels.
const DotKernels kDotAvx512 = {
    .isa = Isa::Avx512,
    .f32 = f32_dot,
    .f16 = f16_dot,
    .bf16 = bf16_dot,
    .q8_0 = [](const BlockQ8_0* w, const BlockQ16Act* x, int64_t nb) {
      return row_dot<WidenQ8_0>(reinterpret_cast<const std::byte*>(w), x, nb);
    },
    .q4_0 = [](const BlockQ4_0* w, const BlockQ16Act* x, int64_t nb) {
      return row_dot<WidenQ4_0>(reinterpret_cast<const std::byte*>(w), x, nb);
    },
    .q4_k = q4_k_row,
    .q6_k = q6_k_row,
    .quantize_act = quantize_act,
    .quantize_act8 = quantize_act8,
    .q8_0_tile = tile<WidenQ8_0>,
    .q4_0_tile = tile<WidenQ4_0>,
    .q4_k_tile = tile_by_dots<std::byte, q4_k_row>,
    .q6_k_tile = tile_by_dots<std::byte, q6_k_row>,
    .q8_0_packed = packed_tile<PackedBlocks<PackedQ8_0>>,
    .q4_0_packed = packed_tile<PackedBlocks<PackedQ4_0>>,
    .q8_0_packed8 = packed_tile<PackedBlocks<PackedQ8_0Act8>>,
    .q6_k_packed = packed_tile<PackedQ6_K>,
    .i8_packed = packed_tile<PackedBlocks<PackedI8>>,
    .i8_columns = I8Columns<I8Avx512>::columns,
    .gelu_mul = VecMath<VecAvx512>::gelu_mul,
    .soft_cap = VecMath<VecAvx512>::soft_cap,
    .exp_shifted = VecMath<VecAvx512>::exp_shifted,
    .axpy = VecMath<VecAvx512>::axpy,
    .dot_rows = dot_rows_of<f32_dot>,
    .axpy_rows = axpy_rows_of<VecMath<VecAvx512>::axpy>,
};

}  // namespace grok
