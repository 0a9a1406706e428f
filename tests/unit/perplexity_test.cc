// compute_perplexity against the definition, worked out here from each
// chunk's full-position logits (Engine::logits) in double.
#include "engine/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/engine.h"
#include "engine/open_model.h"
#include "test_support.h"

namespace grok {
namespace {

Engine& builtin_engine() {
  static Engine engine(open_model(""), 2);
  return engine;
}

// A text the built-in tokenizer makes into a few hundred tokens.
std::vector<int32_t> text_ids() {
  std::string text;
  for (int i = 0; i < 6; ++i)
    text += "The quick brown fox jumps over the lazy dog, and the answer to life, the universe and everything is "
            "forty-two. ";
  return builtin_engine().tokenize(text, false);
}

// −log softmax(row)[target], in double throughout.
double reference_nll(const float* row, int64_t vocab, int32_t target) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, double(row[i]));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(row[i]) - mx);
  return mx + std::log(sum) - double(row[target]);
}

struct Reference {
  std::vector<double> chunk_mean;  // mean NLL of each chunk
  double mean_nll = 0, sum_sq = 0;
  int64_t count = 0;
};

// Chunks of n_ctx from the start, the remainder dropped; in each, the tokens
// after position n_ctx/2 predicted from the position before them.
Reference reference(const std::vector<int32_t>& ids, int64_t n_ctx) {
  Engine& engine = builtin_engine();
  const int64_t vocab = engine.model().config.vocab_size;
  Reference r;
  double sum = 0;
  for (size_t start = 0; start + size_t(n_ctx) <= ids.size(); start += size_t(n_ctx)) {
    const std::span<const int32_t> chunk(ids.data() + start, size_t(n_ctx));
    const std::vector<float> logits = engine.logits(chunk, /*all_positions=*/true);
    EXPECT_EQ(int64_t(logits.size()), n_ctx * vocab);
    double chunk_sum = 0;
    int64_t chunk_count = 0;
    for (int64_t p = n_ctx / 2; p + 1 < n_ctx; ++p) {
      const double v = reference_nll(&logits[size_t(p * vocab)], vocab, chunk[size_t(p + 1)]);
      chunk_sum += v;
      r.sum_sq += v * v;
      ++chunk_count;
    }
    r.chunk_mean.push_back(chunk_sum / double(chunk_count));
    sum += chunk_sum;
    r.count += chunk_count;
  }
  r.mean_nll = sum / double(r.count);
  return r;
}

TEST(Perplexity, EqualsTheDefinitionOnTheBuiltInModelOverThreeChunks) {
  const std::vector<int32_t> ids = text_ids();
  const int64_t n_ctx = int64_t(ids.size()) * 2 / 7;  // three chunks and a remainder
  ASSERT_GE(n_ctx, 16);
  std::vector<PerplexityChunk> seen;
  const PerplexityResult r = compute_perplexity(builtin_engine(), ids, {.n_ctx = n_ctx},
                                                [&](const PerplexityChunk& c, int64_t chunks) {
                                                  EXPECT_EQ(chunks, 3);
                                                  seen.push_back(c);
                                                });
  const Reference ref = reference(ids, n_ctx);
  ASSERT_EQ(ref.chunk_mean.size(), 3u);
  EXPECT_EQ(r.tokens, int64_t(ids.size()));
  EXPECT_EQ(r.n_ctx, n_ctx);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_EQ(r.scored_tokens, ref.count);
  EXPECT_EQ(r.scored_tokens, 3 * (n_ctx - 1 - n_ctx / 2));
  const double ppl = std::exp(ref.mean_nll);
  EXPECT_NEAR(r.mean_nll, ref.mean_nll, 1e-5 * ref.mean_nll);
  EXPECT_NEAR(r.perplexity, ppl, 1e-5 * ppl);
  // llama.cpp's uncertainty of the perplexity.
  const double var = ref.sum_sq / double(ref.count) - ref.mean_nll * ref.mean_nll;
  const double stderr_ppl = ppl * std::sqrt(var / double(ref.count - 1));
  EXPECT_GT(stderr_ppl, 0);
  EXPECT_NEAR(r.perplexity_stderr, stderr_ppl, 1e-3 * stderr_ppl);

  ASSERT_EQ(r.per_chunk.size(), 3u);
  ASSERT_EQ(seen.size(), 3u);
  double running = 0;
  for (size_t c = 0; c < 3; ++c) {
    const PerplexityChunk& ch = r.per_chunk[c];
    EXPECT_EQ(seen[c].index, int64_t(c));
    EXPECT_EQ(seen[c].running_perplexity, ch.running_perplexity);
    EXPECT_EQ(ch.start, int64_t(c) * n_ctx);
    EXPECT_EQ(ch.tokens, n_ctx);
    EXPECT_EQ(ch.scored, n_ctx - 1 - n_ctx / 2);
    EXPECT_NEAR(ch.mean_nll, ref.chunk_mean[c], 1e-5 * ref.chunk_mean[c]);
    EXPECT_NEAR(ch.perplexity, std::exp(ref.chunk_mean[c]), 1e-5 * std::exp(ref.chunk_mean[c]));
    running += ref.chunk_mean[c];
    const double running_ppl = std::exp(running / double(c + 1));  // equal chunks: the mean of the means
    EXPECT_NEAR(ch.running_perplexity, running_ppl, 1e-5 * running_ppl);
  }
  EXPECT_DOUBLE_EQ(r.per_chunk.back().running_perplexity, r.perplexity);
}

