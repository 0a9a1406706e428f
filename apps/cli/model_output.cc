#include "apps/cli/model_output.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/engine.h"
#include "model/quantize_model.h"
#include "tokenizer/tokenizer.h"

namespace grok::cli {

ProgressBar::ProgressBar() : tty_(::isatty(2) == 1) {}

void ProgressBar::update(const ExportProgress& p) {
  const auto now = std::chrono::steady_clock::now();
  const bool last = p.bytes_done >= p.bytes_total;
  if (last && finished_) return;  // the last chunk and the end both report 100%
  finished_ = last;
  // A terminal gets ten redraws a second; a log a line every few seconds.
  if (!last && drawn_ && now - last_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::seconds(5))) return;
  last_ = now;
  const double frac = p.bytes_total ? double(p.bytes_done) / double(p.bytes_total) : 1.0;
  constexpr int kWidth = 30;
  const int filled = int(frac * kWidth);
  std::string bar = std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), '.');
  const size_t shown = last ? p.count : p.index + 1;
  // Time left at the rate so far (once there is a rate to go by).
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  char eta[32] = "";
  if (!last && frac > 0.01 && elapsed > 1.0) {
    const long left = long(elapsed * (1.0 - frac) / frac);
    std::snprintf(eta, sizeof eta, "  ETA %ld:%02ld", left / 60, left % 60);
  }
  char line[512];
  std::snprintf(line, sizeof line, "[%s] %3d%%  tensor %zu/%zu  %.1f/%.1f MiB%s  %s", bar.c_str(), int(frac * 100),
                shown, p.count, double(p.bytes_done) / 1048576.0, double(p.bytes_total) / 1048576.0, eta,
                last || !p.name ? "" : p.name->c_str());
  if (tty_)
    std::fprintf(stderr, "\r%-110s", line);
  else
    std::fprintf(stderr, "%s\n", line);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = finished_ = false;
}

void TensorNotes::print() const {
  for (const auto& [message, tensors] : by_message_) {
    std::string names;
    for (size_t i = 0; i < tensors.size() && i < 3; ++i) names += (i ? ", " : "") + tensors[i];
    if (tensors.size() > 3) names += ", ...";
    std::fprintf(stderr, "grok: note: %zu tensor%s: %s (%s)\n", tensors.size(), tensors.size() == 1 ? "" : "s",
                 message.c_str(), names.c_str());
  }
}

DType parse_dtype(const std::string& name, bool allow_int8) {
  std::string n;
  for (char ch : name) n += char(std::tolower(static_cast<unsigned char>(ch)));
  if (allow_int8 && n == "int8") return DType::I8;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    std::string tn;
    for (char ch : dtype_name(t)) tn += char(std::tolower(static_cast<unsigned char>(ch)));
    if (n == tn) return t;
  }
  fail("unknown type '", name, "' (types: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k", allow_int8 ? ", int8)" : ")");
}

void write_model_gguf(const Model& m, const std::string& in, const std::string& out, DType type,
                      const std::string& tokenizer, int threads) {
  std::vector<std::pair<std::string, GgufValue>> vocab;
  std::string vocab_from = tokenizer;
  if (vocab_from.empty() && !m.gguf) vocab_from = tokenizer_file_beside(m);
  if (!vocab_from.empty()) vocab = vocabulary_from_file(vocab_from);
  if (!m.gguf && vocab.empty())
    std::fprintf(stderr, "grok: note: no tokenizer.model found for %s; the output has no vocabulary (use --tokenizer)\n",
                 in.c_str());

  ThreadPool pool(threads);
  ProgressBar bar;
  TensorNotes notes;
  std::fprintf(stderr, "writing %s (%s) to %s as %s%s\n", in.c_str(), m.format.c_str(), out.c_str(),
               type == DType::I8 ? "int8" : std::string(dtype_name(type)).c_str(),
               vocab_from.empty() ? "" : (", vocabulary from " + vocab_from).c_str());
  const auto start = std::chrono::steady_clock::now();
  quantize_model(m, out, type, vocab, pool, [&](const ExportProgress& p) { bar.update(p); },
                 [&](const std::string& t, const std::string& why) { notes.add(t, why); });
  bar.finish();
  notes.print();
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr, "wrote %s: %.1f MiB in %.1f s; peak resident memory %.1f MiB\n", out.c_str(),
               double(std::filesystem::file_size(out)) / 1048576.0,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
               double(ru.ru_maxrss) / 1024.0);
}

std::vector<std::pair<std::string, GgufValue>> vocabulary_from_file(const std::string& path) {
  char magic[4] = {};
  std::ifstream(path, std::ios::binary).read(magic, 4);
  if (std::string(magic, 4) != "GGUF") return Tokenizer::from_model_file(path).gguf_vocabulary();
  const GgufFile g = GgufFile::open(path);
  std::vector<std::pair<std::string, GgufValue>> kv;
  for (const auto& [k, v] : g.metadata())
    if (k.rfind("tokenizer.ggml.", 0) == 0) kv.emplace_back(k, v);
  if (kv.empty()) fail(path, ": has no tokenizer.ggml.* keys (no vocabulary to copy)");
  return kv;
}

}  // namespace grok::cli
