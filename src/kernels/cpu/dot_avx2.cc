// AVX2 + FMA + F16C kernels (compiled with those flags; called only when the CPU has them).
#include <immintrin.h>

#include "kernels/cpu/dot.h"
#include "kernels/cpu/i8_columns.h"

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

}  // namespace

const DotKernels kDotAvx2 = {Isa::Avx2, f32_dot, f16_dot, bf16_dot, q8_0_dot, q4_0_dot, quantize_act_scalar,
                                tile_by_dots<BlockQ8_0, q8_0_dot>, tile_by_dots<BlockQ4_0, q4_0_dot>,
                                I8Columns<I8Avx2>::columns};

}  // namespace grok
