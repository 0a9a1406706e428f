// Portable kernels: the scalar definitions every SIMD path is tested against.
#include <cmath>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/dot.h"
#include "kernels/cpu/i8_columns.h"
#include "kernels/ops.h"

namespace grok {
namespace {

float f32_dot(const float* w, const float* x, int64_t n) { return dot(w, x, n); }

float f16_dot(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

float bf16_dot(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  return s;
}

float q8_0_dot(const BlockQ8_0* w, const BlockQ16Act* x, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t acc = 0;
    for (int i = 0; i < 32; ++i) acc += int32_t(w[b].q[i]) * int32_t(x[b].q[i]);
    s += f16_to_f32(w[b].d) * x[b].d * float(acc);
  }
  return s;
}

// value = d·(q − 8): Σ(q − 8)·x = Σq·x − 8·Σx, the offset folded in once per block.
float q4_0_dot(const BlockQ4_0* w, const BlockQ16Act* x, int64_t nb) {
  float s = 0;
  for (int64_t b = 0; b < nb; ++b) {
    int32_t acc = 0;
    for (int i = 0; i < 16; ++i) {
      acc += int32_t(w[b].qs[i] & 15) * x[b].q[i];
      acc += int32_t(w[b].qs[i] >> 4) * x[b].q[i + 16];
    }
    s += f16_to_f32(w[b].d) * x[b].d * float(acc - 8 * x[b].sum);
  }
  return s;
}

// Four-lane vectors (SSE2, NEON) without FMA.
struct I8Generic {
  static constexpr int kWidth = 4, kDecodeVecs = 8, kAccVecs = 8, kPromptVecs = 2;
  using F = I8Vec<4>::F;
  static F splat(float s) { return F{s, s, s, s}; }
  static F fma(F a, F b, F c) { return a * b + c; }
  static F load_i8(const std::byte* p) {
    int8_t q[4];
    std::memcpy(q, p, 4);
    return F{float(q[0]), float(q[1]), float(q[2]), float(q[3])};
  }
  static F load_bf16(const std::byte* p) {
    uint16_t h[4];
    std::memcpy(h, p, 8);
    return F{bf16_to_f32(h[0]), bf16_to_f32(h[1]), bf16_to_f32(h[2]), bf16_to_f32(h[3])};
  }
  static void store_bf16(std::byte* p, F v) {
    uint32_t u[4];
    std::memcpy(u, &v, 16);
    const uint16_t h[4] = {uint16_t(u[0] >> 16), uint16_t(u[1] >> 16), uint16_t(u[2] >> 16), uint16_t(u[3] >> 16)};
    std::memcpy(p, h, 8);
  }
};

}  // namespace

void quantize_act_scalar(const float* x, BlockQ16Act* out, int64_t nb) {
  for (int64_t b = 0; b < nb; ++b) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(v[i]));
    const float d = amax / 32767.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    out[b].d = d;
    int32_t sum = 0;
    for (int i = 0; i < 32; ++i) {
      out[b].q[i] = int16_t(std::nearbyint(v[i] * inv));
      sum += out[b].q[i];
    }
    out[b].sum = sum;
  }
}

const DotKernels kDotGeneric = {Isa::Generic, f32_dot, f16_dot, bf16_dot, q8_0_dot, q4_0_dot, quantize_act_scalar,
                                tile_by_dots<BlockQ8_0, q8_0_dot>, tile_by_dots<BlockQ4_0, q4_0_dot>,
                                I8Columns<I8Generic>::columns};

const DotKernels& dot_kernels(Isa isa) {
  if (!cpu_supports(isa)) fail("this CPU cannot run the ", isa_name(isa), " kernels");
  switch (isa) {
    case Isa::Generic: return kDotGeneric;
#if defined(__x86_64__)
    case Isa::Avx2: return kDotAvx2;
    case Isa::Avx512: return kDotAvx512;
#else
    default: break;
#endif
  }
  return kDotGeneric;
}

}  // namespace grok
