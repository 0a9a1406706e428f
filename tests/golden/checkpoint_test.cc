// xAI's checkpoint format end to end, on synthetic ckpt-0 folders written by
// tests/tools/make_grok_checkpoint.py with the release's exact byte
// structure: run directly, converted, and checked against the float64
// reference for both functions an engine may compute (CHECKPOINT.md, "Which
// function"): the exact int8·scale and the reference's bf16(int8·scale).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/gguf.h"
#include "io/npy.h"
#include "kernels/dequantize.h"
#include "model/quantize_model.h"
#include "model/transformer.h"
#include "test_support.h"

namespace grok {
namespace {

namespace fs = std::filesystem;

bool python_with_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  return ok;
}

void run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }

// One synthetic checkpoint with uneven block counts (attention output in 2
// blocks of input rows, down projection in 4), plus the same model as f32
// Hugging Face folders of its rounded and its exact weights.
class Checkpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!python_with_numpy()) return;
    dir_ = test::temp_dir() + "/ckpt";
    run("/usr/bin/python3 " + std::string(GROK_TOOLS_DIR) +
        "/make_grok_checkpoint.py --out " + dir_ + " --vocab 1000 --dim 64 --layers 3 --heads 4 --kv-heads 2 "
        "--head-dim 16 --experts 8 --top-k 2 --ffn 96 --attn-out-blocks 2 --down-blocks 4 --seed 21 --hf-rounded " +
        dir_ + "/hf-rounded --hf-exact " + dir_ + "/hf-exact >/dev/null");
  }
  void SetUp() override {
    if (!python_with_numpy()) GTEST_SKIP() << "needs /usr/bin/python3 with numpy (scripts/setup installs it)";
  }

  static std::string ckpt() { return dir_ + "/ckpt-0"; }

  // A prompt with a pad token, fed in two pieces through the KV cache.
  static const std::vector<int32_t>& ids() {
    static const std::vector<int32_t> v = [] {
      std::mt19937 rng(5);
      std::vector<int32_t> ids(13);
      for (auto& id : ids) id = int32_t(1 + rng() % 999);
      ids[4] = 0;
      return ids;
    }();
    return v;
  }

  static std::vector<float> logits(const Model& m) {
    ThreadPool pool(2);
    Transformer tf(m);
    KVCache cache(m.config, int64_t(ids().size()));
    std::vector<float> a, b;
    tf.forward(std::span(ids()).first(8), cache, pool, true, a);
    tf.forward(std::span(ids()).subspan(8), cache, pool, true, b);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  static std::vector<float> reference(const std::string& hf) {
    std::string list;
    for (int32_t id : ids()) list += (list.empty() ? "" : ",") + std::to_string(id);
    const std::string out = hf + ".ref.npy";
    if (!fs::exists(out))
      run("/usr/bin/python3 " + std::string(GROK_TOOLS_DIR) + "/grok_ref.py logits " + hf + " --tokens " + list +
          " --all-positions --quiet-gaps -o " + out + " 2>/dev/null");
    int64_t rows = 0, cols = 0;
    const std::vector<float> ref = read_npy_f32(out, rows, cols);
    EXPECT_EQ(rows, int64_t(ids().size()));
    return ref;
  }

  static double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    EXPECT_EQ(a.size(), b.size());
    double d = 0;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - double(b[i])));
    return d;
  }

  static Model load(const std::string& path, bool round_to_bf16) {
    LoadOptions o;
    o.int8_round_to_bf16 = round_to_bf16;
    return load_model(path, o);
  }

  static std::string convert(DType type, bool round_to_bf16 = false) {
    const std::string out = dir_ + "/converted-" + std::string(dtype_name(type)) + (round_to_bf16 ? "-r" : "") + ".gguf";
    if (!fs::exists(out)) {
      ThreadPool pool(2);
      quantize_model(load(ckpt(), round_to_bf16), out, type, {}, pool, nullptr, nullptr);
    }
    return out;
  }

  static inline std::string dir_;
};

