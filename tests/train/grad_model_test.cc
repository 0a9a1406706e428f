// The whole model's gradient (src/train/grad_model.h) against central finite
// differences in double precision on a tiny config, and the properties the
// trainer relies on: checkpointing and the thread count change nothing,
// float agrees with double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "train/adamw.h"
#include "train/grad_model.h"
#include "train/param_layout.h"

namespace grok {
namespace {

GrokConfig tiny_config() {
  GrokConfig c;
  c.vocab_size = 23;
  c.dim = 8;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 4;
  c.n_experts = 4;
  c.n_experts_used = 2;
  c.ffn_dim = 6;
  c.context_length = 16;
  c.embed_scale = 2.8f;
  c.logit_scale = 0.6f;
  c.attn_scale = 0.5f;
  c.attn_cap = 3.0f;  // small enough that the tanh cap matters
  return c;
}

TokenBatch tiny_batch() {
  TokenBatch b;
  b.rows = 2;
  b.seq = 6;
  // Row 0 ends in padding (0): a masked key and unscored targets.
  b.tokens = {5, 9, 3, 17, 22, 0, 0, 1, 4, 4, 12, 7, 20, 2};
  return b;
}

template <class S>
std::vector<S> random_params(const ParamLayout& layout, uint64_t seed) {
  std::vector<S> p(size_t(layout.total()));
  init_parameters(layout, seed, p.data());
  // Norm scales away from 1 and a router that is not near uniform, so every
  // term of the gradient is exercised.
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  for (const ParamTensor& t : layout.tensors())
    if (t.tensor.is_norm() || t.tensor.is_router())
      for (int64_t i = 0; i < t.size; ++i) p[size_t(t.offset + i)] = S((t.tensor.is_norm() ? 1.0 : 0.0) + 0.3 * d(rng));
  return p;
}

TEST(GradModel, MatchesFiniteDifferencesOnEveryTensor) {
  const GrokConfig c = tiny_config();
  GradModel<double> model(c, nullptr);
  const ParamLayout& layout = model.layout();
  std::vector<double> p = random_params<double>(layout, 11);
  const TokenBatch batch = tiny_batch();
  LossOptions o;
  o.lb_coef = 0.1;
  std::vector<double> g(p.size(), 0.0);
  const LossReport r = model.run(p.data(), g.data(), batch, o);
  EXPECT_GT(r.ce, 0);
  EXPECT_GT(r.lb, 0);
  EXPECT_EQ(r.scored, 10);  // 12 positions, row 0's last two targets are padding

  std::mt19937_64 rng(3);
  const double h = 1e-6;
  int checked = 0;
  for (const ParamTensor& t : layout.tensors()) {
    std::uniform_int_distribution<int64_t> pick(0, t.size - 1);
    for (int k = 0; k < 6; ++k) {
      const size_t i = size_t(t.offset + pick(rng));
      const double keep = p[i];
      p[i] = keep + h;
      const double up = model.run(p.data(), nullptr, batch, o).loss;
      p[i] = keep - h;
      const double down = model.run(p.data(), nullptr, batch, o).loss;
      p[i] = keep;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(g[i], fd, 1e-6 * (1 + std::abs(fd))) << t.tensor.name << " element " << i - size_t(t.offset);
      ++checked;
    }
  }
  EXPECT_EQ(checked, int(layout.tensors().size()) * 6);
}

TEST(GradModel, CheckpointingGivesTheSameGradientBitForBit) {
  const GrokConfig c = tiny_config();
  GradModel<float> model(c, nullptr);
  const std::vector<float> p = random_params<float>(model.layout(), 5);
  LossOptions o;
  o.router_noise = 0.5;  // the noise must be recomputed identically too
  o.noise_seed = 9;
  std::vector<float> g1(p.size(), 0.f), g2(p.size(), 0.f);
  const LossReport a = model.run(p.data(), g1.data(), tiny_batch(), o);
  o.checkpointing = true;
  const LossReport b = model.run(p.data(), g2.data(), tiny_batch(), o);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.expert_tokens, b.expert_tokens);
  EXPECT_EQ(g1, g2);
}

// Large enough that every loop and product splits over the pool, and the
// parameters span several of AdamW's norm blocks: 1, 2 and 3 threads give
// the same loss, gradient and update bit for bit.
TEST(GradModel, ThreadCountDoesNotChangeTheGradientOrTheUpdate) {
  GrokConfig c = tiny_config();
  c.vocab_size = 300;
  c.dim = 64;
  c.head_dim = 16;
  c.ffn_dim = 96;
  c.context_length = 64;
  TokenBatch b;
  b.rows = 4;
  b.seq = 64;
  std::mt19937_64 rng(3);
  for (int64_t i = 0; i < b.rows * (b.seq + 1); ++i) b.tokens.push_back(int32_t(rng() % 300));
  b.tokens[40] = 0;  // a padding token
  LossOptions o;
  o.router_noise = 0.5;
  o.noise_seed = 4;
  std::vector<std::vector<float>> grads, params;
  std::vector<double> losses, norms;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    GradModel<float> model(c, &pool);
    ASSERT_GT(model.layout().total(), 2 << 16);  // three norm blocks or more
    std::vector<float> p = random_params<float>(model.layout(), 6), g(p.size(), 0.f);
    losses.push_back(model.run(p.data(), g.data(), b, o).loss);
    AdamW<float> adam(model.layout().total());
    AdamWOptions ao;
    ao.clip = 1e-3;  // clipping on
    norms.push_back(adam.update(p.data(), g.data(), model.layout(), ao, &pool));
    grads.push_back(g);
    params.push_back(p);
  }
  for (size_t i = 1; i < grads.size(); ++i) {
    EXPECT_EQ(losses[i], losses[0]);
    EXPECT_EQ(norms[i], norms[0]);
    EXPECT_EQ(grads[i], grads[0]);
    EXPECT_EQ(params[i], params[0]);
  }
}

TEST(GradModel, FloatAgreesWithDouble) {
  const GrokConfig c = tiny_config();
  GradModel<float> mf(c, nullptr);
  GradModel<double> md(c, nullptr);
  const std::vector<double> pd = random_params<double>(md.layout(), 8);
  const std::vector<float> pf(pd.begin(), pd.end());
  std::vector<double> gd(pd.size(), 0.0);
  std::vector<float> gf(pd.size(), 0.f);
  const LossReport rd = md.run(pd.data(), gd.data(), tiny_batch(), {});
  const LossReport rf = mf.run(pf.data(), gf.data(), tiny_batch(), {});
  EXPECT_NEAR(rf.loss, rd.loss, 1e-5);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < gd.size(); ++i) {
    worst = std::max(worst, std::abs(double(gf[i]) - gd[i]));
    scale = std::max(scale, std::abs(gd[i]));
  }
  EXPECT_LT(worst, 1e-4 * scale);
}

TEST(GradModel, RouterNoiseOnlyWhenAsked) {
  const GrokConfig c = tiny_config();
  GradModel<double> model(c, nullptr);
  const std::vector<double> p = random_params<double>(model.layout(), 2);
  LossOptions quiet, noisy;
  noisy.router_noise = 3.0;
  noisy.noise_seed = 1;
  const LossReport a = model.run(p.data(), nullptr, tiny_batch(), quiet);
  const LossReport b = model.run(p.data(), nullptr, tiny_batch(), quiet);
  const LossReport d = model.run(p.data(), nullptr, tiny_batch(), noisy);
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_NE(a.expert_tokens, d.expert_tokens);
}

}  // namespace
}  // namespace grok
