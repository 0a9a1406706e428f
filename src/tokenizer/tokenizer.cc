#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_trainer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/sp_model_proto.h"

namespace grok {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // "▁", SentencePiece's escaped space
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Strict UTF-8, the same rules as SentencePiece's DecodeUTF8: no overlong
// forms, no surrogates, nothing above U+10FFFF. Returns the length of the
// character at the start of `s`, or 0 when there is none; then `incomplete`
// says whether `s` is a proper prefix of some valid character.
size_t utf8_char(std::string_view s, bool& incomplete) {
  incomplete = false;
  const auto byte = [&](size_t i) { return uint8_t(s[i]); };
  const uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  size_t len;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (size_t i = 1; i < len; ++i) {
    if (i == s.size()) {
      incomplete = true;
      return 0;
    }
    const uint8_t b = byte(i);
    if (i == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) return 0;
  }
  return len;
}

// What SentencePiece's Decode makes of a run of byte pieces: each valid
// character as is, U+FFFD for each byte that starts none. Stops before a
// proper prefix of a character unless the run has ended.
std::string drain_bytes(std::string& pending, bool run_ended) {
  std::string out;
  size_t i = 0;
  while (i < pending.size()) {
    bool incomplete;
    const size_t n = utf8_char(std::string_view(pending).substr(i), incomplete);
    if (n) {
      out.append(pending, i, n);
      i += n;
    } else if (incomplete && !run_ended) {
      break;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  pending.erase(0, i);
  return out;
}

std::string hex_byte(uint8_t b) {
  static const char kHex[] = "0123456789ABCDEF";
  return {'0', 'x', kHex[b >> 4], kHex[b & 15]};
}

// "<0xAB>" -> 0xAB (byte pieces are always in this form; the library checks).
uint8_t byte_of_piece(const std::string& piece) {
  return uint8_t(std::stoul(piece.substr(3, 2), nullptr, 16));
}

std::shared_ptr<sentencepiece::SentencePieceProcessor> load_serialized(const std::string& proto,
                                                                      const std::string& what) {
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->LoadFromSerializedProto(proto);
  if (!status.ok()) fail(what, ": SentencePiece rejected the vocabulary: ", status.ToString());
  return sp;
}

bool is_grok_symbol(const std::string& t) {
  return t.size() > 4 && t.compare(0, 2, "<|") == 0 && t.compare(t.size() - 2, 2, "|>") == 0;
}

// Grok-1's tokenizer.model: 131072 pieces; [PAD] [BOS] [EOS] [UNK] at 0..3,
// then the user-defined pieces at 4..68 in this order.
constexpr size_t kGrok1VocabSize = 131072;
constexpr size_t kGrok1FirstUserDefined = 4;

std::vector<std::string> grok1_user_defined_pieces() { return grok1_user_defined_symbols(); }

// When `pieces` is recognisably Grok-1's vocabulary (its size, the special
// pieces and all 65 user-defined pieces at their ids), types those 65
// USER_DEFINED as tokenizer.model does, undoing llama.cpp's converter, which
// writes them NORMAL, so "<|separator|>" stays one token. Returns whether it
// was recognised. Checking every user-defined piece costs nothing and makes
// a false match on another vocabulary implausible.
bool restore_grok1_types(std::vector<sp::Piece>& pieces) {
  if (pieces.size() != kGrok1VocabSize) return false;
  const char* const specials[] = {"[PAD]", "[BOS]", "[EOS]", "[UNK]"};
  for (size_t i = 0; i < 4; ++i)
    if (pieces[i].text != specials[i]) return false;
  const std::vector<std::string> user = grok1_user_defined_pieces();
  for (size_t i = 0; i < user.size(); ++i)
    if (pieces[kGrok1FirstUserDefined + i].text != user[i]) return false;
  for (size_t i = 0; i < user.size(); ++i) {
    sp::Piece& p = pieces[kGrok1FirstUserDefined + i];
    p.type = sp::PieceType::USER_DEFINED;
    p.score = 0;  // tokenizer.model's (unused for user-defined pieces)
  }
  return true;
}

}  // namespace

Tokenizer::Tokenizer(std::shared_ptr<sentencepiece::SentencePieceProcessor> sp) : sp_(std::move(sp)) {
  const sp::NormalizerFlags flags = sp::read_normalizer_flags(sp_->serialized_model_proto());
  dummy_prefix_ = flags.add_dummy_prefix;
  remove_extra_ws_ = flags.remove_extra_whitespaces;
  bos_ = sp_->bos_id();
  eos_ = sp_->eos_id();
  pad_ = sp_->pad_id();
}

// The bytes are read and checked here rather than handed to sp->Load(path):
// on a file that is not a model, the library's protobuf parser writes its
// own lines to stderr, and its messages do not say what the file should be.
Tokenizer Tokenizer::from_model_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, not a SentencePiece tokenizer.model");
  if (!std::filesystem::exists(path, ec)) fail(path, ": no such file or directory");
  std::ifstream in(path, std::ios::binary);
  std::string bytes;
  if (in) bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) fail(path, ": cannot read: ", std::strerror(errno));
  const auto not_a_model = [&](std::string_view why) {
    fail(path, ": not a SentencePiece tokenizer.model (", why, ")");
  };
  if (bytes.empty()) not_a_model("the file is empty");
  if (const std::string problem = sp::model_proto_problem(bytes); !problem.empty()) not_a_model(problem);
  auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
  if (const auto status = sp->LoadFromSerializedProto(bytes); !status.ok()) {
    std::string msg = status.ToString();
    std::replace(msg.begin(), msg.end(), '\n', ' ');  // one line
    not_a_model("SentencePiece: " + msg);
  }
  return Tokenizer(std::move(sp));
}