TEST_F(Checkpoint, LoadsWithItsShapes) {
  const Model m = load_model(ckpt());
  EXPECT_EQ(m.format, "checkpoint");
  EXPECT_EQ(m.config.n_layers, 3);
  EXPECT_EQ(m.config.n_heads, 4);
  EXPECT_EQ(m.config.head_dim, 16);
  const WeightMatrix& wo = m.weights.layers[1].wo;
  EXPECT_EQ(wo.dtype, DType::I8);
  EXPECT_EQ(wo.scale_blocks, 2);
  EXPECT_EQ(m.weights.layers[2].experts[7].w2.scale_blocks, 4);
  EXPECT_EQ(m.weights.layers[0].experts[0].w1.scale_blocks, 1);
}

TEST_F(Checkpoint, ExactProductMatchesItsReference) {
  const std::vector<float> got = logits(load(ckpt(), false));
  EXPECT_LE(max_diff(got, reference(dir_ + "/hf-exact")), 1e-3);
  // The same weights as f32 through the float kernels.
  EXPECT_LE(max_diff(got, logits(load_model(dir_ + "/hf-exact"))), 1e-4);
}

TEST_F(Checkpoint, ReferenceRoundingMatchesItsReference) {
  const std::vector<float> got = logits(load(ckpt(), true));
  EXPECT_LE(max_diff(got, reference(dir_ + "/hf-rounded")), 1e-3);
  EXPECT_LE(max_diff(got, logits(load_model(dir_ + "/hf-rounded"))), 1e-4);
  // The two functions really differ (CHECKPOINT.md: about 0.1 on such models).
  EXPECT_GT(max_diff(got, logits(load(ckpt(), false))), 1e-3);
}

TEST_F(Checkpoint, Int8ConversionIsBitForBit) {
  const std::string gguf = convert(DType::I8);
  EXPECT_EQ(logits(load_model(ckpt())), logits(load_model(gguf)));
  EXPECT_EQ(logits(load(ckpt(), true)), logits(load(gguf, true)));
  // Every int8 value and scale is the checkpoint's.
  const Model src = load_model(ckpt());
  const GgufFile g = GgufFile::open(gguf);
  const TensorStore& t = g.tensors();
  const auto same = [&](const std::string& a, const std::string& b) {
    const TensorInfo& x = src.store->get(a, "ckpt");
    const TensorInfo& y = t.get(b, gguf);
    ASSERT_EQ(x.shape, y.shape) << b;
    ASSERT_EQ(x.nbytes, y.nbytes) << b;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << b;
  };
  same("transformer/decoder_layer_2/moe/linear_1/w", "blk.2.ffn_down_exps.weight");
  same("transformer/decoder_layer_2/moe/linear_1/scales", "blk.2.ffn_down_exps.scales");
  same("transformer/decoder_layer_1/multi_head_attention/linear/w", "blk.1.attn_output.weight");
  same("transformer/decoder_layer_1/multi_head_attention/linear/scales", "blk.1.attn_output.scales");
  same("language_model/in_out_embed/embeddings", "token_embd.weight");
}

TEST_F(Checkpoint, Bf16ConversionHoldsTheReferenceWeights) {
  // --type bf16 stores bf16(int8·scale): the reference's own weights, exactly.
  const Model m = load_model(convert(DType::BF16));
  const Model ref = load_model(dir_ + "/hf-rounded");
  auto rows = [](const WeightMatrix& w) {
    std::vector<float> out(size_t(w.rows * w.cols));
    dequantize_rows(w, 0, w.rows, out.data());
    return out;
  };
  for (int64_t l = 0; l < 3; ++l) {
    const LayerWeights &a = m.weights.layers[size_t(l)], &b = ref.weights.layers[size_t(l)];
    EXPECT_EQ(a.wq.dtype, DType::BF16);
    EXPECT_EQ(rows(a.wq), rows(b.wq));
    EXPECT_EQ(rows(a.wo), rows(b.wo));  // 2 blocks of scales
    for (size_t e = 0; e < 8; ++e) {
      EXPECT_EQ(rows(a.experts[e].w1), rows(b.experts[e].w1));
      EXPECT_EQ(rows(a.experts[e].w2), rows(b.experts[e].w2));  // 4 blocks of scales
    }
  }
}

