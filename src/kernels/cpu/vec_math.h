// Element-wise transcendental functions on SIMD vectors, written once for
// every ISA: each dot_<isa>.cc instantiates them with its vector type and
// compiles them with its own flags. Hand-written because the model needs
// only exp (for the tanh-GELU), and libm's scalar tanhf was a quarter of a
// prompt's time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace grok {

// V supplies: F (vector of kWidth floats), splat, load, store, add, sub,
// mul, fma (a·b + c), div, min, max, round (to nearest), and pow2 (2^n for
// a vector of integral floats n in [-126, 127]).
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

  // tanh-GELU as x / (1 + e^(-2u)), u = sqrt(2/π)·(x + 0.044715·x³): the
  // same function as 0.5·x·(1 + tanh(u)) with one exponential.
  static F gelu(F x) {
    const F x3 = V::mul(V::mul(x, x), x);
    const F u = V::mul(V::splat(0.7978845608028654f), V::fma(x3, V::splat(0.044715f), x));
    return V::div(x, V::add(V::splat(1.0f), exp(V::mul(u, V::splat(-2.0f)))));
  }

  // h[i] = gelu(h[i])·v[i]. The tail goes through the same vector code on a
  // padded copy, so every element gets the same arithmetic wherever it lies.
  static void gelu_mul(float* h, const float* v, int64_t n) {
    int64_t i = 0;
    for (; i + V::kWidth <= n; i += V::kWidth) V::store(h + i, V::mul(gelu(V::load(h + i)), V::load(v + i)));
    if (i == n) return;
    float th[V::kWidth] = {}, tv[V::kWidth] = {};
    const size_t rest = size_t(n - i) * sizeof(float);
    std::memcpy(th, h + i, rest);
    std::memcpy(tv, v + i, rest);
    V::store(th, V::mul(gelu(V::load(th)), V::load(tv)));
    std::memcpy(h + i, th, rest);
  }
};

}  // namespace grok
