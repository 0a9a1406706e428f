// AVX-512 (F, BW, VL, VNNI) kernels (compiled with those flags; called only
// when the CPU has them). Floats use 512-bit FMAs; quantised blocks use
// VNNI's int16 dot product, one 32-element block per 512-bit instruction.
#include <immintrin.h>

#include "kernels/cpu/dot.h"

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

// Σ w·x over one block as 16 int32 lanes: the 32 int8 weights widened to
// int16 in one register, then VNNI's int16 pair dot product.
inline __m512i block_dot(const int8_t* w, const int16_t* x) {
  const __m512i w16 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
  return _mm512_dpwssd_epi32(_mm512_setzero_si512(), w16, _mm512_loadu_si512(x));
}

float q8_0_dot(const BlockQ8_0* w, const BlockQ16Act* x, int64_t nb) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  auto block = [&](int64_t k, __m512& acc) {
    const __m512 scale = _mm512_set1_ps(_cvtsh_ss(w[k].d) * x[k].d);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block_dot(w[k].q, x[k].q)), scale, acc);
  };
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    block(b, acc0);
    block(b + 1, acc1);
  }
  if (b < nb) block(b, acc0);
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

}  // namespace

const DotKernels kDotAvx512 = {Isa::Avx512, f32_dot, f16_dot, bf16_dot, q8_0_dot, quantize_act_scalar};

}  // namespace grok
