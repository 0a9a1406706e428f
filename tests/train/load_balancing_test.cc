// The load-balancing loss and router noise do what they are for: on a small
// synthetic task whose router starts with one expert shut out, training
// without them leaves that expert dead, training with them revives it.
#include <gtest/gtest.h>

#include <cmath>

#include "core/thread_pool.h"
#include "tokenizer/tokenizer.h"
#include "train/trainer.h"
#include "train_configs.h"

namespace grok {
namespace {

struct Outcome {
  std::vector<std::pair<int64_t, int64_t>> dead;
  std::vector<int64_t> load;  // [layer][expert]
};

Outcome train(double lb_coef, double noise) {
  const GrokConfig c = small_train_config(64, 32, 4, 32, 32);
  // The task: next = (3·this + 1) mod 61 + 2, a permutation to learn.
  std::vector<int32_t> text{5};
  while (text.size() < 4000) text.push_back((3 * (text.back() - 2) + 1) % 61 + 2);
  TrainOptions o;
  o.steps = 150;
  o.batch = 4;
  o.seq = 16;
  o.adam.lr = 1e-2;
  o.adam.warmup = 10;
  o.adam.min_lr = 1e-3;
  o.lb_coef = lb_coef;
  o.router_noise = noise;
  o.eval_windows = 32;
  ThreadPool pool(2);
  Trainer t(c, o, text, text, {}, pool);
  t.init_random();
  // Every token's ffn input gets a large, shared component along dimension
  // 0 (an embedding offset), and each layer's router scores expert 3 by
  // minus that component: expert 3 starts far behind for every token.
  const ParamLayout& layout = t.layout();
  std::vector<float>& p = t.params();
  for (int64_t v = 0; v < c.vocab_size; ++v) p[size_t(layout.embed + v * c.dim)] = 1.0f;
  for (const LayerParamOffsets& l : layout.layers) p[size_t(l.router + 3 * c.dim)] = -1.5f;
  const EvalReport before = t.evaluate();
  EXPECT_EQ(before.dead.size(), size_t(c.n_layers));  // expert 3 of each layer, before training
  t.run({}, {}, {});
  const EvalReport after = t.evaluate();
  return {after.dead, after.expert_tokens};
}

TEST(LoadBalancing, ShutOutExpertStaysDeadWithoutAndRevivesWith) {
  const Outcome plain = train(0.0, 0.0);
  const Outcome balanced = train(0.5, 1.0);
  EXPECT_FALSE(plain.dead.empty()) << "without the loss and the noise an expert should stay dead";
  EXPECT_TRUE(balanced.dead.empty()) << "with them no expert should be dead";
  for (int64_t l = 0; l < 2; ++l) {
    int64_t total = 0;
    for (int64_t e = 0; e < 4; ++e) total += balanced.load[size_t(l * 4 + e)];
    EXPECT_EQ(plain.load[size_t(l * 4 + 3)], 0) << "layer " << l;
    EXPECT_GT(double(balanced.load[size_t(l * 4 + 3)]), 0.1 * double(total)) << "layer " << l;
  }
}

}  // namespace
}  // namespace grok
