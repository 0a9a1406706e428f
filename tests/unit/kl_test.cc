#include <gtest/gtest.h>

#include <cmath>

#include "engine/kl.h"

namespace grok {
namespace {

TEST(Kl, DivergenceOfKnownDistributions) {
  const std::vector<float> a = {0.0f, 0.0f}, b = {std::log(3.0f), 0.0f};  // (1/2, 1/2) and (3/4, 1/4)
  EXPECT_NEAR(kl_divergence(a, a), 0.0, 1e-12);
  EXPECT_NEAR(kl_divergence(a, b), 0.5 * std::log(0.5 / 0.75) + 0.5 * std::log(0.5 / 0.25), 1e-7);
  // Shifting logits does not change the distribution.
  const std::vector<float> shifted = {5.0f, 5.0f};
  EXPECT_NEAR(kl_divergence(a, shifted), 0.0, 1e-12);
}

TEST(Kl, ModelAgainstItselfAgreesEverywhere) {
  const Model m = builtin_model(300);
  ThreadPool pool(2);
  std::vector<int32_t> ids(40);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(1 + i * 7 % 299);
  const KlResult r = compare_models(m, m, ids, 16, pool);  // three windows, the last partial
  EXPECT_EQ(r.positions, 40);
  EXPECT_NEAR(r.kl_max, 0.0, 1e-9);
  EXPECT_EQ(r.top1_agreement, 1.0);
  const Model other = builtin_model(300, /*seed=*/99);
  const KlResult d = compare_models(m, other, ids, 16, pool);
  EXPECT_GT(d.kl_mean, 0.01);  // a different model is measurably different
}

}  // namespace
}  // namespace grok
