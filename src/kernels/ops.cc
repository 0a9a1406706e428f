#include "kernels/ops.h"

#include <algorithm>
#include <cmath>

namespace grok {

float dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  float s = acc[0];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void rms_norm(const float* x, const float* scale, int64_t n, float eps, float* y) {
  const float ss = dot(x, x, n);
  const float inv = 1.0f / std::sqrt(ss / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = scale[i] * (x[i] * inv);
}

void rope_rotation(int64_t head_dim, int64_t pos, float base, float* cos_sin) {
  const int64_t half = head_dim / 2;
  for (int64_t j = 0; j < half; ++j) {
    // The angle in double: positions up to 8192 times frequencies near 1
    // lose digits in fp32 before the sin/cos.
    const double freq = std::pow(double(base), -2.0 * double(j) / double(head_dim));
    const double angle = double(pos) * freq;
    cos_sin[j] = float(std::cos(angle));
    cos_sin[j + half] = float(std::sin(angle));
  }
}

void rope_apply(float* x, int64_t head_dim, const float* cos_sin) {
  const int64_t half = head_dim / 2;
  for (int64_t j = 0; j < half; ++j) {
    const float c = cos_sin[j], s = cos_sin[j + half];
    const float x1 = x[j], x2 = x[j + half];
    x[j] = x1 * c - x2 * s;
    x[j + half] = x2 * c + x1 * s;
  }
}

void softmax(float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

float gelu_tanh(float x) {
  constexpr float k = 0.7978845608028654f;  // sqrt(2/π)
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}

}  // namespace grok
