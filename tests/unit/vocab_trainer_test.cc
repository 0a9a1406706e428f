// train_vocabulary: a small Grok-1-style BPE vocabulary trained on generated
// text is deterministic, quiet, round-trips any UTF-8 (byte fallback) and
// tokenises the same when stored in a GGUF and read back.
#include "tokenizer/vocab_trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace grok {
namespace {

// ~300 KB of English-like lines from a fixed seed: Zipf-distributed words
// (a few with non-ASCII letters), capitals, punctuation and numbers.
std::vector<std::string> corpus_words() {
  std::vector<std::string> words = {
      "the",  "and",   "of",    "to",     "in",    "that",   "he",    "shall", "unto",   "for",
      "i",    "his",   "a",     "lord",   "they",  "be",     "is",    "him",   "not",    "them",
      "it",   "with",  "all",   "thou",   "thy",   "was",    "god",   "which", "my",     "me",
      "said", "but",   "ye",    "their",  "have",  "will",   "thee",  "from",  "as",     "are",
      "when", "this",  "out",   "were",   "upon",  "man",    "by",    "you",   "israel", "king",
      "son",  "up",    "there", "hath",   "then",  "people", "came",  "had",   "house",  "into",
      "on",   "her",   "come",  "one",    "we",    "children", "before", "your", "also",  "day",
      "land", "men",   "against", "shalt", "if",   "hand",   "went",  "let",   "go",     "saying",
      "café", "naïve", "über",  "Grüße",  "señor", "façade", "smörgåsbord", "crème", "déjà", "vu"};
  return words;
}

std::string generated_text(size_t bytes, uint32_t seed) {
  const std::vector<std::string> words = corpus_words();
  std::vector<double> weights;
  for (size_t i = 0; i < words.size(); ++i) weights.push_back(1.0 / double(i + 1));
  std::mt19937 rng(seed);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::uniform_int_distribution<int> len(4, 30), coin(0, 99), num(0, 9999);
  std::string text;
  while (text.size() < bytes) {
    const int n = len(rng);
    std::string line;
    for (int i = 0; i < n; ++i) {
      std::string w = words[pick(rng)];
      if (i == 0 && w[0] >= 'a' && w[0] <= 'z') w[0] = char(w[0] - 'a' + 'A');
      if (!line.empty()) line += ' ';
      line += w;
      const int c = coin(rng);
      if (c < 8) line += ',';
      else if (c < 10) line += ';';
      else if (c < 12) line.append(" ").append(std::to_string(num(rng)));
      else if (c == 12) line += ':';
    }
    text.append(line).append(coin(rng) < 80 ? ".\n" : "?\n");
    if (coin(rng) < 5) text += "\n";
  }
  return text;
}

// Fixed samples plus random strings of code points from every plane
// (surrogates excluded), most of which only byte pieces can spell.
std::vector<std::string> sample_texts() {
  std::vector<std::string> texts = {
      "And the lord said unto the king, Let my people go.",
      "Grüße aus Köln: 12 crème brûlée, 3 smörgåsbord; 世界 你好 🙂🚀 Ελληνικά русский العربية",
      " leading space",
      "two  spaces and\ttabs\t\t and\nnew\n\nlines\n\n\n",
      "<|separator|>a<|mask|>b<|control7|>",
      "digits 0123456789 and 3.14159",
      "\xE2\x96\x85 (SentencePiece's unknown marker)",  // "▁" would decode as a space
      "",
  };
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> plane(0, 3), cp16(0, 0xFFFF), cp(0, 0x10FFFF), len(1, 40);
  for (int i = 0; i < 200; ++i) {
    std::string s;
    for (uint32_t n = len(rng); n > 0; --n) {
      char32_t c;
      do {
        const uint32_t p = plane(rng);
        c = p == 0 ? char32_t(cp16(rng) & 0x7F) : p == 1 ? char32_t(cp16(rng) & 0x7FF) : p == 2 ? cp16(rng) : cp(rng);
      } while ((c >= 0xD800 && c <= 0xDFFF) || c == 0);
      s += test::utf8(c);
    }
    texts.push_back(s);
  }
  return texts;
}

VocabTrainOptions small(int32_t vocab_size) {
  VocabTrainOptions o;
  o.vocab_size = vocab_size;
  return o;
}

const std::string& corpus_file() {
  static const std::string path = test::write_file("vocab-corpus.txt", generated_text(300'000, 1));
  return path;
}

TEST(VocabTrainer, DeterministicQuietAndGrokLayout) {
  testing::internal::CaptureStderr();
  const std::string a = train_vocabulary({corpus_file()}, small(420));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "");  // SentencePiece's progress lines are silenced
  const std::string b = train_vocabulary({corpus_file()}, small(420));
  EXPECT_TRUE(a == b);  // (not EXPECT_EQ: it would print both protos)
  VocabTrainOptions sampled = small(420);
  sampled.input_sentence_size = 2000;  // about half the lines
  const std::string s1 = train_vocabulary({corpus_file()}, sampled);
  EXPECT_TRUE(s1 == train_vocabulary({corpus_file()}, sampled));
  EXPECT_TRUE(s1 != a);

  const Tokenizer tok = Tokenizer::from_serialized(a);
  ASSERT_EQ(tok.vocab_size(), 420);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.piece(0), "[PAD]");
  EXPECT_EQ(tok.piece(1), "[BOS]");
  EXPECT_EQ(tok.piece(2), "[EOS]");
  EXPECT_EQ(tok.piece(3), "[UNK]");
  const std::vector<std::string> user = grok1_user_defined_symbols();
  ASSERT_EQ(user.size(), 65u);
  for (size_t i = 0; i < user.size(); ++i) EXPECT_EQ(tok.piece(int32_t(4 + i)), user[i]) << i;
  EXPECT_EQ(tok.piece(69), "<0x00>");
  EXPECT_TRUE(tok.is_byte(69 + 255));
  EXPECT_EQ(tok.piece(69 + 255), "<0xFF>");
  EXPECT_FALSE(tok.is_byte(69 + 256));
  EXPECT_TRUE(tok.adds_dummy_prefix());
  // The merges learnt something: a frequent word is one piece.
  EXPECT_EQ(tok.encode("the").size(), 1u);
  EXPECT_EQ(tok.encode("The lord 42").size(), 5u);  // "▁The" "▁lord" "▁" "4" "2"

  // A different text gives a different vocabulary (the test is not vacuous).
  const std::string other = test::write_file("vocab-other.txt", generated_text(100'000, 2));
  EXPECT_TRUE(train_vocabulary({other}, small(420)) != a);
}

TEST(VocabTrainer, RoundTripsAnyUtf8) {
  const Tokenizer tok = Tokenizer::from_serialized(train_vocabulary({corpus_file()}, small(400)));
  for (const std::string& text : sample_texts()) {
    const std::vector<int32_t> ids = tok.encode(text);
    EXPECT_EQ(tok.decode(ids), text) << text;
    for (int32_t id : ids) EXPECT_NE(id, 3) << "[UNK] in " << text;  // byte fallback instead
  }
  const std::string text = generated_text(20'000, 3);
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_LT(tok.encode(text).size(), text.size() * 2 / 3);  // ~75 merges learnt
}

TEST(VocabTrainer, GgufVocabularyEncodesTheSame) {
  const Tokenizer tok = Tokenizer::from_serialized(train_vocabulary({corpus_file()}, small(500)));
  GgufWriter w;
  for (auto& [k, v] : tok.gguf_vocabulary()) w.set(k, v);
  const std::string path = test::temp_dir() + "/trained-vocab.gguf";
  w.write(path);
  const Tokenizer back = Tokenizer::from_gguf(GgufFile::open(path));
  EXPECT_TRUE(back.warnings().empty());
  ASSERT_EQ(back.vocab_size(), tok.vocab_size());
  for (int32_t id = 0; id < tok.vocab_size(); ++id) ASSERT_EQ(back.piece(id), tok.piece(id)) << id;
  EXPECT_EQ(back.bos_id(), tok.bos_id());
  EXPECT_EQ(back.eos_id(), tok.eos_id());
  EXPECT_EQ(back.pad_id(), tok.pad_id());
  EXPECT_EQ(back.adds_dummy_prefix(), tok.adds_dummy_prefix());
  std::vector<std::string> texts = sample_texts();
  texts.push_back(generated_text(50'000, 4));
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tok.encode(text);
    ASSERT_EQ(back.encode(text), ids) << text.substr(0, 200);
    EXPECT_EQ(back.decode(ids), text);
  }
}

// A line over max_sentence_length is cut at spaces, not dropped: as the
// trainer splits at spaces anyway, the text as one long line gives the same
// vocabulary as the same words on short lines.
TEST(VocabTrainer, LongLinesAreCutNotSkipped) {
  const std::string text = generated_text(60'000, 5);
  std::string one_line, short_lines;
  size_t words_on_line = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t end = text.find_first_of(" \n", i);
    const std::string word = text.substr(i, end - i);
    i = end == std::string::npos ? text.size() : end + 1;
    if (word.empty()) continue;
    one_line.append(one_line.empty() ? "" : " ").append(word);
    short_lines.append(words_on_line == 0 ? "" : " ").append(word);
    if (++words_on_line == 8) {
      short_lines += "\n";
      words_on_line = 0;
    }
  }
  one_line += "\n";
  ASSERT_GT(one_line.size(), 50'000u);
  VocabTrainOptions o = small(400);
  o.max_sentence_length = 1000;
  const std::string a = train_vocabulary({test::write_file("one-line.txt", one_line)}, o);
  const std::string b = train_vocabulary({test::write_file("short-lines.txt", short_lines)}, o);
  EXPECT_TRUE(a == b);
}

TEST(VocabTrainer, SeveralFilesAreOneText) {
  const std::string text = generated_text(100'000, 6);
  const size_t half = text.find('\n', text.size() / 2) + 1;
  const std::string whole = train_vocabulary({test::write_file("whole.txt", text)}, small(400));
  const std::string parts = train_vocabulary(
      {test::write_file("part1.txt", text.substr(0, half)), test::write_file("part2.txt", text.substr(half))}, small(400));
  EXPECT_TRUE(parts == whole);
}

TEST(VocabTrainer, ClearErrors) {
  const std::string missing = test::temp_dir() + "/no-such-text.txt";
  test::expect_error([&] { train_vocabulary({corpus_file(), missing}, small(400)); }, missing);
  test::expect_error([&] { train_vocabulary({test::temp_dir()}, small(400)); }, "is a directory");
  const std::string bad = test::write_file("bad-utf8.txt", "fine line\nsecond \xC3\x28 line\n");
  test::expect_error([&] { train_vocabulary({bad}, small(400)); }, bad + ":2: invalid UTF-8 at byte 8");
  const std::string empty = test::write_file("empty.txt", "\n\n");
  test::expect_error([&] { train_vocabulary({empty}, small(400)); }, "no text in " + empty);
  test::expect_error([&] { train_vocabulary({}, small(400)); }, "no text files");
  // Too small for the 4 special, 65 user-defined and 256 byte pieces plus
  // the characters; and larger than this text can fill.
  test::expect_error([&] { train_vocabulary({corpus_file()}, small(300)); }, "Vocabulary size is smaller");
  const std::string tiny = test::write_file("tiny.txt", "a few words only\n");
  test::expect_error([&] { train_vocabulary({tiny}, small(2000)); }, "Vocabulary size too high");
  VocabTrainOptions unigram = small(400);
  unigram.model_type = "unigram";
  test::expect_error([&] { train_vocabulary({corpus_file()}, unigram); }, "only 'bpe'");
  VocabTrainOptions dup = small(400);
  dup.user_defined_symbols = {"<|a|>", "<|a|>"};
  test::expect_error([&] { train_vocabulary({corpus_file()}, dup); }, "given twice");
  dup.user_defined_symbols = {"<0x41>"};
  test::expect_error([&] { train_vocabulary({corpus_file()}, dup); }, "is a special piece");
  test::expect_error([] { Tokenizer::from_serialized("not a model"); }, "not a SentencePiece ModelProto");
}

// Symbols with commas and quotes survive SentencePiece's comma-separated
// flag and stay whole.
TEST(VocabTrainer, CustomUserDefinedSymbols) {
  VocabTrainOptions o = small(400);
  o.user_defined_symbols = {"<a,b>", "say\"hi\"", "\n"};
  const Tokenizer tok = Tokenizer::from_serialized(train_vocabulary({corpus_file()}, o));
  EXPECT_EQ(tok.piece(4), "<a,b>");
  EXPECT_EQ(tok.piece(5), "say\"hi\"");
  EXPECT_EQ(tok.piece(6), "\n");
  EXPECT_EQ(tok.piece(7), "<0x00>");
  const std::vector<int32_t> ids = tok.encode("x<a,b>say\"hi\"\n");
  EXPECT_NE(std::find(ids.begin(), ids.end(), 4), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), 5), ids.end());
  EXPECT_NE(std::find(ids.begin(), ids.end(), 6), ids.end());
}

}  // namespace
}  // namespace grok
