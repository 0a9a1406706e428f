// What the commands that write models (quantize, init) share: progress on
// stderr (a bar redrawn in place on a terminal, an occasional line in a
// log), per-tensor notes grouped by reason, dtype names, vocabularies.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"

#include "model/gguf_export.h"
#include "model/model.h"

namespace grok::cli {

class ProgressBar {
 public:
  ProgressBar();
  void update(const ExportProgress& p);
  void finish();  // ends the bar's line

 private:
  bool tty_;
  bool drawn_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_;
};

class TensorNotes {
 public:
  void add(const std::string& tensor, const std::string& message) { by_message_[message].push_back(tensor); }
  void print() const;  // "grok: note: 14 tensors: <message> (a, b, c, ...)"

 private:
  std::map<std::string, std::vector<std::string>> by_message_;
};

// Writes m (loaded from `in`) as a GGUF of `type` at `out`, with a
// progress bar, the notes on fallbacks, and the size and peak memory at the
// end. The vocabulary: --tokenizer's, else a GGUF's own, else a
// tokenizer.model in or beside a folder.
void write_model_gguf(const Model& m, const std::string& in, const std::string& out, DType type,
                      const std::string& tokenizer, int threads);

// A dtype named on the command line: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k
// (any case), and int8 (the released checkpoint's) with allow_int8.
// Throws grok::Error listing them.
DType parse_dtype(const std::string& name, bool allow_int8 = false);

// tokenizer.ggml.* keys from a GGUF file (copied) or a SentencePiece
// tokenizer.model (converted).
std::vector<std::pair<std::string, GgufValue>> vocabulary_from_file(const std::string& path);

}  // namespace grok::cli
