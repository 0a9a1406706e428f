// The `grok` command as a user runs it: the built-in default, same-seed
// reproducibility, and bad input of every kind giving one clear line and exit 1.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "io/gguf_writer.h"
#include "io/npy.h"
#include "model/grok_gguf.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "test_support.h"

namespace grok {
namespace {

using Result = test::CliResult;

Result grok(const std::string& args) { return test::run_grok(args); }

// A tiny Grok GGUF made from the built-in model's tensors; `edit` may change
// the writer's input (drop, reshape or add a tensor) before writing.
struct TinyGguf {
  std::string arch = "grok";
  std::function<bool(const TensorInfo&)> keep = [](const TensorInfo&) { return true; };
  std::function<void(GgufWriter&)> extra = [](GgufWriter&) {};
  std::string reshape;  // tensor whose first dim is halved
};

void set_tiny_metadata(GgufWriter& w, const Model& m, const std::string& arch) {
  set_grok_metadata(w, m.config, "tiny", DType::F32);
  w.set_string("general.architecture", arch);
  w.set_u32("grok.context_length", 64);
  w.set_f32("grok.attention.output_scale", 0.25f);
}

std::string write_tiny_gguf(const std::string& name, const TinyGguf& spec = {}) {
  const Model m = builtin_model(300);
  GgufWriter w;
  set_tiny_metadata(w, m, spec.arch);
  for (const TensorInfo& t : m.store->tensors()) {
    if (!spec.keep(t)) continue;
    auto shape = t.shape;
    uint64_t bytes = t.nbytes;
    if (t.name == spec.reshape) {
      shape[0] /= 2;
      bytes /= 2;
    }
    w.add_tensor(t.name, t.dtype, shape, std::vector<std::byte>(t.data, t.data + bytes));
  }
  spec.extra(w);
  const std::string path = test::temp_dir() + "/" + name + ".gguf";
  w.write(path);
  return path;
}

using test::expect_clear_error;
using test::slurp;

TEST(Cli, BuiltInDefaultGeneratesAndReportsSpeed) {
  const Result r = grok("generate -p 'Hello' -n 12");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST(Cli, SameSeedSameOutput) {
  const std::string args = "generate -p 'The answer' -n 24 --temperature 1.0 --top-p 0.9 --seed ";
  const Result a = grok(args + "5"), b = grok(args + "5"), c = grok(args + "6");
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
}

TEST(Cli, TopProbsPrintsOneJsonLinePerToken) {
  const Result r = grok("generate -p 'Hi' -n 5 --temperature 0 --top-probs");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 5) << r.out;
  EXPECT_NE(r.out.find("\"top\": [["), std::string::npos) << r.out;
}

TEST(Cli, TopProbsTakesACountAsItsOwnWordOrAfterEquals) {
  for (const std::string form : {"--top-probs 3", "--top-probs=3"}) {
    const Result r = grok("generate -p 'Hi' -n 2 --temperature 0 " + form);
    ASSERT_EQ(r.code, 0) << form << ": " << r.err;
    const std::string first = r.out.substr(0, r.out.find('\n'));
    const auto top = nlohmann::json::parse(first)["top"];
    EXPECT_EQ(top.size(), 3u) << form << ": " << first;
  }
}

TEST(Cli, VersionAndHelpExitZero) {
  const Result v = grok("--version");
  EXPECT_EQ(v.code, 0) << v.err;
  EXPECT_EQ(v.out.rfind("grok ", 0), 0u) << v.out;
  EXPECT_NE(v.out.find("kernels:"), std::string::npos) << v.out;
  const Result h = grok("generate --help");
  EXPECT_EQ(h.code, 0) << h.err;
  EXPECT_NE(h.out.find("--max-tokens"), std::string::npos) << h.out;
}

TEST(Cli, TokenizeDetokenizeRoundTrip) {
  const Result ids = grok("tokenize -p 'Hello, world'");
  ASSERT_EQ(ids.code, 0) << ids.err;
  EXPECT_EQ(ids.out.front(), '[');
  const Result text = grok("detokenize '" + ids.out.substr(0, ids.out.size() - 1) + "'");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(text.out, "Hello, world\n");
}

TEST(Cli, LogitsWritesNpyOfLastOrAllPositions) {
  const std::string model = write_tiny_gguf("ok"), out = test::temp_dir() + "/l.npy";
  int64_t rows = 0, cols = 0;
  ASSERT_EQ(grok("logits -m " + model + " --tokens 5,6,7 -o " + out).code, 0);
  read_npy_f32(out, rows, cols);
  EXPECT_EQ(rows, 1);
  EXPECT_EQ(cols, 300);
  ASSERT_EQ(grok("logits -m " + model + " --tokens 5,6,7 --all-positions -o " + out).code, 0);
  read_npy_f32(out, rows, cols);
  EXPECT_EQ(rows, 3);
}

TEST(Cli, UntiedOutputProjectionIsUsedWhenPresent) {
  // An all-zero output.weight must give all-zero logits; tied, they are not.
  const std::string untied = write_tiny_gguf("untied", {.extra = [](GgufWriter& w) {
                                                          w.add_tensor("output.weight", DType::F32, {300, 64},
                                                                       std::vector<std::byte>(300 * 64 * 4));
                                                        }});
  const std::string out = test::temp_dir() + "/untied.npy";
  int64_t rows = 0, cols = 0;
  ASSERT_EQ(grok("logits -m " + untied + " --tokens 5,6 -o " + out).code, 0);
  for (float v : read_npy_f32(out, rows, cols)) ASSERT_EQ(v, 0.0f);
  ASSERT_EQ(grok("logits -m " + write_tiny_gguf("tied") + " --tokens 5,6 -o " + out).code, 0);
  const auto tied = read_npy_f32(out, rows, cols);
  EXPECT_NE(std::count(tied.begin(), tied.end(), 0.0f), int64_t(tied.size()));
}

// Written as llama.cpp's gguf-split does: metadata in part 1, tensors over both.
TEST(Cli, SplitGgufLoadsFromItsFirstPart) {
  const Model m = builtin_model(300);
  const auto& tensors = m.store->tensors();
  const std::string prefix = test::temp_dir() + "/split";
  for (uint32_t part = 0; part < 2; ++part) {
    GgufWriter w;
    if (part == 0) set_tiny_metadata(w, m, "grok");
    w.set_u32("split.no", part);
    w.set_u32("split.count", 2);
    w.set_i32("split.tensors.count", int32_t(tensors.size()));
    for (size_t i = part * tensors.size() / 2; i < (part + 1) * tensors.size() / 2; ++i)
      w.add_tensor(tensors[i].name, tensors[i].dtype, tensors[i].shape,
                   std::vector<std::byte>(tensors[i].data, tensors[i].data + tensors[i].nbytes));
    w.write(prefix + "-0000" + std::to_string(part + 1) + "-of-00002.gguf");
  }
  const std::string whole = write_tiny_gguf("whole"), out = test::temp_dir() + "/s.npy";
  int64_t rows = 0, cols = 0;
  ASSERT_EQ(grok("logits -m " + whole + " --tokens 5,6,7 -o " + out).code, 0);
  const auto expected = read_npy_f32(out, rows, cols);
  const Result r = grok("logits -m " + prefix + "-00001-of-00002.gguf --tokens 5,6,7 -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_npy_f32(out, rows, cols), expected);
  expect_clear_error(grok("logits -m " + prefix + "-00002-of-00002.gguf --tokens 1 -o " + out),
                     {"part 2", "first part"});
  std::filesystem::remove(prefix + "-00002-of-00002.gguf");
  expect_clear_error(grok("logits -m " + prefix + "-00001-of-00002.gguf --tokens 1 -o " + out),
                     {"-00002-of-00002.gguf"});
}

TEST(Cli, BenchReportsEveryFieldAsJson) {
  const Result r = grok("bench -p 8 -n 4 -r 2 -t 2 --probe-mib 64 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_tokens_per_s"].size(), 2u);
  EXPECT_EQ(j["gen_tokens_per_s"].size(), 2u);
  for (const char* key : {"prompt_tokens_per_s_median", "gen_tokens_per_s_median", "weight_gb_per_s",
                          "memory_read_gb_per_s", "peak_rss_mib"})
    EXPECT_GT(j[key].get<double>(), 0) << key;
  if (embedded_default_model().empty()) {
    // The tiny random model: 2 layers of attention, 2 of 8 experts, output projection, norms and router in fp32.
    EXPECT_EQ(j["weight_bytes_per_token"].get<uint64_t>(),
              4u * (412 * 64 + 64 + 2 * (2 * 64 * 64 + 2 * 32 * 64 + 8 * 64 + 4 * 64 + 2 * 3 * 64 * 128)));
  } else {
    // The trained default (models/default.json, Q8_0: 34 bytes a block of 32): per layer q, k, v, o rows of
    // dim 256, 2 experts' two 192 × 256 and one 256 × 192 matrices, fp32 norms and router; then the
    // final norm and the 4096 × 256 output projection.
    const uint64_t row256 = 8 * 34, row192 = 6 * 34;
    const uint64_t layer = (256 + 128 + 128 + 256) * row256 + 2 * (2 * 192 * row256 + 256 * row192) +
                           4 * 256 * 4 + 8 * 256 * 4;
    EXPECT_EQ(j["weight_bytes_per_token"].get<uint64_t>(), 4 * layer + 256 * 4 + 4096 * row256);
  }
}

TEST(Cli, BenchBatchedGeneration) {
  const Result r = grok("bench -p 4 -n 3 -b 5 -r 1 -t 2 --probe-mib 8 --json --activation-bits 8");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["batch"].get<int>(), 5);
  EXPECT_EQ(j["activation_bits"].get<int>(), 8);
  const Result bits = grok("bench --activation-bits 4");
  EXPECT_NE(bits.code, 0);
  EXPECT_NE(bits.err.find("--activation-bits"), std::string::npos) << bits.err;
  EXPECT_GT(j["gen_tokens_per_s_median"].get<double>(), 0);
  EXPECT_TRUE(j["weight_bandwidth_share"].is_null());  // per-token bandwidth means nothing for a batch
  const Result bad = grok("bench -b 0");  // refused by the option parser, naming the option
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("--batch"), std::string::npos) << bad.err;
}

