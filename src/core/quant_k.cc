// ggml's "k-quant" super-blocks of 256 values: Q4_K and Q5_K (scale and min
// per sub-block of 32) and Q6_K (signed scale per sub-block of 16). The layouts
// are documented at the block structs in quant.h.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/quant.h"
#include "core/quant_util.h"

namespace grok {

using namespace quant_detail;

namespace {

constexpr int kSuper = 256;

// Round to nearest (ties to even) without a libm call: adding 1.5 * 2^23
// leaves the rounded integer in the low mantissa bits (valid for |v| < 2^22,
// hence the clamp; callers clamp the level further).
int nearest(float v) {
  v = std::clamp(v, -4194303.0f, 4194303.0f);
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// x[0..n) ≈ scale * q - min with q in 0..nmax, scale >= 0, min >= 0 (a
// sub-block shifted by its minimum, which is clamped to <= 0 so that the
// zero point never moves above the data). Tries a range of step sizes around
// (max - min) / nmax and refits scale and min by least squares for each set
// of levels, keeping the smallest squared error.
struct ScaleMin {
  float scale = 0, min = 0;
};
ScaleMin fit_scale_min(const float* x, int n, int nmax) {
  const float lo = std::min(0.0f, *std::min_element(x, x + n));
  const float hi = *std::max_element(x, x + n);
  if (!(hi > lo)) return {0.0f, -lo};  // constant block <= 0: all of it is the min
  float sx = 0, sx2 = 0;
  for (int i = 0; i < n; ++i) sx += x[i], sx2 += x[i] * x[i];
  // Squared error of a * q + c from the sums, without another pass.
  auto error_of = [&](float a, float c, float sl, float sl2, float sxl) {
    return sx2 + a * a * sl2 + float(n) * c * c + 2 * a * c * sl - 2 * a * sxl - 2 * c * sx;
  };
  ScaleMin best{(hi - lo) / float(nmax), -lo};
  float best_err = -1;
  for (int step = -1; step <= 20; ++step) {
    // step -1 is the plain min/max grid; the others rescale it and refit.
    const float iscale = step < 0 ? float(nmax) / (hi - lo) : (float(nmax) - 1.0f + 0.1f * float(step)) / (hi - lo);
    float sl = 0, sl2 = 0, sxl = 0;
    for (int i = 0; i < n; ++i) {
      const float q = float(std::clamp(nearest((x[i] - lo) * iscale), 0, nmax));
      sl += q;
      sl2 += q * q;
      sxl += x[i] * q;
    }
    float a = 1.0f / iscale, c = lo;
    if (step >= 0) {
      const float det = float(n) * sl2 - sl * sl;
      if (!(det > 0)) continue;
      a = (float(n) * sxl - sx * sl) / det;
      c = (sl2 * sx - sl * sxl) / det;
      if (c > 0) {  // the offset must stay <= 0 (min >= 0)
        c = 0;
        a = sxl / sl2;
      }
      if (!(a > 0)) continue;
    }
    const float e = error_of(a, c, sl, sl2, sxl);
    if (best_err < 0 || e < best_err) best_err = e, best = {a, -c};
  }
  return best;
}

// x[0..n) ≈ s * q with q in -nmax..nmax-1 (s may be negative, so the value
// of largest magnitude can use the extra level -nmax). Tries step sizes
// around |max| / nmax, refitting s by least squares, and keeps the best.
float fit_signed_scale(const float* x, int n, int nmax) {
  float m = 0;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(m)) m = x[i];
  if (m == 0) return 0;
  float best_s = m / -float(nmax), best_gain = -1;
  for (int step = -12; step <= 4; ++step) {
    const float iscale = -(float(nmax) + 0.25f * float(step)) / m;
    float sxl = 0, sl2 = 0;
    for (int i = 0; i < n; ++i) {
      const float q = float(std::clamp(nearest(x[i] * iscale), -nmax, nmax - 1));
      sxl += x[i] * q;
      sl2 += q * q;
    }
    // With the least-squares s = sxl / sl2 the error is sum(x^2) - sxl^2 / sl2.
    if (sl2 > 0 && sxl * sxl / sl2 > best_gain) best_gain = sxl * sxl / sl2, best_s = sxl / sl2;
  }
  return best_s;
}

// The f16 step d for a block whose largest sub-block scale is `top` and
// should be about `levels` steps: rounding to f16 (coarse when d is
// subnormal) must not leave `top` needing more levels than exist, so d is
// nudged one f16 step away from zero when it does.
uint16_t f16_step(const char* fn, float d, float top, float levels, int64_t block) {
  uint16_t h = f16_scale(fn, d, block);
  if (top != 0 && std::fabs(top) > (levels + 0.5f) * std::fabs(f16_to_f32(h))) {
    h = uint16_t(h + 1);  // same sign, next magnitude (0 becomes the smallest subnormal)
    if (d < 0) h |= 0x8000;
    if ((h & 0x7c00) == 0x7c00) fail(fn, ": block ", block, " has values too large for an f16 scale");
  }
  return h;
}

void pack_scale_min(uint8_t* s, int j, int sc, int m) {
  if (j < 4) {
    s[j] = uint8_t((s[j] & 0xc0) | sc);
    s[j + 4] = uint8_t((s[j + 4] & 0xc0) | m);
  } else {
    s[j + 4] = uint8_t((sc & 0xf) | ((m & 0xf) << 4));
    s[j - 4] = uint8_t(s[j - 4] | ((sc >> 4) << 6));
    s[j] = uint8_t(s[j] | ((m >> 4) << 6));
  }
}

// Q4_K and Q5_K differ only in the width of their levels: fits each
// sub-block of 32 as scale * q - min with q in 0..nmax, stores the f16 d and
// dmin and the packed 6-bit sub-block scales, and returns the levels L
// requantised against the scales as stored.
void fit_k_block(const char* fn, const float* xb, int nmax, int64_t b, uint16_t& d_out, uint16_t& dmin_out,
                 uint8_t* scales, uint8_t* L) {
  ScaleMin fit[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    fit[j] = fit_scale_min(xb + 32 * j, 32, nmax);
    max_scale = std::max(max_scale, fit[j].scale);
    max_min = std::max(max_min, fit[j].min);
  }
  d_out = f16_step(fn, max_scale / 63.0f, max_scale, 63, b);
  dmin_out = f16_step(fn, max_min / 63.0f, max_min, 63, b);
  // Sub-block scales as multiples of the f16 values actually stored.
  const float d = f16_to_f32(d_out), dmin = f16_to_f32(dmin_out);
  for (int j = 0; j < 8; ++j) {
    const int sc = d > 0 ? std::clamp(nearest(fit[j].scale / d), 0, 63) : 0;
    const int m = dmin > 0 ? std::clamp(nearest(fit[j].min / dmin), 0, 63) : 0;
    pack_scale_min(scales, j, sc, m);
  }
  // Levels again, against the scales as stored.
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    q4_k_scale_min(scales, j, sc, m);
    const float step = d * float(sc), offset = dmin * float(m);
    for (int i = 0; i < 32; ++i)
      L[32 * j + i] = uint8_t(step > 0 ? std::clamp(nearest((xb[32 * j + i] + offset) / step), 0, nmax) : 0);
  }
}

}  // namespace

