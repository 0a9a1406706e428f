// Tokenizer against the SentencePiece library itself: the real Grok-1
// tokenizer.model, the same vocabulary read back from llama.cpp's GGUF, the
// built-in vocabulary, strict UTF-8 input and streaming decode.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_support.h"

namespace grok {
namespace {

const char* const kModelRel = "grok-1/tokenizer.model";
const char* const kGgufRel = "oracle/tiny/grok-tiny-random-f32.gguf";
const char* const kIndexRel = "oracle/tiny/f32/index.json";

// Independent of the tokenizer's checker: decode, then re-encode and compare
// (catches overlong forms), and reject surrogates and > U+10FFFF.
bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const uint8_t b = uint8_t(s[i]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    char32_t cp = len == 1 ? b : b & (0x7F >> len);
    for (int k = 1; k < len; ++k) {
      const uint8_t c = uint8_t(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = cp << 6 | (c & 0x3F);
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF || test::utf8(cp) != s.substr(i, len)) return false;
    i += len;
  }
  return true;
}

// The string with non-printable ASCII bytes escaped, for failure messages.
std::string escape(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const uint8_t c = uint8_t(ch);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"' || c == '\\') out += {'\\', ch};
    else if (c < 0x20 || c == 0x7F) out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
    else out += ch;
  }
  return out + "\"";
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

const std::vector<std::string>& grok_symbols() {
  static const std::vector<std::string> symbols = [] {
    std::vector<std::string> v = {"<|separator|>", "<|mask|>"};
    for (int i = 1; i <= 20; ++i) v.push_back("<|control" + std::to_string(i) + "|>");
    return v;
  }();
  return symbols;
}

bool has_grok_symbol(const std::string& s) {
  for (const auto& sym : grok_symbols())
    if (s.find(sym) != std::string::npos) return true;
  return false;
}

// Random text mixing every kind of input the tokenizer treats differently.
class TextGen {
 public:
  explicit TextGen(uint32_t seed) : rng_(seed) {}
  bool symbols = false;     // may emit Grok's <|...|> symbols
  bool space_char = true;   // may emit U+2581 ("▁"), which SentencePiece decodes as a space

  std::string text() {
    std::string s;
    if (chance(0.25)) s.append(uniform(1, 3), ' ');
    const int n = uniform(0, 12);
    for (int i = 0; i < n; ++i) {
      s += fragment();
      if (chance(0.4)) s += ' ';
    }
    if (chance(0.25)) s.append(uniform(1, 3), ' ');
    return s;
  }

 private:
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  std::string chars(char32_t lo, char32_t hi, int min_n, int max_n) {
    std::string s;
    for (int i = uniform(min_n, max_n); i > 0; --i) s += test::utf8(char32_t(uniform(int(lo), int(hi))));
    return s;
  }