TEST(CliErrors, MissingAndTruncatedFiles) {
  expect_clear_error(grok("logits -m /nonexistent.gguf --tokens 1 -o x.npy"), {"/nonexistent.gguf"});
  const std::string good = write_tiny_gguf("trunc-src");
  const std::string bytes = slurp(good);
  for (size_t cut : {size_t(3), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
    const std::string path = test::temp_dir() + "/trunc.gguf";
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(cut));
    expect_clear_error(grok("logits -m " + path + " --tokens 1 -o x.npy"), {path});
  }
}

TEST(CliErrors, TensorsMissingMisshapedOrUnknown) {
  const auto missing = write_tiny_gguf("missing", {.keep = [](const TensorInfo& t) {
                                                      return t.name != "blk.1.attn_q.weight";
                                                    }});
  expect_clear_error(grok("logits -m " + missing + " --tokens 1 -o x.npy"), {"blk.1.attn_q.weight", "missing"});
  const auto shaped = write_tiny_gguf("shaped", {.reshape = "blk.0.attn_k.weight"});
  expect_clear_error(grok("logits -m " + shaped + " --tokens 1 -o x.npy"), {"blk.0.attn_k.weight", "shape"});
  const auto extra = write_tiny_gguf("extra", {.extra = [](GgufWriter& w) {
                                                 w.add_tensor("mystery.weight", DType::F32, {4},
                                                              std::vector<std::byte>(16));
                                               }});
  expect_clear_error(grok("logits -m " + extra + " --tokens 1 -o x.npy"), {"mystery.weight", "unexpected"});
  const auto llama = write_tiny_gguf("llama", {.arch = "llama"});
  expect_clear_error(grok("logits -m " + llama + " --tokens 1 -o x.npy"), {"llama", "architecture"});
}