// The GGUF's arrays are rebuilt into a SentencePiece model as they are,
// types included. llama.cpp's converter types Grok's user-defined symbols
// NORMAL (score 0). For the digits and the '\n', '\t' and space runs that
// loses nothing, so we keep the file's types (checked on 10,000+ strings in
// tokenizer_test): no other piece of Grok's vocabulary contains a digit,
// '\n', '\t' or a raw space (spaces are escaped to "▁" before BPE, so the
// space runs never match either way), so those pieces merge only with each
// other, and
// BPE's leftmost-first order among equal scores rebuilds the same longest
// runs that SentencePiece's longest-prefix match of user-defined symbols
// cuts. Only the <|...|> symbols change: they contain ordinary characters and
// get split into "<|", "separator", "|>"-style pieces. For Grok-1's own
// vocabulary, recognised piece by piece, we restore tokenizer.model's types
// (restore_grok1_types); for any other we warn instead of guessing which
// NORMAL pieces were meant to be whole.
Tokenizer Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  const auto where = [&](std::string_view key) { return cat(path, ": ", key); };

  const auto model = gguf.get_string("tokenizer.ggml.model");
  if (!model) fail(where("tokenizer.ggml.model"), " is missing (no vocabulary in this GGUF)");
  if (*model != "llama")
    fail(where("tokenizer.ggml.model"), " is '", *model,
         "'; only SentencePiece vocabularies ('llama') are supported");

  const auto* tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  const auto* scores = gguf.get_number_array("tokenizer.ggml.scores");
  const auto* types = gguf.get_number_array("tokenizer.ggml.token_type");
  if (!tokens) fail(where("tokenizer.ggml.tokens"), " is missing");
  if (!scores) fail(where("tokenizer.ggml.scores"), " is missing");
  if (!types) fail(where("tokenizer.ggml.token_type"), " is missing");
  const size_t n = tokens->size();
  if (n == 0) fail(where("tokenizer.ggml.tokens"), " is empty");
  if (n > size_t(INT32_MAX)) fail(where("tokenizer.ggml.tokens"), " has ", n, " entries, too many");
  if (scores->size() != n)
    fail(where("tokenizer.ggml.scores"), " has ", scores->size(), " entries but there are ", n, " tokens");
  if (types->size() != n)
    fail(where("tokenizer.ggml.token_type"), " has ", types->size(), " entries but there are ", n, " tokens");

  sp::BpeModel m;
  m.pieces.resize(n);
  bool any_byte = false, grok_symbols_normal = false;
  for (size_t i = 0; i < n; ++i) {
    const double t = (*types)[i];
    if (!(t >= 1 && t <= 6) || t != std::floor(t))
      fail(where("tokenizer.ggml.token_type"), "[", i, "] is ", t, ", not a token type 1..6");
    const double s = (*scores)[i];
    if (!std::isfinite(s)) fail(where("tokenizer.ggml.scores"), "[", i, "] is ", s, ", not a finite number");
    sp::Piece& p = m.pieces[i];
    p.text = (*tokens)[i];
    p.score = float(s);
    p.type = sp::PieceType(int32_t(t));
    any_byte |= p.type == sp::PieceType::BYTE;
    grok_symbols_normal |= p.type == sp::PieceType::NORMAL && is_grok_symbol(p.text);
  }
  if (restore_grok1_types(m.pieces)) grok_symbols_normal = false;

  const auto id_key = [&](const char* key, int64_t fallback, bool optional) -> int32_t {
    const int64_t id = gguf.get_int(key).value_or(fallback);
    if (optional && id < 0) return -1;
    if (id < 0 || uint64_t(id) >= n) fail(where(key), " is ", id, ", outside the vocabulary of ", n, " tokens");
    return int32_t(id);
  };
  // Defaults are llama.cpp's for SentencePiece vocabularies.
  m.bos_id = id_key("tokenizer.ggml.bos_token_id", 1, false);
  m.eos_id = id_key("tokenizer.ggml.eos_token_id", 2, false);
  m.unk_id = id_key("tokenizer.ggml.unknown_token_id", 0, false);
  m.pad_id = id_key("tokenizer.ggml.padding_token_id", -1, true);
  if (m.pieces[m.unk_id].type != sp::PieceType::UNKNOWN)
    fail(where("tokenizer.ggml.unknown_token_id"), " is ", m.unk_id, " but that token's type is not unknown (2)");
  m.byte_fallback = any_byte;
  m.add_dummy_prefix = gguf.get_bool("tokenizer.ggml.add_space_prefix").value_or(true);
  m.remove_extra_whitespaces = gguf.get_bool("tokenizer.ggml.remove_extra_whitespaces").value_or(false);

  Tokenizer tok(load_serialized(sp::serialize(m), where("tokenizer.ggml.tokens")));
  // The GGUF's ids are authoritative even where the token is not typed control.
  tok.bos_ = m.bos_id;
  tok.eos_ = m.eos_id;
  tok.pad_ = m.pad_id;
  if (grok_symbols_normal)
    tok.warnings_.push_back(cat(
        path, ": the vocabulary types Grok's <|...|> symbols as normal tokens (llama.cpp's converter does), "
              "so they will be split into pieces; pass --tokenizer tokenizer.model for SentencePiece's behaviour"));
  return tok;
}