  std::string fragment() {
    static const char* const kWords[] = {"the", "Hello", "world", "token", "ing", "a", "I", "you're", "don't",
                                         "Grok", "xAI", "foo_bar", "camelCase", "http://example.com/a?b=1&c=2",
                                         "e.g.", "<", "|>", "<|", "<|control21|>", "[BOS]", "</s>"};
    switch (uniform(0, symbols ? 13 : 12)) {
      case 0: return kWords[uniform(0, int(std::size(kWords)) - 1)];
      case 1: {  // a random ASCII word, sometimes capitalised
        std::string w = chars('a', 'z', 1, 9);
        if (chance(0.3)) w[0] = char(w[0] - 'a' + 'A');
        return w;
      }
      case 2: {  // numbers
        std::string d = chars('0', '9', 1, 12);
        if (chance(0.3)) d += (chance(0.5) ? "." : ",") + chars('0', '9', 1, 4);
        return chance(0.2) ? "-" + d : d;
      }
      case 3: {  // whitespace runs: one kind or mixed, up to 24 long
        static const char kWs[] = {' ', '\t', '\n'};
        const int kind = uniform(0, 3);
        std::string w;
        for (int i = uniform(1, 24); i > 0; --i) w += kWs[kind < 3 ? kind : uniform(0, 2)];
        return chance(0.1) ? w + "\r\n" : w;
      }
      case 4: return chars('!', '/', 1, 3) + chars(':', '@', 0, 2) + chars('[', '`', 0, 1) + chars('{', '~', 0, 1);
      case 5: {  // control characters, C0 and C1
        std::string c = test::utf8(char32_t(uniform(0, 0x1F)));
        if (chance(0.3)) c += test::utf8(0x7F);
        if (chance(0.3)) c += test::utf8(char32_t(uniform(0x80, 0x9F)));
        return c;
      }
      case 6: {  // CJK ideographs, kana, hangul
        const int k = uniform(0, 2);
        return k == 0 ? chars(0x4E00, 0x9FFF, 1, 6) : k == 1 ? chars(0x3041, 0x30FF, 1, 6) : chars(0xAC00, 0xD7A3, 1, 4);
      }
      case 7: return chance(0.5) ? chars(0x0410, 0x044F, 2, 9) : chars(0x0621, 0x064A, 2, 9);  // Cyrillic, Arabic
      case 8: return chars('a', 'z', 1, 1) + chars(0x0300, 0x036F, 1, 3);  // combining marks
      case 9: {  // emoji: single, skin tone, flags, ZWJ sequences
        std::string e = chars(0x1F300, 0x1F64F, 1, 1);
        switch (uniform(0, 3)) {
          case 0: e += chars(0x1F3FB, 0x1F3FF, 1, 1); break;
          case 1: e = chars(0x1F1E6, 0x1F1FF, 2, 2); break;
          case 2:
            for (int i = uniform(1, 3); i > 0; --i) e += test::utf8(0x200D) + chars(0x1F466, 0x1F469, 1, 1);
            break;
          default: e += test::utf8(0xFE0F);
        }
        return e;
      }
      case 10: {  // any scalar value, assigned or not
        char32_t cp;
        do cp = char32_t(uniform(0x80, 0x10FFFF));
        while (cp >= 0xD800 && cp <= 0xDFFF);
        return test::utf8(cp);
      }
      case 11: return space_char ? test::utf8(0x2581) : "_";
      case 12: return chars(0x00C0, 0x024F, 1, 4);  // Latin with diacritics
      default: return grok_symbols()[uniform(0, int(grok_symbols().size()) - 1)];
    }
  }

  std::mt19937 rng_;
};

// 10,000 strings without Grok's <|...|> symbols, then 4,000 with them.
const std::vector<std::string>& corpus() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> v;
    TextGen gen(20240317);
    for (int i = 0; i < 10000; ++i) v.push_back(gen.text());
    gen.symbols = true;
    for (int i = 0; i < 4000; ++i) v.push_back(gen.text());
    return v;
  }();
  return texts;
}

// Loaded once: the raw library and our tokenizers (from_gguf stays null
// without the GGUF).
struct Grok {
  sentencepiece::SentencePieceProcessor sp;
  std::unique_ptr<Tokenizer> from_model, from_gguf;
};

const Grok* grok() {
  static const std::unique_ptr<Grok> g = []() -> std::unique_ptr<Grok> {
    const std::string model = test::shared_file(kModelRel), gguf = test::shared_file(kGgufRel);
    auto g = std::make_unique<Grok>();
    if (model.empty() || !g->sp.Load(model).ok()) return nullptr;
    g->from_model = std::make_unique<Tokenizer>(Tokenizer::from_model_file(model));
    if (!gguf.empty()) g->from_gguf = std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile::open(gguf)));
    return g;
  }();
  return g.get();
}

#define GROK_REQUIRE_TOKENIZER(g)              \
  GROK_REQUIRE_SHARED(model_path_, kModelRel); \
  const Grok* g = grok();                      \
  ASSERT_NE(g, nullptr) << "cannot load " << model_path_