TEST(CliErrors, InvalidHuggingFaceConfig) {
  const std::string dir = test::temp_dir() + "/hf-bad";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << "{\"hidden_size\": ";
  expect_clear_error(grok("logits -m " + dir + " --tokens 1 -o x.npy"), {"config.json", "invalid JSON"});
  std::ofstream(dir + "/config.json") << R"({"hidden_size": "big", "vocab_size": 10})";
  expect_clear_error(grok("logits -m " + dir + " --tokens 1 -o x.npy"), {"config.json", "hidden_size"});
}

// Every refusal of the command line is one line naming the option and what
// to give instead, and exit 1 (CLI11's own exit codes are 105-114).
TEST(CliErrors, BadOptionValuesAndCommands) {
  const Result negative = grok("generate -n -5");
  expect_clear_error(negative, {"--max-tokens", "-5 is below 0"});
  EXPECT_LT(negative.err.size(), 200u) << negative.err;  // not the 309-digit double range
  expect_clear_error(grok("generate -n 99999999999999999999999"), {"--max-tokens", "is above"});
  expect_clear_error(grok("generate --temperature abc"), {"--temperature", "'abc' is not a number"});
  expect_clear_error(grok("generate --top-p 1.5"), {"--top-p", "out of range", "0 to 1"});
  expect_clear_error(grok("generate --seed -1"), {"--seed", "'-1'"});
  expect_clear_error(grok("generate -t 1000000"), {"--threads", "1000000 threads", "hardware threads"});
  expect_clear_error(grok("generate -t abc"), {"--threads", "'abc'"});
  expect_clear_error(grok("init --preset tiny x.gguf --seed -3"), {"--seed", "'-3'"});
  expect_clear_error(grok("serve --port 70000"), {"--port", "70000 is above 65535"});
  expect_clear_error(grok("bench -r 0"), {"--repetitions", "0 is below 1"});
  expect_clear_error(grok("generate -n"), {"--max-tokens needs a value"});
  expect_clear_error(grok("generate --bogus"), {"--bogus", "grok generate --help"});
  expect_clear_error(grok("frobnicate -p hi"), {"unknown command 'frobnicate'", "generate", "serve"});
  expect_clear_error(grok(""), {"give a command", "generate"});
}

