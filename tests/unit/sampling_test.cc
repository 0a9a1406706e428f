// Sampling stages with seeded generators, and stop strings.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/stop_strings.h"
#include "sampling/sampler.h"

namespace grok {
namespace {

TEST(Sampling, NucleusKeepsTheSmallestSetReachingTopP) {
  // Probabilities 0.5, 0.25, 0.125, 0.125 in logit form.
  std::vector<float> logits = {std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)};
  auto l = logits;
  nucleus_filter(l, 0.7f);  // 1 - top_p = 0.3: cumsum ascending 0.125, 0.25, 0.5 -> threshold log(0.25)
  EXPECT_EQ(l[0], -1e10f);
  EXPECT_EQ(l[3], -1e10f);
  EXPECT_EQ(l[1], logits[1]);
  EXPECT_EQ(l[2], logits[2]);
  l = logits;
  nucleus_filter(l, 1.0f);
  EXPECT_EQ(l, logits);
  l = logits;
  nucleus_filter(l, 0.1f);  // only the top token survives
  EXPECT_EQ(l[1], logits[1]);
  EXPECT_EQ(l[2], -1e10f);
}

TEST(Sampling, GreedyIsArgmaxWithLowestIdOnTies) {
  Sampler s({.temperature = 0, .top_p = 1, .seed = 1});
  std::vector<float> logits = {1, 5, 5, 2};
  const SampledToken t = s.sample(logits, 2);
  EXPECT_EQ(t.id, 1);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].first, 1);
  EXPECT_EQ(t.top[1].first, 2);
  EXPECT_NEAR(t.prob, std::exp(5.0) / (std::exp(1.0) + 2 * std::exp(5.0) + std::exp(2.0)), 1e-6);
}

TEST(Sampling, SameSeedSameTokensAndFrequenciesFollowProbabilities) {
  const std::vector<float> base = {0.0f, std::log(3.0f), -100.0f};  // p = 0.25, 0.75, ~0
  auto draw = [&](uint64_t seed, int n) {
    Sampler s({.temperature = 1, .top_p = 1, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      auto l = base;
      out.push_back(s.sample(l, 0).id);
    }
    return out;
  };
  EXPECT_EQ(draw(9, 50), draw(9, 50));
  EXPECT_NE(draw(9, 50), draw(10, 50));
  std::map<int32_t, int> counts;
  for (int32_t id : draw(1, 20000)) counts[id]++;
  EXPECT_NEAR(counts[1] / 20000.0, 0.75, 0.02);
  EXPECT_EQ(counts[2], 0);
}

TEST(Sampling, TemperatureSharpensAndTopProbsAreOfTheFinalDistribution) {
  Sampler s({.temperature = 0.5f, .top_p = 1, .seed = 3});
  std::vector<float> logits = {0.0f, 1.0f};
  const SampledToken t = s.sample(logits, 2);
  const double p1 = std::exp(2.0) / (1 + std::exp(2.0));
  EXPECT_NEAR(t.top[0].second, p1, 1e-6);
  EXPECT_EQ(t.top[0].first, 1);
}

TEST(StopStrings, HoldsBackPossiblePrefixesAndCutsAtTheStop) {
  StopStringFilter f({"END", "\n\n"});
  std::string emit;
  EXPECT_FALSE(f.push("Hello E", emit));
  EXPECT_EQ(emit, "Hello ");
  EXPECT_FALSE(f.push("N", emit));
  EXPECT_EQ(emit, "");
  EXPECT_FALSE(f.push("Xo", emit));  // "ENX" is not a stop: released
  EXPECT_EQ(emit, "ENXo");
  EXPECT_TRUE(f.push(" bye\n\nmore", emit));
  EXPECT_EQ(emit, " bye");
  StopStringFilter g({"stop"});
  EXPECT_FALSE(g.push("st", emit));
  EXPECT_EQ(emit, "");
  EXPECT_EQ(g.flush(), "st");
}

}  // namespace
}  // namespace grok
