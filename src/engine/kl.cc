#include "engine/kl.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/transformer.h"

namespace grok {
namespace {

// log Σ exp(x), in double.
double log_sum_exp(std::span<const float> x) {
  const double mx = *std::max_element(x.begin(), x.end());
  double s = 0;
  for (float v : x) s += std::exp(double(v) - mx);
  return mx + std::log(s);
}

}  // namespace

double kl_divergence(std::span<const float> base_logits, std::span<const float> test_logits) {
  const double lb = log_sum_exp(base_logits), lt = log_sum_exp(test_logits);
  double kl = 0;
  for (size_t i = 0; i < base_logits.size(); ++i) {
    const double log_p = double(base_logits[i]) - lb, log_q = double(test_logits[i]) - lt;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(0.0, kl);  // rounding can make an exact match slightly negative
}

KlResult compare_models(const Model& base, const Model& test, std::span<const int32_t> ids, int64_t window,
                        ThreadPool& pool) {
  const int64_t vocab = base.config.vocab_size;
  if (test.config.vocab_size != vocab)
    fail("the models' vocabularies differ (", vocab, " and ", test.config.vocab_size, " tokens)");
  if (ids.empty()) fail("no tokens to compare on");
  window = std::min({window, base.config.context_length, test.config.context_length});
  if (window <= 0) fail("the comparison window must be positive");
  Transformer tb(base), tt(test);
  std::vector<float> lb, lt;
  std::vector<double> kls;
  int64_t agree = 0;
  for (size_t start = 0; start < ids.size(); start += size_t(window)) {
    const auto chunk = ids.subspan(start, std::min<size_t>(size_t(window), ids.size() - start));
    KVCache cb(base.config, int64_t(chunk.size())), ct(test.config, int64_t(chunk.size()));
    tb.forward(chunk, cb, pool, true, lb);
    tt.forward(chunk, ct, pool, true, lt);
    for (size_t r = 0; r < chunk.size(); ++r) {
      const std::span<const float> b(&lb[r * size_t(vocab)], size_t(vocab)), t(&lt[r * size_t(vocab)], size_t(vocab));
      kls.push_back(kl_divergence(b, t));
      agree += std::max_element(b.begin(), b.end()) - b.begin() == std::max_element(t.begin(), t.end()) - t.begin();
    }
  }
  KlResult r;
  r.positions = int64_t(kls.size());
  double sum = 0;
  for (double k : kls) sum += k;
  r.kl_mean = sum / double(kls.size());
  std::sort(kls.begin(), kls.end());
  r.kl_median = kls[kls.size() / 2];
  r.kl_p99 = kls[std::min(kls.size() - 1, size_t(double(kls.size()) * 0.99))];
  r.kl_max = kls.back();
  r.top1_agreement = double(agree) / double(r.positions);
  return r;
}

}  // namespace grok