// GROK_ISA is read when the kernels are first chosen, which --version does too.
TEST(CliErrors, UnknownGrokIsaIsOneLineEvenForVersion) {
  ::setenv("GROK_ISA", "bogus", 1);
  const Result version = grok("--version"), generate = grok("generate -p hi -n 2");
  ::unsetenv("GROK_ISA");
  expect_clear_error(version, {"GROK_ISA=bogus", "generic, avx2, avx512"});
  expect_clear_error(generate, {"GROK_ISA=bogus"});
}

TEST(CliErrors, TokenOutOfRangeAndOverLongRequest) {
  const std::string model = write_tiny_gguf("ctx");
  expect_clear_error(grok("logits -m " + model + " --tokens 1,300 -o x.npy"), {"300", "out of range"});
  expect_clear_error(grok("logits -m " + model + " --tokens 1,x -o x.npy"), {"'x'"});
  std::string many = "1";
  for (int i = 0; i < 64; ++i) many += ",1";
  expect_clear_error(grok("logits -m " + model + " --tokens " + many + " -o x.npy"), {"context of 64"});
  expect_clear_error(grok("generate -p 'Hello' -n 5000"), {"context", "--max-tokens"});
  expect_clear_error(grok("tokenize -p \"$(printf 'bad \\377 byte')\""), {"UTF-8"});
}

}  // namespace
}  // namespace grok
