// The training loop: its checkpoints are models the engine runs with the
// same function (the training forward pass equals inference), resuming is
// bit-identical, and runs are deterministic whatever the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "engine/engine.h"
#include "engine/open_model.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"
#include "train_configs.h"

namespace grok {
namespace {

GrokConfig small_config() { return small_train_config(Tokenizer::builtin().vocab_size(), 32, 4, 48, 64); }

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(3, int32_t(vocab - 1));  // no pad/bos/eos
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = d(rng);
  return t;
}

TrainOptions small_options(const std::string& out) {
  TrainOptions o;
  o.steps = 6;
  o.batch = 3;
  o.seq = 16;
  o.adam.lr = 3e-3;
  o.adam.warmup = 2;
  o.eval_every = 3;
  o.eval_windows = 4;
  o.router_noise = 0.3;
  o.out = out;
  return o;
}

TEST(Trainer, CheckpointRunsInTheEngineWithTheSameLoss) {
  const std::string dir = test::temp_dir();
  const std::string out = dir + "/m.gguf";
  const GrokConfig c = small_config();
  ThreadPool pool(2);
  const std::vector<int32_t> text = random_tokens(2000, c.vocab_size, 1);
  Trainer t(c, small_options(out), text, {}, Tokenizer::builtin().gguf_vocabulary(), pool);
  t.init_random();
  t.run({}, {}, {});
  ASSERT_TRUE(std::filesystem::exists(out));
  ASSERT_TRUE(std::filesystem::exists(out + ".adamw"));

  // The training forward pass's loss on one window against the engine's logits.
  const std::vector<int32_t> window(text.begin() + 100, text.begin() + 117);
  GradModel<float> gm(c, nullptr);
  TokenBatch b;
  b.rows = 1;
  b.seq = 16;
  b.tokens = window;
  const LossReport r = gm.run(t.params().data(), nullptr, b, {});

  Engine engine(open_model(out), 1);
  const std::span<const int32_t> inputs(window.data(), 16);
  const std::vector<float> logits = engine.logits(inputs, true);
  ASSERT_EQ(logits.size(), size_t(16 * c.vocab_size));
  double ce = 0;
  for (int64_t i = 0; i < 16; ++i) {
    const float* l = logits.data() + i * c.vocab_size;
    double mx = -1e30, sum = 0;
    for (int64_t j = 0; j < c.vocab_size; ++j) mx = std::max(mx, double(l[j]));
    for (int64_t j = 0; j < c.vocab_size; ++j) sum += std::exp(double(l[j]) - mx);
    ce += mx + std::log(sum) - double(l[window[size_t(i + 1)]]);
  }
  EXPECT_NEAR(r.ce, ce / 16, 1e-4);
}

TEST(Trainer, ResumesBitIdenticallyAndIgnoresThreadCount) {
  const std::string dir = test::temp_dir();
  const GrokConfig c = small_config();
  const std::vector<int32_t> text = random_tokens(3000, c.vocab_size, 2);
  const std::vector<int32_t> held = random_tokens(200, c.vocab_size, 3);
  const auto vocab = Tokenizer::builtin().gguf_vocabulary();

  // Straight through on 2 threads.
  ThreadPool two(2), one(1);
  Trainer full(c, small_options(dir + "/full.gguf"), text, held, vocab, two);
  full.init_random();
  std::vector<double> losses_full;
  full.run([&](const StepReport& s) { losses_full.push_back(s.loss); }, {}, {});

  // 3 steps (a checkpoint), then a new trainer resumes it, on 1 thread.
  Trainer a(c, small_options(dir + "/half.gguf"), text, held, vocab, one);
  a.init_random();
  std::vector<double> losses;
  a.run([&](const StepReport& s) { losses.push_back(s.loss); }, {}, {}, 3);
  Trainer b(c, small_options(dir + "/half.gguf"), text, held, vocab, one);
  b.load(dir + "/half.gguf", true);
  EXPECT_EQ(b.step(), 3);
  b.run([&](const StepReport& s) { losses.push_back(s.loss); }, {}, {});
  EXPECT_EQ(losses, losses_full);
  EXPECT_EQ(b.params(), full.params());
}

TEST(Trainer, LossFallsOnARepetitiveText) {
  const std::string dir = test::temp_dir();
  const GrokConfig c = small_config();
  std::vector<int32_t> text;
  for (int i = 0; i < 300; ++i)
    for (int32_t t : {40, 41, 42, 43, 44, 45, 46, 47}) text.push_back(t);
  TrainOptions o = small_options("");
  o.steps = 40;
  o.adam.lr = 1e-2;
  ThreadPool pool(2);
  Trainer t(c, o, text, text, Tokenizer::builtin().gguf_vocabulary(), pool);
  t.init_random();
  const double before = t.evaluate().loss;
  t.run({}, {}, {});
  const double after = t.evaluate().loss;
  EXPECT_GT(before, 4.0);
  EXPECT_LT(after, 0.5);
}

}  // namespace
}  // namespace grok
