// Continuous batching gives every request the tokens it gets alone.
#include "engine/batch_generator.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/error.h"

namespace grok {
namespace {

Engine builtin_engine() {
  Tokenizer tok = Tokenizer::builtin();
  const int64_t vocab = tok.vocab_size();
  return Engine(builtin_model(vocab, 77), std::move(tok), 2);
}

GenerateOptions options(float temperature, uint64_t seed, int64_t max_tokens) {
  GenerateOptions o;
  o.sampling.temperature = temperature;
  o.sampling.seed = seed;
  o.max_tokens = max_tokens;
  return o;
}

struct Outcome {
  GenerateResult result;
  std::string streamed;
  int done_calls = 0;
};

TEST(BatchGenerator, EveryRequestGetsWhatItGetsAlone) {
  Engine engine = builtin_engine();
  std::vector<std::pair<std::string, GenerateOptions>> reqs = {
      {"Hello world", options(0, 1, 12)},
      {"The answer to life", options(0.8f, 7, 20)},
      {"A longer prompt, so that one sequence reads many tokens while others decode", options(1.0f, 3, 15)},
      {"Nothing", options(0.8f, 5, 0)},
      {"Late joiner", options(0.7f, 11, 9)},
      {"Another late one", options(0.9f, 13, 14)},
  };
  reqs[2].second.sampling.top_p = 0.9f;
  // Alone first; request 1 then gets a stop string from the middle of its own text.
  std::vector<GenerateResult> alone;
  for (auto& [text, opt] : reqs) alone.push_back(engine.generate(engine.tokenize(text, false), opt, nullptr));
  ASSERT_GT(alone[1].text.size(), 8u);
  reqs[1].second.stop = {alone[1].text.substr(4, 3)};
  alone[1] = engine.generate(engine.tokenize(reqs[1].first, false), reqs[1].second, nullptr);
  ASSERT_EQ(alone[1].finish_reason, "stop");

  BatchGenerator batch(engine, 3);  // fewer slots than requests: some wait
  std::map<int64_t, size_t> which;
  std::vector<Outcome> got(reqs.size());
  auto submit = [&](size_t i) {
    BatchRequest r{engine.tokenize(reqs[i].first, false), reqs[i].second,
                   [&got, i](const TokenEvent& ev) { got[i].streamed += ev.text; },
                   [&got, i](const GenerateResult& res) {
                     got[i].result = res;
                     ++got[i].done_calls;
                   }};
    which[batch.submit(std::move(r))] = i;
  };
  for (size_t i = 0; i < 4; ++i) submit(i);
  EXPECT_EQ(batch.waiting(), 4u);
  int steps = 0;
  while (batch.step()) {
    EXPECT_LE(batch.running(), 3u);
    if (++steps == 3) submit(4), submit(5);  // join a running batch
  }
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].done_calls, 1) << i;
    EXPECT_EQ(got[i].result.ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(got[i].result.text, alone[i].text) << "request " << i;
    EXPECT_EQ(got[i].result.finish_reason, alone[i].finish_reason) << "request " << i;
    EXPECT_EQ(got[i].streamed, alone[i].text) << "request " << i;
  }
  EXPECT_TRUE(got[3].result.ids.empty());
}

TEST(BatchGenerator, CancelFreesARequestWithoutDisturbingOthers) {
  Engine engine = builtin_engine();
  const GenerateOptions opt = options(0.8f, 21, 16);
  const GenerateResult alone = engine.generate(engine.tokenize("keep going", false), opt, nullptr);
  BatchGenerator batch(engine, 4);
  GenerateResult kept, cancelled, never_ran;
  const int64_t keep = batch.submit({engine.tokenize("keep going", false), opt, nullptr,
                                     [&](const GenerateResult& r) { kept = r; }});
  const int64_t drop = batch.submit({engine.tokenize("stop soon", false), opt, nullptr,
                                     [&](const GenerateResult& r) { cancelled = r; }});
  batch.step();
  batch.step();
  batch.cancel(drop);
  EXPECT_EQ(cancelled.finish_reason, "cancelled");
  EXPECT_EQ(cancelled.ids.size(), 2u);
  EXPECT_EQ(batch.running(), 1u);
  const int64_t queued = batch.submit({engine.tokenize("never", false), opt, nullptr,
                                       [&](const GenerateResult& r) { never_ran = r; }});
  batch.cancel(queued);  // still waiting: dropped before it runs
  EXPECT_EQ(never_ran.finish_reason, "cancelled");
  EXPECT_TRUE(never_ran.ids.empty());
  batch.cancel(999);  // unknown: ignored
  while (batch.step()) {
  }
  EXPECT_EQ(kept.ids, alone.ids);
  EXPECT_EQ(kept.text, alone.text);
  (void)keep;
}

TEST(BatchGenerator, RequestsThatCannotRunAreRefusedAtSubmit) {
  Engine engine = builtin_engine();
  BatchGenerator batch(engine, 2);
  EXPECT_THROW(batch.submit({{}, options(0, 1, 4), nullptr, nullptr}), Error);
  GenerateOptions too_long = options(0, 1, engine.model().config.context_length);
  EXPECT_THROW(batch.submit({{1, 2, 3}, too_long, nullptr, nullptr}), Error);
  EXPECT_EQ(batch.waiting(), 0u);
  EXPECT_FALSE(batch.step());
  EXPECT_THROW(BatchGenerator(engine, 0), Error);
}

}  // namespace
}  // namespace grok