// Checked like from_model_file's bytes, so that a bad proto gets a clear
// error rather than protobuf's lines on stderr.
Tokenizer Tokenizer::from_serialized(const std::string& model_proto) {
  const char* const what = "serialized SentencePiece model";
  if (model_proto.empty()) fail(what, ": empty");
  if (const std::string problem = sp::model_proto_problem(model_proto); !problem.empty())
    fail(what, ": not a SentencePiece ModelProto (", problem, ")");
  return Tokenizer(load_serialized(model_proto, what));
}

// Laid out like Grok's vocabulary ([PAD] [BOS] [EOS] [UNK], then bytes) so
// the special ids agree; a few English merges keep ordinary text short.
Tokenizer Tokenizer::builtin() {
  sp::BpeModel m;
  const auto add = [&](std::string text, sp::PieceType type) {
    m.pieces.push_back({std::move(text), 0.0f, type});
  };
  add("[PAD]", sp::PieceType::CONTROL);
  add("[BOS]", sp::PieceType::CONTROL);
  add("[EOS]", sp::PieceType::CONTROL);
  add("[UNK]", sp::PieceType::UNKNOWN);
  for (int b = 0; b < 256; ++b) add("<" + hex_byte(uint8_t(b)) + ">", sp::PieceType::BYTE);
  // Merges first, each reachable from shorter pieces; scores fall with the
  // position, so earlier merges win, as in a trained model.
  const char* const merges[] = {
      "▁t", "he", "▁the", "in", "er", "an", "▁a", "on", "re", "▁s",
      "at", "en", "▁o", "▁w", "nd", "▁i", "is", "or", "es", "▁c",
      "it", "ing", "▁b", "ed", "▁f", "▁of", "▁p", "ou", "▁and",
      "▁to", "▁in", "ar", "▁m", "le", "▁d", "as", "▁h",
      "▁th", "al", "ic", "▁is", "▁T", "▁I", "▁The",
      "ion", "▁that", "▁it", "▁for", "ll", "ell", "ello", "▁H",
      "▁Hello", "ld", "▁wor", "▁world", "▁▁",
  };
  for (const char* p : merges) add(p, sp::PieceType::NORMAL);
  add(std::string(kSpaceSymbol), sp::PieceType::NORMAL);
  for (char c = '!'; c <= '~'; ++c) add(std::string(1, c), sp::PieceType::NORMAL);
  for (size_t i = 260; i < m.pieces.size(); ++i) m.pieces[i].score = -float(i - 260);
  m.pad_id = 0;
  m.bos_id = 1;
  m.eos_id = 2;
  m.unk_id = 3;
  return Tokenizer(load_serialized(sp::serialize(m), "built-in vocabulary"));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  for (size_t i = 0; i < text.size();) {
    bool incomplete;
    const size_t n = utf8_char(text.substr(i), incomplete);
    if (n == 0)
      fail("invalid UTF-8 at byte offset ", i, " (byte ", hex_byte(uint8_t(text[i])), ")",
           incomplete ? ": truncated sequence" : "");
    i += n;
  }
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) fail("tokenizer: cannot encode text: ", status.ToString());
  return std::vector<int32_t>(ids.begin(), ids.end());
}

void Tokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    fail("token id ", id, " is outside the vocabulary [0, ", vocab_size(), ")");
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids) check_id(id);
  std::string text;
  const auto status = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) fail("tokenizer: cannot decode ids: ", status.ToString());
  return text;
}

std::string Tokenizer::piece(int32_t id) const {
  check_id(id);
  return sp_->IdToPiece(id);
}

int32_t Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }
int32_t Tokenizer::bos_id() const { return bos_; }
int32_t Tokenizer::eos_id() const { return eos_; }
int32_t Tokenizer::pad_id() const { return pad_; }
bool Tokenizer::is_byte(int32_t id) const { return id >= 0 && id < vocab_size() && sp_->IsByte(id); }
bool Tokenizer::is_control(int32_t id) const { return id >= 0 && id < vocab_size() && sp_->IsControl(id); }

// Mirrors DecodeSentencePiece in SentencePiece's Decode: control pieces are
// invisible, the unknown piece shows as the model's unk surface, and the
// first visible piece loses one leading "▁" (the dummy prefix).
std::string Tokenizer::decode_piece(int32_t id, bool at_start, bool& consumed_ws) const {
  consumed_ws = false;
  if (sp_->IsControl(id)) return "";
  if (sp_->IsUnknown(id)) return sp_->DecodeIds({id});
  std::string_view p = sp_->IdToPiece(id);
  if (at_start && (dummy_prefix_ || remove_extra_ws_) && p.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
    p.remove_prefix(kSpaceSymbol.size());
    consumed_ws = !remove_extra_ws_;  // with it, every leading "▁" goes
  }
  std::string out;
  for (size_t i = 0; i < p.size();) {
    if (p.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) {
      out += ' ';
      i += kSpaceSymbol.size();
    } else {
      out += p[i++];
    }
  }
  return out;
}

