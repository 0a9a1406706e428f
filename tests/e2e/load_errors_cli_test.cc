// Paths given to -m and --tokenizer that are not what they should be: one
// line naming the path, what was expected and what is there; exit code 1;
// nothing else on stderr (SentencePiece's own logging included). And the
// release's grok-1/ folder given instead of its ckpt-0/.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "io/gguf_writer.h"
#include "model/grok_gguf.h"
#include "model/model.h"
#include "test_support.h"

namespace grok {
namespace {

namespace fs = std::filesystem;
using test::CliResult;

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string fresh_dir(const std::string& name) {
  const std::string d = test::temp_dir() + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The -m forms of every command that loads a model share load_model; logits
// with token ids needs no vocabulary.
CliResult logits(const std::string& model) {
  return test::run_grok("logits -m '" + model + "' --tokens 1,2 -o " + test::temp_dir() + "/load-errors.npy");
}

std::string tiny_gguf(const std::string& path) {
  const Model m = builtin_model(300);
  GgufWriter w;
  set_grok_metadata(w, m.config, "tiny", DType::F32);
  for (const TensorInfo& t : m.store->tensors())
    w.add_tensor(t.name, t.dtype, t.shape, std::vector<std::byte>(t.data, t.data + t.nbytes));
  w.write(path);
  return path;
}

const char* const kExpected[] = {"not a model folder", "expected a GGUF file",
                                 "Hugging Face folder (config.json + *.safetensors)", "ckpt-0/", "tensor00000_000"};

void expect_not_a_model_folder(const std::string& dir, const std::string& found) {
  SCOPED_TRACE(dir);
  const CliResult r = logits(dir);
  test::expect_clear_error(r, {dir + ": not a model folder", found});
  for (const char* e : kExpected) EXPECT_NE(r.err.find(e), std::string::npos) << "'" << e << "' not in: " << r.err;
}

TEST(CliLoadErrors, FolderThatIsNotAModelSaysWhatItHolds) {
  const std::string empty = fresh_dir("empty-folder");
  expect_not_a_model_folder(empty, "it is empty");

  const std::string notes = fresh_dir("notes-folder");
  spit(notes + "/notes.txt", "hello\n");
  fs::create_directories(notes + "/sub");
  expect_not_a_model_folder(notes, "it holds notes.txt, sub/");

  const std::string with_gguf = fresh_dir("gguf-folder");
  tiny_gguf(with_gguf + "/tiny.gguf");
  expect_not_a_model_folder(with_gguf, "did you mean " + with_gguf + "/tiny.gguf?");
  // ...and that is indeed a model.
  EXPECT_EQ(logits(with_gguf + "/tiny.gguf").code, 0);

  const std::string st = fresh_dir("safetensors-folder");
  spit(st + "/model-00001-of-00002.safetensors", "");
  spit(st + "/model-00002-of-00002.safetensors", "");
  expect_not_a_model_folder(st, "it has 2 *.safetensors files but no config.json");

  const std::string partial = fresh_dir("partial-release");
  fs::create_directories(partial + "/ckpt-0");
  spit(partial + "/tokenizer.model", "x");
  expect_not_a_model_folder(partial, "its ckpt-0/ holds no tensor00000_000");

  // A name with a control byte stays on one line.
  const std::string odd = fresh_dir("odd-folder");
  spit(odd + "/a\nb", "");
  expect_not_a_model_folder(odd, "it holds 'a\\x0ab'");
}

TEST(CliLoadErrors, MissingPathAndNonGgufFile) {
  const std::string missing = test::temp_dir() + "/no-such-model";
  test::expect_clear_error(logits(missing), {missing + ": no such file or directory"});
  const std::string text = test::temp_dir() + "/notes.gguf";
  spit(text, "just some notes\n");
  test::expect_clear_error(logits(text), {text + ": not a GGUF file (bad magic 'just')"});
}

// grok-1/ as downloaded holds ckpt-0/ and tokenizer.model: -m grok-1 loads
// the checkpoint inside, says so, and runs exactly as -m grok-1/ckpt-0.
TEST(CliLoadErrors, ReleaseFolderLoadsItsCkpt0WithANote) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with numpy (scripts/setup installs it)";
  const std::string root = fresh_dir("release") + "/grok-1";
  ASSERT_EQ(std::system(("/usr/bin/python3 " + std::string(GROK_TOOLS_DIR) + "/make_grok_checkpoint.py --out " + root +
                         " --vocab 300 --dim 32 --layers 1 --heads 2 --kv-heads 1 --head-dim 16 --experts 2 "
                         "--top-k 1 --ffn 32 --seed 3 >/dev/null")
                            .c_str()),
            0);
  const std::string a = test::temp_dir() + "/release-a.npy", b = test::temp_dir() + "/release-b.npy";
  const CliResult direct = test::run_grok("logits -m " + root + "/ckpt-0 --tokens 1,2,3 -o " + a);
  ASSERT_EQ(direct.code, 0) << direct.err;
  EXPECT_EQ(direct.err.find("grok: note:"), std::string::npos) << direct.err;
  const CliResult parent = test::run_grok("logits -m " + root + " --tokens 1,2,3 -o " + b);
  ASSERT_EQ(parent.code, 0) << parent.err;
  EXPECT_NE(parent.err.find("grok: note: " + root + " is not itself a model; loading the checkpoint in " + root +
                            "/ckpt-0"),
            std::string::npos)
      << parent.err;
  EXPECT_EQ(test::slurp(a), test::slurp(b));
}

TEST(CliLoadErrors, TokenizerThatIsNotASentencePieceModel) {
  const std::string notes = test::temp_dir() + "/notes.txt";
  spit(notes, "Remember to buy milk.\nAnd eggs.\n");
  const std::string empty = test::temp_dir() + "/empty.model";
  spit(empty, "");
  const std::string dir = fresh_dir("tokenizer-dir");
  const std::string missing = test::temp_dir() + "/no-such-tokenizer.model";
  const std::string gguf = tiny_gguf(test::temp_dir() + "/tok-tiny.gguf");
  const std::pair<std::string, std::string> cases[] = {
      {notes, notes + ": not a SentencePiece tokenizer.model ("},
      {empty, empty + ": not a SentencePiece tokenizer.model (the file is empty)"},
      {dir, dir + ": is a directory, not a SentencePiece tokenizer.model"},
      {missing, missing + ": no such file or directory"},
      // A GGUF is a model, not a tokenizer.model.
      {gguf, gguf + ": not a SentencePiece tokenizer.model ("},
  };
  for (const auto& [path, needle] : cases) {
    SCOPED_TRACE(path);
    test::expect_clear_error(test::run_grok("tokenize --tokenizer " + path + " -p hi"), {needle});
    // With a model too: the override is read the same way.
    test::expect_clear_error(test::run_grok("tokenize -m " + gguf + " --tokenizer " + path + " -p hi"), {needle});
    test::expect_clear_error(test::run_grok("generate --tokenizer " + path + " -p hi -n 1"), {needle});
  }
}

// Byte offset where the top-level field `field` of a protobuf message first
// starts (npos if never): enough wire format to cut a tokenizer.model at
// its piece / trainer_spec / normalizer_spec boundaries.
size_t field_start(const std::string& b, uint32_t field) {
  size_t i = 0;
  const auto varint = [&] {
    uint64_t v = 0;
    for (int shift = 0; i < b.size(); shift += 7) {
      const uint8_t c = uint8_t(b[i++]);
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) break;
    }
    return v;
  };
  while (i < b.size()) {
    const size_t start = i;
    const uint64_t key = varint();
    if (key >> 3 == field) return start;
    if ((key & 7) != 2) return std::string::npos;  // ModelProto's top level is all messages
    i += size_t(varint());
  }
  return std::string::npos;
}

TEST(CliLoadErrors, TruncatedTokenizerModel) {
  GROK_REQUIRE_SHARED(model, "grok-1/tokenizer.model");
  const std::string bytes = test::slurp(model);
  const size_t trainer = field_start(bytes, 2), normalizer = field_start(bytes, 3);
  ASSERT_NE(trainer, std::string::npos);
  ASSERT_NE(normalizer, std::string::npos);
  const std::pair<size_t, const char*> cuts[] = {
      {1, "malformed or truncated"},
      {100, "malformed or truncated"},
      {bytes.size() / 2, "malformed or truncated"},
      // Cut between fields: well-formed but incomplete. SentencePiece itself
      // loads the second without a word (with default normalizer flags).
      {trainer, "no trainer_spec (is the file truncated?)"},
      {normalizer, "no normalizer_spec (is the file truncated?)"},
      {bytes.size() - 1, "malformed or truncated"},
  };
  const std::string cut_path = test::temp_dir() + "/truncated-tokenizer.model";
  for (const auto& [cut, why] : cuts) {
    SCOPED_TRACE(cut);
    spit(cut_path, bytes.substr(0, cut));
    test::expect_clear_error(test::run_grok("tokenize --tokenizer " + cut_path + " -p hi"),
                          {cut_path + ": not a SentencePiece tokenizer.model (" + why});
  }
  const CliResult whole = test::run_grok("tokenize --tokenizer " + model + " -p 'a<|separator|>b'");
  ASSERT_EQ(whole.code, 0) << whole.err;
  EXPECT_EQ(whole.out, "[327, 47, 130110]\n");  // python sentencepiece's ids
  EXPECT_EQ(whole.err, "");
}

}  // namespace
}  // namespace grok