void quantize_q4_k(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q4_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* xb = x + b * kSuper;
    require_finite("quantize_q4_k", xb, kSuper, b * kSuper);
    BlockQ4_K blk{};
    uint8_t L[kSuper];
    fit_k_block("quantize_q4_k", xb, 15, b, blk.d, blk.dmin, blk.scales, L);
    for (int e = 0; e < kSuper; ++e) blk.qs[32 * (e / 64) + e % 32] |= uint8_t(e % 64 < 32 ? L[e] : L[e] << 4);
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_q4_k(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q4_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    BlockQ4_K blk;
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    float* y = dst + b * kSuper;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      q4_k_scale_min(blk.scales, j, sc, m);
      const float step = d * float(sc), offset = dmin * float(m);
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = j % 2 ? 4 : 0;  // odd sub-blocks are the high nibbles
      for (int i = 0; i < 32; ++i) y[32 * j + i] = step * float((q[i] >> shift) & 0xf) - offset;
    }
  }
}

void quantize_q5_k(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q5_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* xb = x + b * kSuper;
    require_finite("quantize_q5_k", xb, kSuper, b * kSuper);
    BlockQ5_K blk{};
    uint8_t L[kSuper];
    fit_k_block("quantize_q5_k", xb, 31, b, blk.d, blk.dmin, blk.scales, L);
    for (int e = 0; e < kSuper; ++e) {
      // Low 4 bits where Q4_K keeps them; the 5th bit of sub-block e / 32
      // is bit e / 32 of qh[e % 32].
      blk.qs[32 * (e / 64) + e % 32] |= uint8_t(e % 64 < 32 ? L[e] & 0xf : (L[e] & 0xf) << 4);
      blk.qh[e % 32] |= uint8_t((L[e] >> 4) << (e / 32));
    }
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_q5_k(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q5_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    BlockQ5_K blk;
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
    float* y = dst + b * kSuper;
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      q4_k_scale_min(blk.scales, j, sc, m);
      const float step = d * float(sc), offset = dmin * float(m);
      const uint8_t* q = blk.qs + 32 * (j / 2);
      const int shift = j % 2 ? 4 : 0;
      for (int i = 0; i < 32; ++i) {
        const int level = ((q[i] >> shift) & 0xf) | ((blk.qh[i] >> j) & 1) << 4;
        y[32 * j + i] = step * float(level) - offset;
      }
    }
  }
}