// SentencePiece decides whether a piece is "at the start" when it reaches
// it: no text yet and no dummy-prefix space consumed. first_ tracks exactly
// that; byte pieces wait in pending_ until they form whole characters.
std::string StreamDecoder::push(int32_t id) {
  tok_.check_id(id);
  std::string out;
  if (tok_.is_byte(id)) {
    pending_ += char(byte_of_piece(tok_.sp_->IdToPiece(id)));
    out = drain_bytes(pending_, false);
    if (!out.empty()) first_ = false;
    return out;
  }
  out = drain_bytes(pending_, true);
  if (!out.empty()) first_ = false;
  bool consumed_ws;
  const std::string text = tok_.decode_piece(id, first_, consumed_ws);
  if (consumed_ws || !text.empty()) first_ = false;
  return out + text;
}

std::string StreamDecoder::finish() {
  std::string out = drain_bytes(pending_, true);
  if (!out.empty()) first_ = false;
  return out;
}

}  // namespace grok

namespace grok {

std::vector<std::pair<std::string, GgufValue>> Tokenizer::gguf_vocabulary() const {
  const int32_t n = vocab_size();
  const std::vector<sp::PieceType> types = sp::read_piece_types(sp_->serialized_model_proto());
  auto array = [](GgufType elem) {
    GgufValue v;
    v.type = GgufType::ARRAY;
    v.elem_type = elem;
    return v;
  };
  GgufValue tokens = array(GgufType::STRING), scores = array(GgufType::F32), type = array(GgufType::I32);
  for (int32_t id = 0; id < n; ++id) {
    tokens.strings.push_back(sp_->IdToPiece(id));
    scores.numbers.push_back(sp_->GetScore(id));
    type.numbers.push_back(double(size_t(id) < types.size() ? types[size_t(id)] : sp::PieceType::NORMAL));
  }
  std::vector<std::pair<std::string, GgufValue>> kv;
  auto scalar = [&](std::string key, GgufType t, uint64_t u, std::string s = "") {
    GgufValue v;
    v.type = t;
    v.u = u;
    v.s = std::move(s);
    kv.emplace_back(std::move(key), std::move(v));
  };
  scalar("tokenizer.ggml.model", GgufType::STRING, 0, "llama");
  scalar("tokenizer.ggml.pre", GgufType::STRING, 0, "default");
  kv.emplace_back("tokenizer.ggml.tokens", std::move(tokens));
  kv.emplace_back("tokenizer.ggml.scores", std::move(scores));
  kv.emplace_back("tokenizer.ggml.token_type", std::move(type));
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", bos_},
                                                 {"tokenizer.ggml.eos_token_id", eos_},
                                                 {"tokenizer.ggml.unknown_token_id", sp_->unk_id()},
                                                 {"tokenizer.ggml.padding_token_id", pad_}};
  for (const auto& [key, id] : ids)
    if (id >= 0) scalar(key, GgufType::U32, uint64_t(id));
  scalar("tokenizer.ggml.add_bos_token", GgufType::BOOL, 0);
  scalar("tokenizer.ggml.add_eos_token", GgufType::BOOL, 0);
  scalar("tokenizer.ggml.add_space_prefix", GgufType::BOOL, dummy_prefix_ ? 1 : 0);
  scalar("tokenizer.ggml.remove_extra_whitespaces", GgufType::BOOL, remove_extra_ws_ ? 1 : 0);
  return kv;
}

}  // namespace grok
