// AVX2 + FMA + F16C kernels (compiled with those flags; called only when the CPU has them).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/dot.h"
#include "kernels/cpu/i8_columns.h"
#include "kernels/cpu/vec_math.h"

namespace grok {
namespace {

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Four independent accumulators hide the FMA latency.
template <typename Load, typename Tail>
float dot8(const float* x, int64_t n, Load load, Tail tail) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(load(i + 8), _mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_fmadd_ps(load(i + 16), _mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_fmadd_ps(load(i + 24), _mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load(i), _mm256_loadu_ps(x + i), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += tail(i) * x[i];
  return s;
}

float f32_dot(const float* w, const float* x, int64_t n) {
  return dot8(x, n, [w](int64_t i) { return _mm256_loadu_ps(w + i); }, [w](int64_t i) { return w[i]; });
}

float f16_dot(const uint16_t* w, const float* x, int64_t n) {
  return dot8(x, n,
              [w](int64_t i) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i))); },
              [w](int64_t i) { return _cvtsh_ss(w[i]); });
}

float bf16_dot(const uint16_t* w, const float* x, int64_t n) {
  return dot8(
      x, n,
      [w](int64_t i) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      },
      [w](int64_t i) { return bf16_to_f32(w[i]); });
}

// Σ w·x over one block as 8 int32 lanes: int8 weights widened to int16,
// then int16×int16 pair sums (madd_epi16).
inline __m256i block_dot(const int8_t* w, const int16_t* x) {
  const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
  const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16));
  return _mm256_add_epi32(_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1));
}

// Runs block(k, acc) over nb blocks on two independent accumulators (to hide
// FMA latency) and returns their sum.
template <typename Block>
float over_blocks(int64_t nb, Block block) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    block(b, acc0);
    block(b + 1, acc1);
  }
  if (b < nb) block(b, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

float q8_0_dot(const BlockQ8_0* w, const BlockQ16Act* x, int64_t nb) {
  return over_blocks(nb, [&](int64_t k, __m256& acc) {
    const __m256 scale = _mm256_set1_ps(_cvtsh_ss(w[k].d) * x[k].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot(w[k].q, x[k].q)), scale, acc);
  });
}

float q4_0_dot(const BlockQ4_0* w, const BlockQ16Act* x, int64_t nb) {
  const __m128i low4 = _mm_set1_epi8(0x0F);
  return over_blocks(nb, [&](int64_t k, __m256& acc) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[k].qs));
    const __m256i lo = _mm256_cvtepu8_epi16(_mm_and_si128(q, low4));                     // elements 0..15
    const __m256i hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(q, 4), low4));  // elements 16..31
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].q));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[k].q + 16));
    __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(lo, x0), _mm256_madd_epi16(hi, x1));
    sum = _mm256_add_epi32(sum, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-8 * x[k].sum)));  // the q − 8 offset
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(_cvtsh_ss(w[k].d) * x[k].d), acc);
  });
}

inline float f16_at(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i load16_u8(const std::byte* p) {  // 16 bytes zero-extended to int16
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m256i load16_i16(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Eight vectors of int32 lanes to their eight totals, v[i]'s in lane i.
inline __m256i hsum8(const __m256i* v) {
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
  // a = [v0..v3 low halves | v0..v3 high halves], b likewise for v4..v7.
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Eight activation blocks' scales (d) and sums, one per lane.
inline __m256 act_scales(const BlockQ16Act* x) {
  return _mm256_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d);
}
inline __m256 act_sums(const BlockQ16Act* x) {
  return _mm256_cvtepi32_ps(
      _mm256_setr_epi32(x[0].sum, x[1].sum, x[2].sum, x[3].sum, x[4].sum, x[5].sum, x[6].sum, x[7].sum));
}

// Eight bytes (at the low end of v) to eight floats.
inline __m256 u8_to_ps(uint64_t v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(v)))); }

