// Models of the Grok architecture at other sizes, shapes and dtypes, written
// by tests/tools/make_random_grok.py and checked against the float64 numpy
// reference tests/tools/grok_ref.py: the function, not the oracle's files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "io/npy.h"
#include "model/transformer.h"
#include "test_support.h"

namespace grok {
namespace {

struct RandomModel {
  std::string name;
  std::string make_args;  // for make_random_grok.py
  bool with_hf;           // also check the Hugging Face folder written beside it
  // Float weights: fp32 against float64. Quantised weights: the kernels round
  // activations to 16-bit blocks (about 3e-3 on these logits after two
  // layers), still far finer than the reference's own bf16 activations.
  double tolerance = 1e-3;
};

std::ostream& operator<<(std::ostream& os, const RandomModel& m) { return os << m.name; }

bool python_with_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  return ok;
}

void run(const std::string& cmd) {
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class RandomModels : public ::testing::TestWithParam<RandomModel> {};

TEST_P(RandomModels, LogitsMatchFloat64Reference) {
  if (!python_with_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy (scripts/setup installs it)";
  const RandomModel& rm = GetParam();
  const std::string tools = GROK_TOOLS_DIR, dir = test::temp_dir() + "/" + rm.name;
  const std::string gguf = dir + ".gguf", hf = dir + "-hf";
  run("/usr/bin/python3 " + tools + "/make_random_grok.py " + rm.make_args + " --gguf " + gguf +
      (rm.with_hf ? " --hf " + hf : "") + " >/dev/null");

  const Model model = load_model(gguf);
  // Random prompt with a pad token (id 0) in the middle: it must be masked.
  std::mt19937 rng(7);
  std::vector<int32_t> ids(23);
  for (auto& id : ids) id = int32_t(1 + rng() % uint32_t(model.config.vocab_size - 1));
  ids[9] = 0;
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  run("/usr/bin/python3 " + tools + "/grok_ref.py logits " + gguf + " --tokens " + list +
      " --all-positions --quiet-gaps -o " + dir + ".ref.npy 2>/dev/null");
  int64_t rows = 0, cols = 0;
  const std::vector<float> ref = read_npy_f32(dir + ".ref.npy", rows, cols);
  ASSERT_EQ(rows, int64_t(ids.size()));
  ASSERT_EQ(cols, model.config.vocab_size);

  std::vector<std::string> paths = {gguf};
  if (rm.with_hf) paths.push_back(hf);
  for (const std::string& path : paths) {
    const Model m = load_model(path);
    ThreadPool pool(2);
    Transformer tf(m);
    // The prompt in two pieces checks the KV cache path too.
    KVCache cache(m.config, int64_t(ids.size()));
    std::vector<float> a, b;
    tf.forward(std::span(ids).first(15), cache, pool, true, a);
    tf.forward(std::span(ids).subspan(15), cache, pool, true, b);
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_EQ(a.size(), ref.size());
    double max_diff = 0;
    for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::abs(double(a[i]) - ref[i]));
    EXPECT_LE(max_diff, rm.tolerance) << rm.name << " from " << path;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, RandomModels,
    ::testing::Values(
        RandomModel{"gqa_f32_sharded", "--layers 3 --dim 96 --heads 6 --kv-heads 2 --head-dim 16 --experts 4 "
                    "--top-k 2 --ffn 160 --vocab 1000 --seed 7 --shards 2", true},
        RandomModel{"wide_heads_bf16", "--layers 2 --dim 64 --heads 8 --kv-heads 8 --head-dim 32 --experts 8 "
                    "--top-k 2 --ffn 96 --vocab 700 --seed 11 --dtype bf16 --hf-dtype bf16", true},
        RandomModel{"mqa_q8_0_top3", "--layers 2 --dim 128 --heads 4 --kv-heads 1 --head-dim 32 --experts 6 "
                    "--top-k 3 --ffn 256 --vocab 2000 --seed 3 --dtype q8_0", false, 1e-2},
        RandomModel{"one_layer_f16_top1", "--layers 1 --dim 48 --heads 3 --kv-heads 1 --head-dim 16 --experts 2 "
                    "--top-k 1 --ffn 64 --vocab 500 --seed 5 --dtype f16 --hf-dtype f16 --rope-base 500000 "
                    "--attn-cap 5 --emb-scale 3 --out-scale 2", true}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace grok
