// A ckpt-0 folder as a user runs it: generate directly with the tokenizer
// found beside it, convert, inspect, and the errors they see.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test_support.h"

namespace grok {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

TEST(CliCheckpoint, GenerateAndConvertWithTheRealTokenizer) {
  GROK_REQUIRE_SHARED(tokenizer, "grok-1/tokenizer.model");
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with numpy (scripts/setup installs it)";
  // The release's layout: grok-1/ckpt-0/ with tokenizer.model beside it.
  const std::string root = test::temp_dir() + "/grok-1", ckpt = root + "/ckpt-0";
  ASSERT_EQ(std::system(("/usr/bin/python3 " + std::string(GROK_TOOLS_DIR) + "/make_grok_checkpoint.py --out " + root +
                         " --vocab 131072 --dim 32 --layers 2 --heads 2 --kv-heads 1 --head-dim 16 --experts 4 "
                         "--ffn 64 --seed 4 >/dev/null")
                            .c_str()),
            0);
  fs::copy_file(tokenizer, root + "/tokenizer.model");

  const test::CliResult gen =
      test::run_grok("generate -m " + ckpt + " -p 'The answer is' -n 6 --temperature 0 -t 2");
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_FALSE(gen.out.empty());
  EXPECT_TRUE(contains(gen.err, "checking checkpoint files: 26/26")) << gen.err;

  // Converted to int8, the same greedy text; the vocabulary travels with it.
  const std::string gguf = root + "/grok-int8.gguf";
  const test::CliResult conv = test::run_grok("convert " + ckpt + " " + gguf + " -t 2");
  ASSERT_EQ(conv.code, 0) << conv.err;
  EXPECT_TRUE(contains(conv.err, "as int8, vocabulary from")) << conv.err;
  EXPECT_TRUE(contains(conv.err, "peak resident memory")) << conv.err;
  const test::CliResult gen2 = test::run_grok("generate -m " + gguf + " -p 'The answer is' -n 6 --temperature 0 -t 2");
  ASSERT_EQ(gen2.code, 0) << gen2.err;
  EXPECT_EQ(gen2.out, gen.out);

  const test::CliResult q8 = test::run_grok("convert " + ckpt + " " + root + "/grok-q8.gguf --type q8_0 -t 2");
  ASSERT_EQ(q8.code, 0) << q8.err;
  const test::CliResult info = test::run_grok("inspect --brief " + root + "/grok-q8.gguf");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_TRUE(contains(info.out, "Q8_0")) << info.out;

  // The reference's rounding is an option, and an unknown value is refused.
  EXPECT_EQ(test::run_grok("generate -m " + ckpt + " -p 'x' -n 2 --int8-rounding bf16").code, 0);
  const test::CliResult bad = test::run_grok("generate -m " + ckpt + " -p 'x' --int8-rounding fp8");
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.err, "--int8-rounding")) << bad.err;
  const test::CliResult type = test::run_grok("convert " + ckpt + " " + root + "/x.gguf --type q3_k");
  EXPECT_EQ(type.code, 1);
  EXPECT_TRUE(contains(type.err, "unknown type 'q3_k'")) << type.err;
  EXPECT_FALSE(fs::exists(root + "/x.gguf"));
}

}  // namespace
}  // namespace grok
