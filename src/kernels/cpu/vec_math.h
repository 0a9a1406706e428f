// Element-wise transcendental functions on SIMD vectors, written once for
// every ISA: each dot_<isa>.cc instantiates them with its vector type and
// compiles them with its own flags. Hand-written because the model needs
// only exp and tanh (GELU, attention's cap and softmax), and libm's scalar
// tanhf was a quarter of a prompt's time.
#pragma once

#include <cstdint>
#include <cstring>

namespace grok {

// V supplies: F (vector of kWidth floats), splat, load, store, add, mul,
// fma (a·b + c), div, min, max, abs, round (to nearest), pow2 (2^n for a
// vector of integral floats n in [-126, 127]), select_lt (a < b ? t : f,
// per lane) and copysign (|a| with b's sign).
template <typename V>
struct VecMath {
  using F = typename V::F;

  // e^x, within 2 ulp over the float range (Cephes' expf polynomial after
  // reducing by n·ln 2 in two parts); saturates to 0 and FLT_MAX's
  // neighbourhood outside [-87.3, 88.3].
  static F exp(F x) {
    x = V::min(V::max(x, V::splat(-87.3f)), V::splat(88.3f));
    const F n = V::round(V::mul(x, V::splat(1.44269504088896341f)));
    F r = V::fma(n, V::splat(-0.693359375f), x);
    r = V::fma(n, V::splat(2.12194440e-4f), r);
    F p = V::splat(1.9875691500e-4f);
    p = V::fma(p, r, V::splat(1.3981999507e-3f));
    p = V::fma(p, r, V::splat(8.3334519073e-3f));
    p = V::fma(p, r, V::splat(4.1665795894e-2f));
    p = V::fma(p, r, V::splat(1.6666665459e-1f));
    p = V::fma(p, r, V::splat(5.0000001201e-1f));
    p = V::fma(p, V::mul(r, r), V::add(r, V::splat(1.0f)));
    return V::mul(p, V::pow2(n));
  }

  // tanh(x) within a few ulp (Cephes' tanhf): an odd polynomial below
  // |x| = 0.625, where 1 - 2/(e^(2|x|) + 1) would cancel, that form above.
  static F tanh(F x) {
    const F a = V::abs(x), z = V::mul(x, x);
    F p = V::splat(-5.70498872745e-3f);
    p = V::fma(p, z, V::splat(2.06390887954e-2f));
    p = V::fma(p, z, V::splat(-5.37397155531e-2f));
    p = V::fma(p, z, V::splat(1.33314422036e-1f));
    p = V::fma(p, z, V::splat(-3.33332819422e-1f));
    const F small = V::fma(V::mul(p, z), x, x);
    const F e = exp(V::add(a, a));
    const F large = V::copysign(V::add(V::splat(1.0f), V::div(V::splat(-2.0f), V::add(e, V::splat(1.0f)))), x);
    return V::select_lt(a, V::splat(0.625f), small, large);
  }

  // p[i] = f(p[i], q[i]) for i < n, the tail through the same vector code
  // on a padded copy (every element gets the same arithmetic wherever it
  // lies). One-input functions pass p as q and ignore it.
  template <typename Fn>
  static void apply(float* p, const float* q, int64_t n, Fn f) {
    int64_t i = 0;
    for (; i + V::kWidth <= n; i += V::kWidth) V::store(p + i, f(V::load(p + i), V::load(q + i)));
    if (i == n) return;
    float tp[V::kWidth] = {}, tq[V::kWidth] = {};
    const size_t rest = size_t(n - i) * sizeof(float);
    std::memcpy(tp, p + i, rest);
    std::memcpy(tq, q + i, rest);
    V::store(tp, f(V::load(tp), V::load(tq)));
    std::memcpy(p + i, tp, rest);
  }

  // Attention's logit cap: p = cap·tanh(p/cap).
  static void soft_cap(float* p, int64_t n, float cap) {
    const F c = V::splat(cap);
    apply(p, p, n, [&](F v, F) { return V::mul(c, tanh(V::div(v, c))); });
  }

  // Softmax numerators: p = e^(p - shift).
  static void exp_shifted(float* p, int64_t n, float shift) {
    const F minus_shift = V::splat(-shift);
    apply(p, p, n, [&](F v, F) { return exp(V::add(v, minus_shift)); });
  }

  // y[i] += a·x[i], one fused multiply-add each.
  static void axpy(float a, const float* x, float* y, int64_t n) {
    const F va = V::splat(a);
    apply(y, x, n, [&](F yv, F xv) { return V::fma(va, xv, yv); });
  }

  // tanh-GELU as x / (1 + e^(-2u)), u = sqrt(2/π)·(x + 0.044715·x³): the
  // same function as 0.5·x·(1 + tanh(u)) with one exponential.
  static F gelu(F x) {
    const F x3 = V::mul(V::mul(x, x), x);
    const F u = V::mul(V::splat(0.7978845608028654f), V::fma(x3, V::splat(0.044715f), x));
    return V::div(x, V::add(V::splat(1.0f), exp(V::mul(u, V::splat(-2.0f)))));
  }

  // h[i] = gelu(h[i])·v[i].
  static void gelu_mul(float* h, const float* v, int64_t n) {
    apply(h, v, n, [](F a, F b) { return V::mul(gelu(a), b); });
  }
};

}  // namespace grok
