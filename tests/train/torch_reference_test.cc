// The C++ training against an independent autograd: tests/tools/torch_grok.py
// implements docs/training.md in PyTorch (Debian's python3-torch). Per
// parameter gradients, then the losses of 20 AdamW steps, on a tiny config.
// Skips with a message when /usr/bin/python3 has no torch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "core/thread_pool.h"
#include "io/npy.h"
#include "test_support.h"
#include "train/adamw.h"
#include "train/trainer.h"
#include "train_configs.h"

namespace grok {
namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kTorchTool = std::string(GROK_TOOLS_DIR) + "/torch_grok.py";

bool have_torch() {
  static const bool ok = std::system((kPython + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

void run_tool(const std::string& args) {
  const std::string cmd = kPython + " " + kTorchTool + " " + args + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// int32 .npy of any shape (io/npy.h writes float32 only).
void write_npy_i32(const std::string& path, const std::vector<int32_t>& v, const std::vector<int64_t>& shape) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t n = uint16_t(header.size());
  f.write(reinterpret_cast<const char*>(&n), 2);
  f << header;
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * 4));
}

GrokConfig tiny() {
  GrokConfig c = small_train_config(97, 32, 4, 40, 32);
  c.attn_cap = 4.0f;  // reached by some scores: the cap's derivative is exercised
  return c;
}

std::vector<int32_t> batch_tokens(int64_t rows, int64_t seq, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(1, int32_t(vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(rows * (seq + 1)));
  for (auto& x : t) x = d(rng);
  t[5] = 0;  // a pad inside the first row: a masked key and an unscored target
  return t;
}

// The model the tests start from, written as a GGUF both sides read.
std::vector<double> write_start_model(const GrokConfig& c, const std::string& path) {
  ThreadPool pool(1);
  std::vector<int32_t> text(200, 5);
  TrainOptions o;
  o.batch = 1;
  o.seq = 8;
  o.seed = 42;
  Trainer t(c, o, text, {}, {}, pool);
  t.init_random();
  t.save(path);
  return {t.params().begin(), t.params().end()};
}

TEST(TorchReference, GradientsOfEveryParameter) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 has no torch (Debian python3-torch; scripts/setup installs it)";
  const std::string dir = test::temp_dir();
  const GrokConfig c = tiny();
  const std::vector<double> p = write_start_model(c, dir + "/m.gguf");
  const int64_t rows = 3, seq = 12;
  TokenBatch b;
  b.rows = rows;
  b.seq = seq;
  b.tokens = batch_tokens(rows, seq, c.vocab_size, 7);
  write_npy_i32(dir + "/batch.npy", b.tokens, {rows, seq + 1});
  run_tool("grads --model " + dir + "/m.gguf --batch " + dir + "/batch.npy --out " + dir + "/g --lb-coef 0.05");

  LossOptions lo;
  lo.lb_coef = 0.05;
  GradModel<double> md(c, nullptr);
  std::vector<double> gd(p.size(), 0.0);
  const LossReport r = md.run(p.data(), gd.data(), b, lo);
  GradModel<float> mf(c, nullptr);
  const std::vector<float> pf(p.begin(), p.end());
  std::vector<float> gf(p.size(), 0.f);
  mf.run(pf.data(), gf.data(), b, lo);

  int64_t rr = 0, cc = 0;
  const std::vector<float> loss = read_npy_f32(dir + "/g/loss.npy", rr, cc);
  EXPECT_NEAR(r.loss, loss[0], 1e-6 * std::abs(loss[0]));
  EXPECT_NEAR(r.ce, loss[1], 1e-6 * std::abs(loss[1]));
  EXPECT_NEAR(r.lb, loss[2], 1e-6 * std::abs(loss[2]));
  for (const ParamTensor& t : md.layout().tensors()) {
    const std::vector<float> ref = read_npy_f32(dir + "/g/" + t.tensor.name + ".npy", rr, cc);
    ASSERT_EQ(int64_t(ref.size()), t.size) << t.tensor.name;
    double norm = 0, err_d = 0, err_f = 0;
    for (int64_t i = 0; i < t.size; ++i) {
      const double want = ref[size_t(i)];
      norm = std::max(norm, std::abs(want));
      err_d = std::max(err_d, std::abs(gd[size_t(t.offset + i)] - want));
      err_f = std::max(err_f, std::abs(double(gf[size_t(t.offset + i)]) - want));
    }
    ASSERT_GT(norm, 0) << t.tensor.name << ": a zero gradient checks nothing";
    // The reference's gradient is float64 stored as float32 (rel. 6e-8).
    EXPECT_LT(err_d / norm, 1e-4) << t.tensor.name << " (double)";
    EXPECT_LT(err_f / norm, 1e-4) << t.tensor.name << " (float)";
  }
}

TEST(TorchReference, TwentyAdamWSteps) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 has no torch (Debian python3-torch; scripts/setup installs it)";
  const std::string dir = test::temp_dir();
  const GrokConfig c = tiny();
  const std::vector<double> p0 = write_start_model(c, dir + "/m.gguf");
  const int64_t steps = 20, rows = 2, seq = 10;
  std::vector<int32_t> all;
  for (int64_t s = 0; s < steps; ++s) {
    const std::vector<int32_t> t = batch_tokens(rows, seq, c.vocab_size, 100 + uint64_t(s));
    all.insert(all.end(), t.begin(), t.end());
  }
  write_npy_i32(dir + "/batches.npy", all, {steps, rows, seq + 1});
  AdamWOptions o;
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.warmup = 5;
  o.steps = steps;
  o.clip = 0.5;  // small enough to clip some steps
  run_tool("adamw --model " + dir + "/m.gguf --batches " + dir + "/batches.npy --steps 20 --lr 3e-3 --min-lr 3e-4"
           " --warmup 5 --total-steps 20 --wd 0.1 --clip 0.5 --beta1 0.9 --beta2 0.95 --eps 1e-8 --lb-coef 0.05"
           " --out " + dir + "/losses.npy");
  int64_t rr = 0, cc = 0;
  const std::vector<float> want = read_npy_f32(dir + "/losses.npy", rr, cc);
  ASSERT_EQ(want.size(), size_t(steps));

  auto train = [&]<class S>(S) {
    GradModel<S> m(c, nullptr);
    std::vector<S> p(p0.begin(), p0.end()), g(p0.size());
    AdamW<S> adam(m.layout().total());
    LossOptions lo;
    lo.lb_coef = 0.05;
    std::vector<double> losses;
    for (int64_t s = 0; s < steps; ++s) {
      TokenBatch b;
      b.rows = rows;
      b.seq = seq;
      b.tokens.assign(all.begin() + s * rows * (seq + 1), all.begin() + (s + 1) * rows * (seq + 1));
      std::fill(g.begin(), g.end(), S(0));
      losses.push_back(m.run(p.data(), g.data(), b, lo).loss);
      adam.update(p.data(), g.data(), m.layout(), o);
    }
    return losses;
  };
  const std::vector<double> ld = train(double{}), lf = train(float{});
  for (int64_t s = 0; s < steps; ++s) {
    EXPECT_NEAR(ld[size_t(s)], want[size_t(s)], 1e-4) << "step " << s + 1 << " (double)";
    EXPECT_NEAR(lf[size_t(s)], want[size_t(s)], 1e-4) << "step " << s + 1 << " (float)";
  }
  EXPECT_LT(want.back(), want.front());  // it trained
}

}  // namespace
}  // namespace grok