#define GROK_REQUIRE_GGUF_TOKENIZER(g)       \
  GROK_REQUIRE_SHARED(gguf_path_, kGgufRel); \
  GROK_REQUIRE_TOKENIZER(g)

std::vector<int32_t> reference_encode(const Grok& g, const std::string& s) {
  std::vector<int> ids;
  EXPECT_TRUE(g.sp.Encode(s, &ids).ok());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

// Compares `tok` with the library on every corpus string `use` accepts;
// reports the first few mismatches in full.
void expect_matches_reference(const Grok& g, const Tokenizer& tok, bool (*use)(const std::string&),
                              const char* name) {
  int compared = 0, mismatches = 0;
  for (const std::string& s : corpus()) {
    if (!use(s)) continue;
    ++compared;
    const auto want = reference_encode(g, s);
    const auto got = tok.encode(s);
    if (got != want && ++mismatches <= 5)
      ADD_FAILURE() << name << " differs from SentencePiece on " << escape(s) << "\n  want " << ids_str(want)
                    << "\n  got  " << ids_str(got);
  }
  EXPECT_EQ(mismatches, 0) << "of " << compared << " strings";
  EXPECT_GE(compared, 10000);
}

TEST(TokenizerGrok, ModelFileMatchesSentencePiece) {
  GROK_REQUIRE_TOKENIZER(g);
  EXPECT_TRUE(g->from_model->warnings().empty());
  expect_matches_reference(*g, *g->from_model, [](const std::string&) { return true; }, "tokenizer.model");
}

// The oracle GGUF was written by llama.cpp's converter, which types Grok's
// user-defined pieces NORMAL; from_gguf recognises Grok-1's vocabulary and
// restores their types, so the whole corpus matches, <|...|> strings too.
TEST(TokenizerGrok, GgufMatchesSentencePiece) {
  GROK_REQUIRE_GGUF_TOKENIZER(g);
  expect_matches_reference(*g, *g->from_gguf, [](const std::string&) { return true; }, "GGUF");
}

TEST(TokenizerGrok, GgufKeepsGrokSymbolsWhole) {
  GROK_REQUIRE_GGUF_TOKENIZER(g);
  EXPECT_TRUE(g->from_gguf->warnings().empty());
  EXPECT_GE(std::count_if(corpus().begin(), corpus().end(), has_grok_symbol), 1000);  // covered above
  for (const std::string& sym : grok_symbols()) {
    const std::string s = "a " + sym + " b";
    const auto ids = g->from_gguf->encode(s);
    EXPECT_EQ(ids, reference_encode(*g, s)) << s;
    EXPECT_EQ(std::count_if(ids.begin(), ids.end(), [&](int32_t id) { return g->from_gguf->piece(id) == sym; }), 1)
        << s << " -> " << ids_str(ids);
  }
}

TEST(TokenizerGrok, SpecialIdsAndPieces) {
  GROK_REQUIRE_GGUF_TOKENIZER(g);
  for (const Tokenizer* tok : {g->from_model.get(), g->from_gguf.get()}) {
    EXPECT_EQ(tok->vocab_size(), 131072);
    EXPECT_EQ(tok->pad_id(), 0);
    EXPECT_EQ(tok->bos_id(), 1);
    EXPECT_EQ(tok->eos_id(), 2);
    EXPECT_TRUE(tok->adds_dummy_prefix());
    EXPECT_TRUE(tok->is_control(1));
    EXPECT_FALSE(tok->is_control(3));
    EXPECT_TRUE(tok->is_byte(69));
    EXPECT_TRUE(tok->is_byte(324));
    EXPECT_FALSE(tok->is_byte(325));
    EXPECT_EQ(tok->piece(79), "<0x0A>");
    EXPECT_EQ(tok->decode(tok->encode("Hello world")), "Hello world");
  }
}

TEST(TokenizerGrok, OraclePromptIds) {
  GROK_REQUIRE_GGUF_TOKENIZER(g);
  GROK_REQUIRE_SHARED(index_path, kIndexRel);
  std::ifstream in(index_path);
  const auto index = nlohmann::json::parse(in);
  ASSERT_FALSE(index.at("prompts").empty());
  for (const auto& p : index.at("prompts")) {
    const std::string text = p.at("text");
    const auto ids = p.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(g->from_model->encode(text), ids) << escape(text);
    EXPECT_EQ(g->from_gguf->encode(text), ids) << escape(text);
    EXPECT_EQ(g->from_model->decode(ids), text);
  }
}

TEST(Tokenizer, RejectsInvalidUtf8NamingTheOffset) {
  const Tokenizer tok = Tokenizer::builtin();
  const std::pair<std::string, size_t> bad[] = {
      {"\x80", 0},                  // lone continuation byte
      {"ab\xBF" "c", 2},            // continuation byte mid-text
      {"ab\xF0\x9F\x98", 2},        // truncated 4-byte sequence
      {"\xF0\x9F\x98x", 0},         // 4-byte sequence cut by ASCII
      {"\xC0\xAF", 0},              // overlong '/'
      {"x\xE0\x80\xAF", 1},         // overlong 3-byte
      {"\xF0\x8F\xBF\xBF", 0},      // overlong 4-byte
      {"\xED\xA0\x80", 0},          // surrogate U+D800
      {"h\xC3\xA9\xED\xBF\xBF", 3}, // surrogate U+DFFF after 'é'
      {"\xF4\x90\x80\x80", 0},      // U+110000
      {"\xF5\x80\x80\x80", 0},      // lead byte beyond U+10FFFF
      {"\xFF", 0},
  };
  for (const auto& [text, offset] : bad) {
    try {
      tok.encode(text);
      ADD_FAILURE() << "accepted " << escape(text);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("byte offset " + std::to_string(offset)), std::string::npos)
          << escape(text) << ": " << e.what();
    }
  }
  // Edge cases that are valid.
  for (const std::string& ok : {std::string("\xEF\xBF\xBD"), std::string("\xF4\x8F\xBF\xBF"),
                               std::string("\xED\x9F\xBF"), std::string("a\0b", 3), std::string()})
    EXPECT_NO_THROW(tok.encode(ok)) << escape(ok);
}

