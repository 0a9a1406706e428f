// `grok init` and `grok quantize` as a user runs them.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "io/gguf.h"
#include "test_support.h"

namespace grok {
namespace {

using CliRun = test::CliResult;

CliRun grok(const std::string& args) { return test::run_grok(args); }

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

TEST(CliInit, TinyOneLayerQ8RunsAndQuantizes) {
  const std::string dir = test::temp_dir(), model = dir + "/init-tiny.gguf", q4k = dir + "/init-tiny-q4k.gguf";
  const CliRun init = grok("init --preset tiny " + model + " --layers 1 --type q8_0 --seed 3 -t 2");
  ASSERT_EQ(init.code, 0) << init.err;
  EXPECT_TRUE(contains(init.err, "tensor 14/14")) << init.err;  // progress: 1 + 12 + 1 tensors
  EXPECT_TRUE(contains(init.err, "wrote " + model)) << init.err;
  const CliRun inspect = grok("inspect --brief " + model);
  ASSERT_EQ(inspect.code, 0) << inspect.err;
  EXPECT_TRUE(contains(inspect.out, "layers 1, dim 64")) << inspect.out;
  EXPECT_TRUE(contains(inspect.out, "Q8_0")) << inspect.out;
  const CliRun logits = grok("logits -m " + model + " --tokens 1,2,3 -o " + dir + "/init.npy");
  ASSERT_EQ(logits.code, 0) << logits.err;

  // Same seed, same file; another seed, another.
  const CliRun again = grok("init --preset tiny " + dir + "/again.gguf --layers 1 --type q8_0 --seed 3");
  ASSERT_EQ(again.code, 0) << again.err;
  std::ifstream a(model, std::ios::binary), b(dir + "/again.gguf", std::ios::binary);
  EXPECT_TRUE(std::equal(std::istreambuf_iterator<char>(a), {}, std::istreambuf_iterator<char>(b)));

  // Rows of 64 cannot be Q4_K: the fallback is said, once per reason.
  const CliRun quant = grok("quantize " + model + " " + q4k + " --type q4_k");
  ASSERT_EQ(quant.code, 0) << quant.err;
  EXPECT_TRUE(contains(quant.err, "7 tensors: rows of 64 are not whole Q4_K blocks of 256: stored as Q8_0") ||
              contains(quant.err, "not whole Q4_K blocks"))
      << quant.err;
  const GgufFile g = GgufFile::open(q4k);
  EXPECT_EQ(g.get_int("general.file_type"), 14);
  EXPECT_EQ(g.get_int("grok.block_count"), 1);
  EXPECT_EQ(grok("logits -m " + q4k + " --tokens 1,2,3 -o " + dir + "/q.npy").code, 0);
  for (const char* f : {"/init-tiny.gguf", "/init-tiny-q4k.gguf", "/again.gguf"}) std::filesystem::remove(dir + f);
}

TEST(CliInit, VocabularyFromAGguf) {
  GROK_REQUIRE_SHARED(oracle, "oracle/tiny/grok-tiny-random-f32.gguf");
  const std::string model = test::temp_dir() + "/init-vocab.gguf";
  const CliRun init = grok("init --preset tiny " + model + " --layers 1 --type q4_0 --vocab-from " + oracle);
  ASSERT_EQ(init.code, 0) << init.err;
  const CliRun ids = grok("tokenize -m " + model + " -p 'The answer'");
  ASSERT_EQ(ids.code, 0) << ids.err;
  const CliRun ref = grok("tokenize -m " + oracle + " -p 'The answer'");
  EXPECT_EQ(ids.out, ref.out);
  std::filesystem::remove(model);
}

TEST(CliInit, BadArgumentsAreOneLineErrors) {
  const std::string dir = test::temp_dir();
  for (const auto& [args, needle] : std::initializer_list<std::pair<std::string, std::string>>{
           {"init --preset huge " + dir + "/x.gguf", "unknown preset 'huge'"},
           {"init --preset tiny " + dir + "/x.gguf --type q5_k", "unknown type 'q5_k'"},
           {"init --preset tiny " + dir + "/no/such/dir/x.gguf --layers 1", "cannot create"},
           {"quantize /nonexistent.gguf " + dir + "/y.gguf --type q8_0", "/nonexistent.gguf"},
       }) {
    const CliRun r = grok(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "grok: error: ") && contains(r.err, needle)) << args << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
  }
}

}  // namespace
}  // namespace grok