// Nibbles widened to int16 (bytes to int16, then mask / shift) and madd'ed
// with the activations; a super-block's 8 sub-block sums are gathered into
// one vector so that its scales and mins apply as vectors, lane = sub-block:
// Σ x.d·(d·sc·Σq·xq − dmin·m·x.sum).
float q4_k_dot(const std::byte* w, const BlockQ16Act* x, int64_t nb32) {
  const __m256i low4 = _mm256_set1_epi16(0x0F);
  __m256 acc = _mm256_setzero_ps(), mins = acc;
  for (int64_t b = 0; b < nb32 / 8; ++b, w += sizeof(BlockQ4_K), x += 8) {
    // ggml's unpacking of the 6-bit scales and mins: sc[0..7] to bytes 0..7 of s, m[0..7] to bytes 8..15.
    uint32_t s[4];
    std::memcpy(s, w + offsetof(BlockQ4_K, scales), 12);
    s[3] = ((s[2] >> 4) & 0x0f0f0f0f) | (((s[1] >> 6) & 0x03030303) << 4);
    const uint32_t m0_3 = s[1] & 0x3f3f3f3f;
    s[1] = (s[2] & 0x0f0f0f0f) | (((s[0] >> 6) & 0x03030303) << 4);
    s[2] = m0_3;
    s[0] &= 0x3f3f3f3f;
    uint64_t sc, m;
    std::memcpy(&sc, s, 8);
    std::memcpy(&m, s + 2, 8);
    __m256i dots[8];
    for (int g = 0; g < 4; ++g) {  // 32 bytes: sub-block 2g in the low nibbles, 2g + 1 in the high
      const std::byte* q = w + offsetof(BlockQ4_K, qs) + 32 * g;
      const __m256i qa = load16_u8(q), qb = load16_u8(q + 16);
      const int16_t *x0 = x[2 * g].q, *x1 = x[2 * g + 1].q;
      dots[2 * g] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_and_si256(qa, low4), load16_i16(x0)),
                                     _mm256_madd_epi16(_mm256_and_si256(qb, low4), load16_i16(x0 + 16)));
      dots[2 * g + 1] = _mm256_add_epi32(_mm256_madd_epi16(_mm256_srli_epi16(qa, 4), load16_i16(x1)),
                                         _mm256_madd_epi16(_mm256_srli_epi16(qb, 4), load16_i16(x1 + 16)));
    }
    const __m256 xd = act_scales(x);
    const __m256 d = _mm256_set1_ps(f16_at(w + offsetof(BlockQ4_K, d)));
    const __m256 dmin = _mm256_set1_ps(f16_at(w + offsetof(BlockQ4_K, dmin)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum8(dots)), _mm256_mul_ps(_mm256_mul_ps(d, u8_to_ps(sc)), xd), acc);
    mins = _mm256_fmadd_ps(_mm256_mul_ps(dmin, u8_to_ps(m)), _mm256_mul_ps(xd, act_sums(x)), mins);
  }
  return hsum(_mm256_sub_ps(acc, mins));
}