// Random id sequences built to stress byte fallback: whole characters split
// over byte tokens, truncated ones, stray bytes, control and unknown ids.
void check_stream_decoder(const Tokenizer& tok, uint32_t seed, int sequences) {
  std::vector<int32_t> byte_id(256, -1);
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (tok.is_byte(id)) byte_id[std::stoi(tok.piece(id).substr(3, 2), nullptr, 16)] = id;
  for (int32_t id : byte_id) ASSERT_GE(id, 0);

  std::mt19937 rng(seed);
  const auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  TextGen gen(seed + 1);
  for (int n = 0; n < sequences; ++n) {
    std::vector<int32_t> ids;
    if (uniform(0, 3) == 0) ids.push_back(tok.bos_id());
    for (int parts = uniform(0, 12); parts > 0; --parts) {
      switch (uniform(0, 5)) {
        case 0: ids.push_back(uniform(0, tok.vocab_size() - 1)); break;
        case 1: ids.push_back(uniform(0, 3)); break;  // control and unknown
        case 2:
        case 3: {  // a character as bytes, sometimes cut short
          const std::string c = test::utf8(char32_t(uniform(0, 3) == 0 ? uniform(0x80, 0x7FF) : uniform(0x10000, 0x1FAFF)));
          const size_t keep = uniform(0, 2) == 0 ? uniform(1, int(c.size())) : c.size();
          for (size_t i = 0; i < keep; ++i) ids.push_back(byte_id[uint8_t(c[i])]);
          break;
        }
        case 4: ids.push_back(byte_id[uniform(0x80, 0xFF)]); break;  // stray byte
        default:
          for (int32_t id : tok.encode(gen.text())) ids.push_back(id);
      }
    }
    StreamDecoder dec(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string out = dec.push(id);
      ASSERT_TRUE(valid_utf8(out)) << "push(" << id << ") gave " << escape(out) << " in " << ids_str(ids);
      streamed += out;
    }
    const std::string tail = dec.finish();
    ASSERT_TRUE(valid_utf8(tail)) << escape(tail);
    streamed += tail;
    ASSERT_EQ(streamed, tok.decode(ids)) << ids_str(ids);
  }
}

