// Sampling as the reference serves requests (SPEC.md, "Sampling"), as small
// pure stages: temperature -> nucleus filter -> softmax -> draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace grok {

struct SamplingOptions {
  float temperature = 0.8f;  // 0 means greedy (argmax, ties to the lower id)
  float top_p = 0.95f;       // nucleus mass kept; 1 keeps everything
  uint64_t seed = 42;
};

// logits /= temperature.
void apply_temperature(std::span<float> logits, float temperature);
// The reference's nucleus filter: sort ascending, softmax, cumulative sum; the
// threshold is the logit where the sum first reaches 1 - top_p; logits below
// it become -1e10.
void nucleus_filter(std::span<float> logits, float top_p);
// Probabilities of `logits` (softmax computed in double).
std::vector<float> softmax_probs(std::span<const float> logits);
// Index of the largest value, the lowest index among equals.
int32_t argmax(std::span<const float> values);
// The k most probable ids, most probable first (ties to the lower id).
std::vector<std::pair<int32_t, float>> top_k(std::span<const float> probs, int k);

struct SampledToken {
  int32_t id = 0;
  float prob = 0;                                // its probability in the distribution drawn from
  std::vector<std::pair<int32_t, float>> top;    // the most probable ids and their probabilities
};

class Sampler {
 public:
  explicit Sampler(SamplingOptions opt) : opt_(opt), rng_(opt.seed) {}
  // Picks the next token from one row of logits (modified in place).
  // `n_top` most probable tokens are reported alongside (0 for none).
  SampledToken sample(std::span<float> logits, int n_top);

 private:
  // Uniform double in [0, 1) from the top 53 bits: the same on every platform.
  double uniform() { return double(rng_() >> 11) * 0x1.0p-53; }
  SamplingOptions opt_;
  std::mt19937_64 rng_;
};

}  // namespace grok