TEST(Perplexity, PassSizesChangeOnlyTheRounding) {
  const std::vector<int32_t> ids = text_ids();
  const int64_t n_ctx = int64_t(ids.size()) * 2 / 7;
  const PerplexityResult whole = compute_perplexity(builtin_engine(), ids, {.n_ctx = n_ctx});
  // Passes of 5 tokens over each chunk's cache; two chunks in one pass.
  for (const int64_t batch : {int64_t(5), 2 * n_ctx}) {
    const PerplexityResult r = compute_perplexity(builtin_engine(), ids, {.n_ctx = n_ctx, .batch = batch});
    EXPECT_EQ(r.scored_tokens, whole.scored_tokens) << batch;
    EXPECT_NEAR(r.mean_nll, whole.mean_nll, 1e-4 * whole.mean_nll) << batch;
    ASSERT_EQ(r.per_chunk.size(), whole.per_chunk.size());
    for (size_t c = 0; c < r.per_chunk.size(); ++c)
      EXPECT_NEAR(r.per_chunk[c].mean_nll, whole.per_chunk[c].mean_nll, 1e-4 * whole.per_chunk[c].mean_nll)
          << batch << " chunk " << c;
  }
}

TEST(Perplexity, AShortTextIsOneChunk) {
  const std::vector<int32_t> ids = text_ids();
  const std::vector<int32_t> few(ids.begin(), ids.begin() + 11);
  const PerplexityResult r = compute_perplexity(builtin_engine(), few, {});  // default n_ctx 512 > 11
  EXPECT_EQ(r.chunks, 1);
  EXPECT_EQ(r.n_ctx, 11);
  EXPECT_EQ(r.scored_tokens, 11 - 1 - 5);
  const Reference ref = reference(few, 11);
  EXPECT_NEAR(r.mean_nll, ref.mean_nll, 1e-5 * ref.mean_nll);

  // Two tokens: the second is scored from the first; one score has no spread.
  const std::vector<int32_t> two(ids.begin(), ids.begin() + 2);
  const PerplexityResult t = compute_perplexity(builtin_engine(), two, {});
  EXPECT_EQ(t.scored_tokens, 1);
  const std::vector<float> logits = builtin_engine().logits(two, /*all_positions=*/true);  // row 0 predicts id 1
  EXPECT_NEAR(t.mean_nll, reference_nll(logits.data(), builtin_engine().model().config.vocab_size, two[1]),
              1e-5 * t.mean_nll);
  EXPECT_TRUE(std::isnan(t.perplexity_stderr));
}

TEST(Perplexity, RefusesWhatItCannotMeasure) {
  const std::vector<int32_t> one = {5};
  test::expect_error([&] { compute_perplexity(builtin_engine(), one, {}); }, "at least 2 tokens");
  const std::vector<int32_t> ids = text_ids();
  const int64_t too_long = builtin_engine().model().config.context_length + 1;
  test::expect_error([&] { compute_perplexity(builtin_engine(), ids, {.n_ctx = too_long}); },
                     "exceeds the model's context");
  test::expect_error([&] { compute_perplexity(builtin_engine(), ids, {.n_ctx = 1}); }, "at least 2 tokens");
}

TEST(Perplexity, TokenNllIsMinusLogSoftmax) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 1000.0f};
  EXPECT_NEAR(token_nll(logits, 3), std::log1p(std::exp(-997.0) + std::exp(-998.0) + std::exp(-999.0)), 1e-12);
  const std::vector<float> flat = {0.5f, 0.5f, 0.5f, 0.5f};
  EXPECT_NEAR(token_nll(flat, 1), std::log(4.0), 1e-12);
}

}  // namespace
}  // namespace grok
