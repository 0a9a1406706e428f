// `grok perplexity` as a user runs it on the built-in model: the JSON result,
// llama.cpp's running estimates and final line on stderr, and clear refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace grok {
namespace {

std::string sample_text() {
  std::string text;
  for (int i = 0; i < 6; ++i)
    text += "The quick brown fox jumps over the lazy dog, and the answer to life, the universe and everything is "
            "forty-two. ";
  return test::write_file("ppl-sample.txt", text);
}

TEST(PerplexityCli, JsonHasEveryFieldAndStderrEndsWithTheFinalEstimate) {
  const std::string file = sample_text();
  const test::CliResult r = test::run_grok("perplexity -f " + file + " --ctx 48 --json -t 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model"], "(built-in)");
  const int64_t tokens = j["tokens"], chunks = j["chunks"];
  EXPECT_EQ(j["n_ctx"], 48);
  EXPECT_EQ(chunks, tokens / 48);
  ASSERT_GE(chunks, 2) << "the sample text should make several chunks";
  EXPECT_EQ(j["scored_tokens"], chunks * (48 - 1 - 24));
  const double mean_nll = j["mean_nll"], ppl = j["perplexity"], err = j["perplexity_stderr"];
  EXPECT_GT(mean_nll, 0);
  EXPECT_NEAR(ppl, std::exp(mean_nll), 1e-9 * ppl);
  EXPECT_GT(err, 0);
  ASSERT_EQ(j["per_chunk"].size(), size_t(chunks));
  for (int64_t c = 0; c < chunks; ++c) {
    const auto& ch = j["per_chunk"][size_t(c)];
    EXPECT_EQ(ch["chunk"], c + 1);
    EXPECT_EQ(ch["start"], c * 48);
    EXPECT_EQ(ch["scored"], 23);
    EXPECT_TRUE(ch.contains("mean_nll") && ch.contains("perplexity") && ch.contains("running_perplexity"));
  }
  EXPECT_DOUBLE_EQ(double(j["per_chunk"][size_t(chunks - 1)]["running_perplexity"]), ppl);

  // stderr: the running estimates "[1]x,[2]y,..." and llama.cpp's last line.
  char running[64], final_line[128];
  std::snprintf(running, sizeof running, "[%lld]%.4f,\n", (long long)chunks, ppl);
  std::snprintf(final_line, sizeof final_line, "Final estimate: PPL = %.4f +/- %.5f\n", ppl, err);
  EXPECT_NE(r.err.find("[1]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(running), std::string::npos) << r.err;
  ASSERT_GE(r.err.size(), std::string(final_line).size());
  EXPECT_TRUE(r.err.ends_with(final_line)) << r.err;
}

TEST(PerplexityCli, PlainOutputGivesPerplexityAndMeanNll) {
  const test::CliResult r = test::run_grok("perplexity -f " + sample_text() + " --ctx 48 --batch 96 -t 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("perplexity ")) << r.out;
  EXPECT_NE(r.out.find("mean NLL"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Final estimate: PPL = "), std::string::npos) << r.err;
}

TEST(PerplexityCli, MissingFileIsAClearError) {
  const test::CliResult r = test::run_grok("perplexity -f " + test::temp_dir() + "/no-such-text.txt");
  test::expect_clear_error(r, {"no-such-text.txt", "cannot open"});
}

TEST(PerplexityCli, EmptyFileIsAClearError) {
  const std::string file = test::write_file("ppl-empty.txt", "");
  test::expect_clear_error(test::run_grok("perplexity -f " + file), {"ppl-empty.txt", "empty"});
}

TEST(PerplexityCli, AContextBeyondTheModelsIsAClearError) {
  test::expect_clear_error(test::run_grok("perplexity -f " + sample_text() + " --ctx 4096"),
                           {"4096", "exceeds the model's context"});
}

}  // namespace
}  // namespace grok
