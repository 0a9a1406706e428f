// Tokenizer::gguf_vocabulary: a SentencePiece model as tokenizer.ggml.* keys,
// as llama.cpp's converter writes them (but keeping user-defined types).
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace grok {
namespace {

std::string write_vocab(const std::string& name, const Tokenizer& tok) {
  GgufWriter w;
  for (auto& [k, v] : tok.gguf_vocabulary()) w.set(k, v);
  const std::string path = test::temp_dir() + "/" + name + ".gguf";
  w.write(path);
  return path;
}

TEST(GgufVocabulary, BuiltinRoundTrips) {
  const Tokenizer tok = Tokenizer::builtin();
  const GgufFile g = GgufFile::open(write_vocab("builtin-vocab", tok));
  EXPECT_EQ(g.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(g.get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(g.get_int("tokenizer.ggml.eos_token_id"), 2);
  EXPECT_EQ(g.get_int("tokenizer.ggml.padding_token_id"), 0);
  EXPECT_EQ(g.get_int("tokenizer.ggml.unknown_token_id"), 3);
  const Tokenizer back = Tokenizer::from_gguf(g);
  ASSERT_EQ(back.vocab_size(), tok.vocab_size());
  for (int32_t id = 0; id < tok.vocab_size(); ++id) ASSERT_EQ(back.piece(id), tok.piece(id));
  for (const char* text : {"Hello, world", "The answer is 42.\n", "ünïcödé ✓", "  two  spaces"})
    EXPECT_EQ(back.encode(text), tok.encode(text)) << text;
}

// Grok-1's tokenizer.model gives the oracle GGUF's tokens and scores (that
// file was written by llama.cpp's converter); the types agree except that
// the user-defined symbols stay user-defined, so they tokenise whole.
TEST(GgufVocabulary, GrokTokenizerMatchesLlamaCppConversion) {
  GROK_REQUIRE_SHARED(model, "grok-1/tokenizer.model");
  GROK_REQUIRE_SHARED(oracle, "oracle/tiny/grok-tiny-random-f32.gguf");
  const Tokenizer tok = Tokenizer::from_model_file(model);
  const GgufFile ref = GgufFile::open(oracle);
  const GgufFile ours = GgufFile::open(write_vocab("grok-vocab", tok));
  EXPECT_EQ(*ours.get_string_array("tokenizer.ggml.tokens"), *ref.get_string_array("tokenizer.ggml.tokens"));
  EXPECT_EQ(*ours.get_number_array("tokenizer.ggml.scores"), *ref.get_number_array("tokenizer.ggml.scores"));
  const auto& t_ours = *ours.get_number_array("tokenizer.ggml.token_type");
  const auto& t_ref = *ref.get_number_array("tokenizer.ggml.token_type");
  ASSERT_EQ(t_ours.size(), t_ref.size());
  int user_defined = 0;
  for (size_t i = 0; i < t_ours.size(); ++i) {
    if (t_ours[i] == 4 && t_ref[i] == 1) {
      ++user_defined;
      continue;
    }
    ASSERT_EQ(t_ours[i], t_ref[i]) << i;
  }
  EXPECT_GT(user_defined, 0);
  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"})
    EXPECT_EQ(ours.get_int(key), ref.get_int(key)) << key;
  const Tokenizer back = Tokenizer::from_gguf(ours);
  EXPECT_TRUE(back.warnings().empty());
  for (const char* text : {"The answer to life the universe and everything is", "a<|separator|>b\n\n\tx  y",
                           "1234567 ünïcödé"})
    EXPECT_EQ(back.encode(text), tok.encode(text)) << text;
}

// Grok-1's vocabulary as llama.cpp's converter writes it: every user-defined
// piece (the <|...|> symbols, digits, '\n' '\t' and space runs) typed NORMAL.
// Recognised as Grok-1's, it tokenises exactly as SentencePiece does with
// tokenizer.model, the <|...|> symbols as one token each, with no warning.
// Renaming one piece makes it another vocabulary: then it is left as typed,
// splits the symbols, and warns.
TEST(GgufVocabulary, GrokSymbolsTypedNormalAreRestored) {
  GROK_REQUIRE_SHARED(model, "grok-1/tokenizer.model");
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(model).ok());
  const auto reference = [&](const std::string& text) {
    std::vector<int> ids;
    EXPECT_TRUE(sp.Encode(text, &ids).ok());
    return std::vector<int32_t>(ids.begin(), ids.end());
  };
  auto kv = Tokenizer::from_model_file(model).gguf_vocabulary();
  int retyped = 0;
  for (auto& [k, v] : kv)
    if (k == "tokenizer.ggml.token_type")
      for (double& t : v.numbers)
        if (t == 4) {
          t = 1;  // USER_DEFINED -> NORMAL, as llama.cpp writes it
          ++retyped;
        }
  ASSERT_EQ(retyped, 65);
  const auto write = [&](const std::string& name, const std::vector<std::pair<std::string, GgufValue>>& keys) {
    GgufWriter w;
    for (const auto& [k, v] : keys) w.set(k, v);
    const std::string path = test::temp_dir() + "/" + name + ".gguf";
    w.write(path);
    return path;
  };

  std::vector<std::string> texts = {"<|separator|>", "a<|separator|>b", "Hello <|mask|> world",
                                    "<|control1|><|control20|>x", "<|separator", "<|control21|>",
                                    "Q: what is <|separator|> for?\n\nA:", " 12 \t\t x   y\n\n\n"};
  for (int i = 1; i <= 20; ++i) texts.push_back("x <|control" + std::to_string(i) + "|>y<|mask|>");
  const Tokenizer restored = Tokenizer::from_gguf(GgufFile::open(write("grok-llamacpp-types", kv)));
  EXPECT_TRUE(restored.warnings().empty());
  for (const std::string& text : texts) EXPECT_EQ(restored.encode(text), reference(text)) << text;
  // Ids from python's sentencepiece on tokenizer.model.
  EXPECT_EQ(restored.encode("a<|separator|>b"), (std::vector<int32_t>{327, 47, 130110}));
  EXPECT_EQ(restored.encode("Hello <|mask|> world"), (std::vector<int32_t>{11770, 130089, 48, 1135}));
  // Written back out, the pieces are user-defined again (type 4).
  for (const auto& [k, v] : restored.gguf_vocabulary()) {
    if (k == "tokenizer.ggml.token_type") {
      EXPECT_EQ(std::count(v.numbers.begin(), v.numbers.end(), 4.0), 65);
    }
  }

  for (auto& [k, v] : kv)
    if (k == "tokenizer.ggml.tokens") v.strings[68] = "<|control99|>";
  const Tokenizer other = Tokenizer::from_gguf(GgufFile::open(write("not-quite-grok", kv)));
  EXPECT_EQ(other.warnings().size(), 1u);
  EXPECT_NE(other.encode("a<|separator|>b"), reference("a<|separator|>b"));
}

}  // namespace
}  // namespace grok
