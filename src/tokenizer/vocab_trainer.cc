#include "tokenizer/vocab_trainer.h"

#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"

namespace grok {
namespace {

// Strict UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF): the offset of the first invalid byte, or npos. Checked here
// because SentencePiece's trainer would quietly turn bad bytes into U+FFFD.
size_t invalid_utf8_at(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const uint8_t b = uint8_t(s[i]);
    size_t len = 1;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (size_t k = 1; k < len; ++k) {
      const uint8_t c = uint8_t(s[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// The files' lines, one after another, as SentencePiece's trainer reads
// text files, with two differences: a file that cannot be read or holds
// invalid UTF-8 stops the training with an error naming it, and lines longer
// than `max_len` bytes come in pieces (SentencePiece skips them with only a
// log line). The cut is at the last space that fits, so, as the trainer
// splits at spaces anyway and prefixes every line with "▁", no word changes;
// failing a space, at a character boundary.
class FileLines : public sentencepiece::SentenceIterator {
 public:
  FileLines(const std::vector<std::string>& files, size_t max_len) : files_(files), max_len_(max_len) { Next(); }

  bool done() const override { return done_; }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override {
    if (error_.empty()) return {};
    return {sentencepiece::util::StatusCode::kInvalidArgument, error_};
  }
  void Next() override {
    while (!done_ && !next_piece() && !next_line()) {
    }
  }

  const std::string& error() const { return error_; }
  uint64_t text_lines() const { return text_lines_; }

 private:
  // The next piece of the current line, if any is left.
  bool next_piece() {
    if (rest_.empty()) return false;
    size_t n = rest_.size();
    if (n > max_len_) {
      const size_t space = rest_.rfind(' ', max_len_);  // a piece of max_len_ bytes may end just before it
      if (space != std::string::npos && space > 0) {
        n = space;
      } else {
        n = max_len_;
        while (n > 0 && (uint8_t(rest_[n]) & 0xC0) == 0x80) --n;  // not inside a character
      }
    }
    value_ = rest_.substr(0, n);
    rest_.erase(0, n < rest_.size() && rest_[n] == ' ' ? n + 1 : n);
    return true;
  }

  // Reads the next line into rest_; false when it is empty (skipped, as
  // SentencePiece does) or when the input ended or failed (then done_).
  bool next_line() {
    while (!in_ || !in_->is_open()) {
      if (file_ == files_.size()) {
        done_ = true;
        return false;
      }
      path_ = files_[file_++];
      line_no_ = 0;
      std::error_code ec;
      if (std::filesystem::is_directory(path_, ec)) return stop(cat(path_, ": is a directory, not a text file"));
      in_.emplace(path_, std::ios::binary);
      if (!in_->is_open()) return stop(cat(path_, ": cannot read: ", std::strerror(errno)));
    }
    if (!std::getline(*in_, rest_)) {
      if (in_->bad()) return stop(cat(path_, ": read failed after line ", line_no_, ": ", std::strerror(errno)));
      in_.reset();
      return false;
    }
    ++line_no_;
    if (const size_t at = invalid_utf8_at(rest_); at != std::string::npos)
      return stop(cat(path_, ":", line_no_, ": invalid UTF-8 at byte ", at + 1, " of the line"));
    if (rest_.empty()) return false;
    ++text_lines_;
    return next_piece();
  }

  bool stop(std::string error) {
    error_ = std::move(error);
    done_ = true;
    return false;
  }

  const std::vector<std::string>& files_;
  const size_t max_len_;
  size_t file_ = 0;
  std::string path_;
  uint64_t line_no_ = 0;
  std::optional<std::ifstream> in_;
  std::string rest_, value_, error_;
  uint64_t text_lines_ = 0;
  bool done_ = false;
};

// One value of SentencePiece's comma-separated list flags, quoted as its
// CSV reader wants, so symbols may hold commas and quotes.
std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

}  // namespace

std::vector<std::string> grok1_user_defined_symbols() {
  std::vector<std::string> v;
  for (int n = 1; n <= 10; ++n) v.push_back(std::string(size_t(n), '\n'));
  for (char d = '0'; d <= '9'; ++d) v.push_back(std::string(1, d));
  for (int n = 1; n <= 8; ++n) v.push_back(std::string(size_t(n), '\t'));
  for (int n = 2; n <= 16; ++n) v.push_back(std::string(size_t(n), ' '));
  v.push_back("<|separator|>");
  v.push_back("<|mask|>");
  for (int n = 1; n <= 20; ++n) v.push_back("<|control" + std::to_string(n) + "|>");
  return v;
}

std::string train_vocabulary(const std::vector<std::string>& text_files, const VocabTrainOptions& o) {
  const char* const what = "vocabulary training";
  if (text_files.empty()) fail(what, ": no text files given");
  if (o.model_type != "bpe")
    fail(what, ": model type '", o.model_type,
         "' is not supported; only 'bpe' (a GGUF's vocabulary is read back as BPE)");
  if (o.vocab_size <= 0) fail(what, ": vocab_size must be positive, not ", o.vocab_size);
  if (!(o.character_coverage > 0 && o.character_coverage <= 1))
    fail(what, ": character_coverage must be in (0, 1], not ", o.character_coverage);
  if (o.max_sentence_length < 16) fail(what, ": max_sentence_length must be at least 16, not ", o.max_sentence_length);
  // Checked here: SentencePiece reports these only in a log line.
  std::unordered_set<std::string> seen = {"[PAD]", "[BOS]", "[EOS]", "[UNK]"};
  for (int b = 0; b < 256; ++b) {
    static const char kHex[] = "0123456789ABCDEF";
    seen.insert(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");  // the byte pieces
  }
  for (const std::string& s : o.user_defined_symbols) {
    if (s.empty() || s.find('\0') != std::string::npos)
      fail(what, ": user-defined symbols must be non-empty and hold no NUL byte");
    if (invalid_utf8_at(s) != std::string::npos) fail(what, ": user-defined symbol ", quote_name(s), " is not UTF-8");
    if (!seen.insert(s).second)
      fail(what, ": user-defined symbol ", quote_name(s), " is given twice or is a special piece");
  }

  // Grok-1's tokenizer.model's trainer_spec and normalizer_spec, except for
  // the sizes, the thread count and the unknown piece's surface (kept at
  // SentencePiece's " ⁇ ", which is what a GGUF's vocabulary decodes it to).
  // One thread: BPE's merges run on one anyway (more only normalise the lines
  // faster), and the count is recorded in the proto, so it would change the bytes.
  std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"character_coverage", cat(o.character_coverage)},
      {"max_sentence_length", std::to_string(o.max_sentence_length)},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", "1"},
      {"max_sentencepiece_length", "16"},
      {"split_by_unicode_script", "true"},
      {"split_by_whitespace", "true"},
      {"split_by_number", "true"},
      {"split_digits", "true"},
      {"treat_whitespace_as_suffix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"byte_fallback", "true"},
      {"vocabulary_output_piece_score", "true"},
      {"hard_vocab_limit", "true"},
      {"use_all_vocab", "false"},
      {"pad_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"unk_id", "3"},
      {"pad_piece", "[PAD]"},
      {"bos_piece", "[BOS]"},
      {"eos_piece", "[EOS]"},
      {"unk_piece", "[UNK]"},
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "true"},
      {"remove_extra_whitespaces", "false"},
      {"escape_whitespaces", "true"},
      {"minloglevel", "2"},  // errors only: no progress lines on stderr
  };
  if (!o.user_defined_symbols.empty()) {
    std::string list;
    for (const std::string& s : o.user_defined_symbols) {
      if (!list.empty()) list += ',';
      list += csv_field(s);
    }
    args["user_defined_symbols"] = list;
  }

  FileLines lines(text_files, size_t(o.max_sentence_length));
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
  if (!lines.error().empty()) fail(lines.error());
  const auto files = [&] {
    std::string s = text_files[0];
    if (text_files.size() > 1) s += cat(" and ", text_files.size() - 1, " more");
    return s;
  };
  if (lines.text_lines() == 0) fail(what, ": no text in ", files());
  if (!status.ok()) {
    std::string msg = status.ToString();
    std::replace(msg.begin(), msg.end(), '\n', ' ');  // one line
    fail(what, " on ", files(), " failed: SentencePiece: ", msg);
  }
  return model;
}

}  // namespace grok