TEST_F(Checkpoint, QuantisedConversionsLoad) {
  for (DType type : {DType::Q8_0, DType::Q4_K}) {
    const Model m = load_model(convert(type));
    EXPECT_NE(m.weights.layers[0].experts[0].w1.dtype, DType::I8);
    const std::vector<float> got = logits(m), want = logits(load_model(ckpt()));
    // Top-1 agrees on most positions (a random model's near ties may flip).
    int agree = 0;
    const int64_t v = m.config.vocab_size;
    for (size_t p = 0; p < ids().size(); ++p) {
      auto top = [&](const std::vector<float>& l) {
        return std::max_element(l.begin() + p * v, l.begin() + (p + 1) * v) - (l.begin() + p * v);
      };
      agree += top(got) == top(want);
    }
    EXPECT_GE(agree, int(ids().size()) * 2 / 3) << dtype_name(type);
  }
}

TEST_F(Checkpoint, Int8NeedsAnInt8Source) {
  const std::string out = dir_ + "/from-hf-int8.gguf";
  ThreadPool pool(1);
  test::expect_error([&] { quantize_model(load_model(dir_ + "/hf-exact"), out, DType::I8, {}, pool, nullptr, nullptr); },
                     "--type int8 keeps a model's int8 weights as they are");
  EXPECT_FALSE(fs::exists(out));
}

// A copy of the checkpoint (and the config beside it) to break in one way.
std::string broken_copy(const std::string& src, const std::string& name) {
  const std::string parent = test::temp_dir() + "/broken-" + name, dst = parent + "/ckpt-0";
  fs::remove_all(parent);
  fs::create_directories(parent);
  fs::copy(src, dst);
  fs::copy_file(fs::path(src).parent_path() / "grok-config.json", parent + "/grok-config.json");
  return dst;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

TEST_F(Checkpoint, RefusesBrokenFolders) {
  {
    const std::string d = broken_copy(ckpt(), "missing");
    fs::remove(d + "/tensor00017_000");
    test::expect_error([&] { load_model(d); }, "tensor00017_000 is missing");
  }
  {
    const std::string d = broken_copy(ckpt(), "extra");
    write_file(d + "/notes.txt", "hello");
    test::expect_error([&] { load_model(d); }, "unexpected file 'notes.txt'");
  }
  {
    const std::string d = broken_copy(ckpt(), "count");
    fs::remove(d + "/tensor00037_000");
    test::expect_error([&] { load_model(d); }, "37 tensor files is not 2 + 12 per layer");
  }
  {
    const std::string d = broken_copy(ckpt(), "shard");
    fs::rename(d + "/tensor00037_000", d + "/tensor00037_001");
    test::expect_error([&] { load_model(d); }, "shard 001 of a multi-host checkpoint");
  }
  {
    const std::string d = broken_copy(ckpt(), "truncated");
    fs::resize_file(d + "/tensor00014_000", fs::file_size(d + "/tensor00014_000") / 2);
    test::expect_error([&] { load_model(d); }, "tensor00014_000: byte");
  }
  {
    const std::string d = broken_copy(ckpt(), "swapped");  // a norm where a quantised weight belongs
    fs::copy_file(d + "/tensor00009_000", d + "/tensor00002_000", fs::copy_options::overwrite_existing);
    test::expect_error([&] { load_model(d); }, "tensor00002_000: transformer/decoder_layer_0/moe/linear/w should be a "
                                               "QuantizedWeight8bit but is a plain array");
  }
  {
    const std::string d = broken_copy(ckpt(), "shape");  // layer 0's query where layer 0's key belongs
    fs::copy_file(d + "/tensor00007_000", d + "/tensor00005_000", fs::copy_options::overwrite_existing);
    test::expect_error([&] { load_model(d); }, "multi_head_attention/key/w' has shape [64, 64], expected [64, 32]");
  }
  {
    const std::string d = broken_copy(ckpt(), "hostile");  // a pickle that would run a shell command
    const std::string evil = std::string("\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.");
    write_file(d + "/tensor00003_000", evil);
    test::expect_error([&] { load_model(d); }, "tensor00003_000: byte 16: refusing global 'os.system'");
  }
  {
    const std::string d = broken_copy(ckpt(), "config");  // a config that disagrees with the tensors
    write_file(d + "/grok-config.json", R"({"n_heads": 8, "head_dim": 16})");
    test::expect_error([&] { load_model(d); }, "has shape [64, 64], expected [64, 128]");
    write_file(d + "/grok-config.json", R"({"n_head": 8})");
    test::expect_error([&] { load_model(d); }, "unknown field 'n_head'");
  }
}

}  // namespace
}  // namespace grok