void quantize_q6_k(const float* x, int64_t n, std::byte* dst) {
  require_blocks("quantize_q6_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const float* xb = x + b * kSuper;
    require_finite("quantize_q6_k", xb, kSuper, b * kSuper);
    float s[16], big = 0;
    for (int j = 0; j < 16; ++j) {
      s[j] = fit_signed_scale(xb + 16 * j, 16, 32);
      if (std::fabs(s[j]) > std::fabs(big)) big = s[j];
    }
    BlockQ6_K blk{};
    // The largest sub-block scale becomes -128 d: the int8 range's extra level.
    blk.d = f16_step("quantize_q6_k", big / -128.0f, big, 128, b);
    const float d = f16_to_f32(blk.d);
    if (d != 0) {
      for (int j = 0; j < 16; ++j) blk.scales[j] = int8_t(std::clamp(nearest(s[j] / d), -128, 127));
      for (int e = 0; e < kSuper; ++e) {
        const float step = d * float(blk.scales[e / 16]);
        const int q = (step != 0 ? std::clamp(nearest(xb[e] / step), -32, 31) : 0) + 32;
        const int h = e / 128, g = (e % 128) / 32, l = e % 32;
        blk.ql[64 * h + l + 32 * (g & 1)] |= uint8_t((q & 0xf) << (g >= 2 ? 4 : 0));
        blk.qh[32 * h + l] |= uint8_t((q >> 4) << (2 * g));
      }
    }
    std::memcpy(dst + b * sizeof blk, &blk, sizeof blk);
  }
}

void dequantize_q6_k(const std::byte* src, float* dst, int64_t n) {
  require_blocks("dequantize_q6_k", n, kSuper);
  for (int64_t b = 0; b < n / kSuper; ++b) {
    BlockQ6_K blk;
    std::memcpy(&blk, src + b * sizeof blk, sizeof blk);
    const float d = f16_to_f32(blk.d);
    float* y = dst + b * kSuper;
    for (int e = 0; e < kSuper; ++e) {
      const int h = e / 128, g = (e % 128) / 32, l = e % 32;
      const int lo = (blk.ql[64 * h + l + 32 * (g & 1)] >> (g >= 2 ? 4 : 0)) & 0xf;
      const int hi = (blk.qh[32 * h + l] >> (2 * g)) & 3;
      y[e] = d * float(blk.scales[e / 16]) * float((lo | (hi << 4)) - 32);
    }
  }
}

}  // namespace grok