TEST(StreamDecoder, BuiltinMatchesDecode) { check_stream_decoder(Tokenizer::builtin(), 7, 3000); }

TEST(StreamDecoder, GrokMatchesDecode) {
  GROK_REQUIRE_TOKENIZER(g);
  check_stream_decoder(*g->from_model, 11, 2000);
}

TEST(StreamDecoder, HoldsASplitCharacterUntilComplete) {
  const Tokenizer tok = Tokenizer::builtin();
  const auto ids = tok.encode("\xF0\x9F\x98\x80");  // U+1F600 falls back to 4 byte tokens after "▁"
  ASSERT_EQ(ids.size(), 5u);
  StreamDecoder dec(tok);
  EXPECT_EQ(dec.push(ids[0]), "");  // the dummy-prefix space is dropped
  EXPECT_EQ(dec.push(ids[1]), "");
  EXPECT_EQ(dec.push(ids[2]), "");
  EXPECT_EQ(dec.push(ids[3]), "");
  EXPECT_EQ(dec.push(ids[4]), "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.push(ids[1]), "");
  EXPECT_EQ(dec.finish(), "\xEF\xBF\xBD");  // an incomplete tail flushes as U+FFFD
  EXPECT_THROW(dec.push(tok.vocab_size()), Error);
  EXPECT_THROW(dec.push(-1), Error);
}

TEST(Tokenizer, DecodeRejectsIdsOutOfRange) {
  const Tokenizer tok = Tokenizer::builtin();
  for (int32_t id : {-1, tok.vocab_size(), 1 << 30}) {
    try {
      tok.decode({5, id});
      ADD_FAILURE() << "accepted id " << id;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(id)), std::string::npos) << e.what();
    }
    EXPECT_THROW(tok.piece(id), Error);
  }
}

TEST(Tokenizer, BuiltinRoundTripsAnyText) {
  const Tokenizer tok = Tokenizer::builtin();
  EXPECT_LE(tok.vocab_size(), 512);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_TRUE(tok.warnings().empty());
  EXPECT_LE(tok.encode("Hello world").size(), 3u);
  TextGen gen(99);
  gen.symbols = true;
  gen.space_char = false;  // a literal "▁" decodes as a space in any SentencePiece model
  for (int i = 0; i < 4000; ++i) {
    const std::string s = gen.text();
    const auto ids = tok.encode(s);
    for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
    ASSERT_EQ(tok.decode(ids), s) << escape(s) << " -> " << ids_str(ids);
  }
}

// A small GGUF vocabulary: the built-in pieces as llama.cpp's converter
// would type them, plus a Grok symbol typed NORMAL.
struct VocabArrays {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;
};

VocabArrays builtin_arrays(bool with_grok_symbol) {
  const Tokenizer tok = Tokenizer::builtin();
  VocabArrays v;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    v.tokens.push_back(tok.piece(id));
    v.scores.push_back(-float(id));
    v.types.push_back(tok.is_byte(id) ? 6 : tok.is_control(id) ? 3 : id == 3 ? 2 : 1);
  }
  if (with_grok_symbol) {
    v.tokens.push_back("<|separator|>");
    v.scores.push_back(0);
    v.types.push_back(1);
  }
  return v;
}

