// `grok kl`: how far a quantised model's next-token distributions are from
// its full-precision source's on the same text.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"

namespace grok {

struct KlResult {
  int64_t positions = 0;
  double kl_mean = 0, kl_median = 0, kl_p99 = 0, kl_max = 0;  // KL(base ‖ test) in nats
  double top1_agreement = 0;                                  // share of positions with the same argmax
};

// KL(softmax(base) ‖ softmax(test)) of one row of logits, in double.
double kl_divergence(std::span<const float> base_logits, std::span<const float> test_logits);

// Both models over `ids` in windows of at most `window` tokens (each window a
// fresh context), every position compared. The models must share a vocabulary.
KlResult compare_models(const Model& base, const Model& test, std::span<const int32_t> ids, int64_t window,
                        ThreadPool& pool);

}  // namespace grok
