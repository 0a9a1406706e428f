// Text <-> token ids through the SentencePiece library, whichever way the
// vocabulary arrives: a tokenizer.model file, a GGUF's tokenizer.ggml.* arrays
// (rebuilt into a SentencePiece model in memory), or the built-in tiny
// vocabulary of the default smoke-test model.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace grok {

class GgufFile;
struct GgufValue;

class Tokenizer {
 public:
  static Tokenizer from_model_file(const std::string& path);
  static Tokenizer from_gguf(const GgufFile& gguf);
  // A serialized SentencePiece ModelProto in memory: train_vocabulary()'s
  // result, or a tokenizer.model's bytes.
  static Tokenizer from_serialized(const std::string& model_proto);
  static Tokenizer builtin();  // no file needed; byte fallback covers any UTF-8

  // Throws grok::Error on invalid UTF-8 (naming the byte offset).
  std::vector<int32_t> encode(std::string_view text) const;
  // Throws grok::Error naming an id outside [0, vocab_size).
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;  // the piece as stored ("▁the", "<0x0A>")

  int32_t vocab_size() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  bool is_byte(int32_t id) const;
  bool is_control(int32_t id) const;
  bool adds_dummy_prefix() const { return dummy_prefix_; }
  // Things a user should know, e.g. that a GGUF typed <|...|> symbols NORMAL
  // so they will be split (use --tokenizer tokenizer.model). Grok-1's own
  // vocabulary is recognised and its types restored instead (from_gguf).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // The vocabulary as llama.cpp's tokenizer.ggml.* metadata (model "llama":
  // tokens, scores, token types, special ids, normalizer flags), so a GGUF
  // written with it tokenises like this tokenizer. Unlike llama.cpp's
  // converter, user-defined pieces keep their type (4).
  std::vector<std::pair<std::string, GgufValue>> gguf_vocabulary() const;

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::shared_ptr<sentencepiece::SentencePieceProcessor> sp);
  void check_id(int32_t id) const;
  // One non-byte piece as SentencePiece's Decode writes it; `at_start`: no
  // text and no leading "▁" emitted yet. Sets `consumed_ws` when the piece's
  // leading "▁" was dropped as the dummy prefix.
  std::string decode_piece(int32_t id, bool at_start, bool& consumed_ws) const;
  std::shared_ptr<sentencepiece::SentencePieceProcessor> sp_;
  bool dummy_prefix_ = true;
  bool remove_extra_ws_ = false;
  int32_t bos_ = -1, eos_ = -1, pad_ = -1;
  std::vector<std::string> warnings_;
};

// Turns ids into text one at a time, emitting only complete UTF-8: a
// character split over several byte-fallback tokens comes out once whole.
// Concatenating every push() and finish() equals Tokenizer::decode(all ids).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);
  std::string finish();  // flushes an incomplete tail as U+FFFD

 private:
  const Tokenizer& tok_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace grok