std::string write_vocab(const std::string& name, const VocabArrays& v,
                        const std::function<void(GgufWriter&)>& edit = {}) {
  GgufWriter w;
  w.set_string("general.architecture", "grok");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", v.tokens);
  w.set_f32_array("tokenizer.ggml.scores", v.scores);
  w.set_i32_array("tokenizer.ggml.token_type", v.types);
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 3);
  w.set_u32("tokenizer.ggml.padding_token_id", 0);
  if (edit) edit(w);
  const std::string path = test::temp_dir() + "/" + name + ".gguf";
  w.write(path);
  return path;
}

TEST(TokenizerGguf, SmallVocabulary) {
  const std::string path = write_vocab("tok-small", builtin_arrays(true));
  const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path));
  ASSERT_EQ(tok.warnings().size(), 1u);
  EXPECT_EQ(tok.warnings()[0].rfind(path + ": ", 0), 0u) << tok.warnings()[0];
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  const std::string s = " héllo <|separator|>\n\t😀 ";
  EXPECT_EQ(tok.decode(tok.encode(s)), s);
  EXPECT_EQ(tok.piece(tok.encode("the")[0]), "\xE2\x96\x81the");

  const Tokenizer plain = Tokenizer::from_gguf(GgufFile::open(write_vocab("tok-plain", builtin_arrays(false))));
  EXPECT_TRUE(plain.warnings().empty());

  const std::string no_prefix = write_vocab("tok-noprefix", builtin_arrays(false), [](GgufWriter& w) {
    w.set_bool("tokenizer.ggml.add_space_prefix", false);
  });
  const Tokenizer np = Tokenizer::from_gguf(GgufFile::open(no_prefix));
  EXPECT_FALSE(np.adds_dummy_prefix());
  EXPECT_EQ(np.piece(np.encode("the")[0]), "t");
}

void expect_gguf_error(const std::string& name, const VocabArrays& v, const std::function<void(GgufWriter&)>& edit,
                       const std::string& key) {
  const std::string path = write_vocab(name, v, edit);
  try {
    Tokenizer::from_gguf(GgufFile::open(path));
    ADD_FAILURE() << name << ": accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": " + key, 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TokenizerGguf, ValidationErrorsNameTheKey) {
  const VocabArrays v = builtin_arrays(false);
  expect_gguf_error("bad-model", v, [](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "gpt2"); },
                    "tokenizer.ggml.model");
  VocabArrays short_scores = v;
  short_scores.scores.pop_back();
  expect_gguf_error("bad-scores", short_scores, {}, "tokenizer.ggml.scores");
  VocabArrays bad_type = v;
  bad_type.types[300] = 9;
  expect_gguf_error("bad-type", bad_type, {}, "tokenizer.ggml.token_type");
  VocabArrays short_types = v;
  short_types.types.resize(10);
  expect_gguf_error("short-types", short_types, {}, "tokenizer.ggml.token_type");
  expect_gguf_error("bad-bos", v, [](GgufWriter& w) { w.set_u32("tokenizer.ggml.bos_token_id", 100000); },
                    "tokenizer.ggml.bos_token_id");
  expect_gguf_error("bad-eos", v, [](GgufWriter& w) { w.set_i32("tokenizer.ggml.eos_token_id", -2); },
                    "tokenizer.ggml.eos_token_id");
  expect_gguf_error("bad-unk", v, [](GgufWriter& w) { w.set_u32("tokenizer.ggml.unknown_token_id", 7); },
                    "tokenizer.ggml.unknown_token_id");
  VocabArrays dup = v;
  dup.tokens[400] = dup.tokens[401];
  expect_gguf_error("dup-token", dup, {}, "tokenizer.ggml.tokens");
}

TEST(Tokenizer, ModelFileErrorNamesThePath) {
  const std::string path = test::temp_dir() + "/no-such-tokenizer.model";
  try {
    Tokenizer::from_model_file(path);
    ADD_FAILURE() << "loaded a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace grok
