// Portable kernels: the scalar definitions every SIMD path is tested against.
#include <cmath>
#include <cstring>
#include <type_traits>

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

// Per sub-block of 32: value = d·sc·q − dmin·m, so Σvalue·x = x.d·(d·sc·Σq·xq − dmin·m·Σxq),
// the min folded in with the activation block's sum.
float q4_k_dot(const std::byte* w, const BlockQ16Act* x, int64_t nb32) {
  float s = 0;
  for (int64_t b = 0; b < nb32 / 8; ++b) {
    BlockQ4_K blk;
    std::memcpy(&blk, w + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    for (int j = 0; j < 8; ++j) {
      const BlockQ16Act& xb = x[8 * b + j];
      int sc, m;
      q4_k_scale_min(blk.scales, j, sc, m);
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = j % 2 ? 4 : 0;
      int32_t acc = 0;
      for (int i = 0; i < 32; ++i) acc += int32_t((q[i] >> shift) & 0xf) * xb.q[i];
      s += xb.d * (d * float(sc) * float(acc) - dmin * float(m) * float(xb.sum));
    }
  }
  return s;
}

// Each activation block of 32 covers two Q6_K sub-blocks of 16 (scales[2j], scales[2j + 1]).
float q6_k_dot(const std::byte* w, const BlockQ16Act* x, int64_t nb32) {
  float s = 0;
  for (int64_t b = 0; b < nb32 / 8; ++b) {
    BlockQ6_K blk;
    std::memcpy(&blk, w + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    for (int j = 0; j < 8; ++j) {
      const BlockQ16Act& xb = x[8 * b + j];
      int64_t acc = 0;  // |scale·Σ| < 2^31 per sub-block, so two need 64 bits
      for (int half = 0; half < 2; ++half) {
        int32_t sub = 0;
        for (int i = 16 * half; i < 16 * half + 16; ++i) {
          const int e = 32 * j + i, h = e / 128, g = (e % 128) / 32, l = e % 32;
          const int lo = (blk.ql[64 * h + l + 32 * (g & 1)] >> (g >= 2 ? 4 : 0)) & 0xf;
          const int hi = (blk.qh[32 * h + l] >> (2 * g)) & 3;
          sub += ((lo | (hi << 4)) - 32) * xb.q[i];
        }
        acc += int64_t(blk.scales[2 * j + half]) * sub;
      }
      s += xb.d * d * float(acc);
    }
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

void gelu_mul(float* h, const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = gelu_tanh(h[i]) * v[i];
}

void soft_cap(float* p, int64_t n, float cap) {
  for (int64_t i = 0; i < n; ++i) p[i] = cap * std::tanh(p[i] / cap);
}

void exp_shifted(float* p, int64_t n, float shift) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::exp(p[i] - shift);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

// Both activation formats: d = amax / the largest level, q = round(x / d),
// q[8c + j] from input 8c + order[j] of the block (in order when null).
template <typename Block>
static void quantize_blocks_scalar(const float* x, Block* out, int64_t nb, float levels, const int* order) {
  for (int64_t b = 0; b < nb; ++b) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(v[i]));
    const float d = amax / levels, inv = d > 0 ? 1.0f / d : 0.0f;
    out[b].d = d;
    int32_t sum = 0;
    using Level = std::remove_cvref_t<decltype(out[b].q[0])>;
    for (int i = 0; i < 32; ++i) {
      out[b].q[i] = Level(std::nearbyint(v[order ? 8 * (i / 8) + order[i % 8] : i] * inv));
      sum += out[b].q[i];
    }
    out[b].sum = sum;
  }
}

void quantize_act_scalar(const float* x, BlockQ16Act* out, int64_t nb) {
  quantize_blocks_scalar(x, out, nb, 32767.0f, nullptr);
}

void quantize_act8_scalar(const float* x, BlockQ8Act* out, int64_t nb) {
  quantize_blocks_scalar(x, out, nb, 127.0f, kQ4_0LaneOrder);
}

const DotKernels kDotGeneric = {
    .isa = Isa::Generic,
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
    .i8_columns = I8Columns<I8Generic>::columns,
    .gelu_mul = gelu_mul,
    .soft_cap = soft_cap,
    .exp_shifted = exp_shifted,
    .axpy = axpy,
    .dot_rows = dot_rows_of<f32_dot>,
    .axpy_rows = axpy_rows_of<axpy>,
};

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