// Sixteen elements (one sub-block) per int16 vector: the 6-bit levels are
// rebuilt from nibble and 2-bit planes and offset by -32; the 16 sub-block
// sums (each < 2^24 in magnitude) are gathered into two vectors and scaled
// there, lane = sub-block, by d·sc times their activation block's d.
float q6_k_dot(const std::byte* w, const BlockQ16Act* x, int64_t nb32) {
  const __m256i low4 = _mm256_set1_epi16(0x0F), high2 = _mm256_set1_epi16(0x30), off = _mm256_set1_epi16(32);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  for (int64_t b = 0; b < nb32 / 8; ++b, w += sizeof(BlockQ6_K), x += 8) {
    const __m256 d = _mm256_set1_ps(f16_at(w + offsetof(BlockQ6_K, d)));
    for (int h = 0; h < 2; ++h) {  // elements 128h + 32g + l: activation block j = 4h + g
      __m256i dots[8];             // sub-block 2g + half of this h
      for (int half = 0; half < 2; ++half) {  // l in [16·half, 16·half + 16)
        const std::byte* ql = w + offsetof(BlockQ6_K, ql) + 64 * h + 16 * half;
        const __m256i l0 = load16_u8(ql), l1 = load16_u8(ql + 32);  // groups 0, 2 and 1, 3
        const __m256i hb = load16_u8(w + offsetof(BlockQ6_K, qh) + 32 * h + 16 * half);
        const __m256i q[4] = {
            _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), high2)),
            _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), high2)),
            _mm256_or_si256(_mm256_srli_epi16(l0, 4), _mm256_and_si256(hb, high2)),
            _mm256_or_si256(_mm256_srli_epi16(l1, 4), _mm256_and_si256(_mm256_srli_epi16(hb, 2), high2))};
        for (int g = 0; g < 4; ++g)
          dots[2 * g + half] = _mm256_madd_epi16(_mm256_sub_epi16(q[g], off), load16_i16(x[4 * h + g].q + 16 * half));
      }
      const BlockQ16Act* xh = x + 4 * h;
      const __m256 xd = _mm256_setr_ps(xh[0].d, xh[0].d, xh[1].d, xh[1].d, xh[2].d, xh[2].d, xh[3].d, xh[3].d);
      const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
          _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + offsetof(BlockQ6_K, scales) + 8 * h))));
      __m256& acc = h ? acc1 : acc0;
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hsum8(dots)), _mm256_mul_ps(_mm256_mul_ps(d, sc), xd), acc);
    }
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// 16 ymm registers: 8 accumulators per tile.
struct I8Avx2 {
  static constexpr int kWidth = 8, kDecodeVecs = 8, kAccVecs = 8, kPromptVecs = 2;
  using F = I8Vec<8>::F;
  static F splat(float s) { return _mm256_set1_ps(s); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F load_i8(const std::byte* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static F load_bf16(const std::byte* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static void store_bf16(std::byte* p, F v) {
    const __m256i h = _mm256_srli_epi32(_mm256_castps_si256(v), 16);  // ≤ 0xffff: packus is exact
    const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
  }
};

struct VecAvx2 {
  static constexpr int kWidth = 8;
  using F = __m256;
  static F splat(float s) { return _mm256_set1_ps(s); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F select_lt(F a, F b, F t, F f) { return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
  static F copysign(F a, F b) {
    const F sign = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, a), _mm256_and_ps(sign, b));
  }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
};

}  // namespace

const DotKernels kDotAvx2 = {
    .isa = Isa::Avx2,
    .f32 = f32_dot,
    .f16 = f16_dot,
    .bf16 = bf16_dot,
    .q8_0 = q8_0_dot,
    .q4_0 = q4_0_dot,
    .q4_k = q4_k_dot,
    .q6_k = q6_k_dot,
    .quantize_act = quantize_act_scalar,
    .quantize_act8 = quantize_act8_scalar,
    .q8_0_tile = tile_by_dots<BlockQ8_0, q8_0_dot>,
    .q4_0_tile = tile_by_dots<BlockQ4_0, q4_0_dot>,
    .q4_k_tile = tile_by_dots<std::byte, q4_k_dot>,
    .q6_k_tile = tile_by_dots<std::byte, q6_k_dot>,
    .i8_columns = I8Columns<I8Avx2>::columns,
    .gelu_mul = VecMath<VecAvx2>::gelu_mul,
    .soft_cap = VecMath<VecAvx2>::soft_cap,
    .exp_shifted = VecMath<VecAvx2>::exp_shifted,
    .axpy = VecMath<VecAvx2>::axpy,
    .dot_rows = dot_rows_of<f32_dot>,
    .axpy_rows = axpy_rows_of<VecMath<VecAvx2>::axpy>,
};

}  // namespace grok
