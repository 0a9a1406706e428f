#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace grok {

void apply_temperature(std::span<float> logits, float temperature) {
  for (float& v : logits) v /= temperature;
}

void nucleus_filter(std::span<float> logits, float top_p) {
  if (top_p >= 1.0f) return;  // the threshold would be the minimum: nothing is removed
  std::vector<float> sorted(logits.begin(), logits.end());
  std::sort(sorted.begin(), sorted.end());
  const std::vector<float> probs = softmax_probs(sorted);
  double cum = 0;
  float threshold = sorted.back();
  for (size_t i = 0; i < sorted.size(); ++i) {
    cum += probs[i];
    if (cum >= 1.0 - double(top_p)) {
      threshold = sorted[i];
      break;
    }
  }
  for (float& v : logits)
    if (v < threshold) v = -1e10f;
}

std::vector<float> softmax_probs(std::span<const float> logits) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  std::vector<double> e(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += e[i] = std::exp(double(logits[i]) - double(mx));
  std::vector<float> p(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) p[i] = float(e[i] / sum);
  return p;
}

int32_t argmax(std::span<const float> values) {
  return int32_t(std::max_element(values.begin(), values.end()) - values.begin());  // first of equals
}

std::vector<std::pair<int32_t, float>> top_k(std::span<const float> probs, int k) {
  k = std::min<int>(k, int(probs.size()));
  std::vector<int32_t> ids(probs.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return probs[size_t(a)] > probs[size_t(b)] || (probs[size_t(a)] == probs[size_t(b)] && a < b);
  });
  std::vector<std::pair<int32_t, float>> out;
  for (int i = 0; i < k; ++i) out.emplace_back(ids[size_t(i)], probs[size_t(ids[size_t(i)])]);
  return out;
}

SampledToken Sampler::sample(std::span<float> logits, int n_top) {
  SampledToken out;
  if (opt_.temperature <= 0.0f) {
    // Greedy; the probabilities reported are those of the unscaled logits.
    out.id = argmax(logits);
    if (n_top > 0) {
      const std::vector<float> p = softmax_probs(logits);
      out.prob = p[size_t(out.id)];
      out.top = top_k(p, n_top);
    }
    return out;
  }
  apply_temperature(logits, opt_.temperature);
  nucleus_filter(logits, opt_.top_p);
  const std::vector<float> p = softmax_probs(logits);
  // Inverse CDF; falls back to the last token with mass if rounding leaves u past the total.
  const double u = uniform();
  double cum = 0;
  out.id = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0f) continue;
    cum += p[i];
    out.id = int32_t(i);
    if (u < cum) break;
  }
  out.prob = p[size_t(out.id)];
  if (n_top > 0) out.top = top_k(p, n_top);
  return out;
}

}  // namespace grok
