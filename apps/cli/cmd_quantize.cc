// grok quantize: rewrite a model (GGUF or Hugging Face folder) as a GGUF of
// another type. The work is in model/quantize_model; this parses and prints.
#include <cstdio>
#include <filesystem>

#include "apps/cli/commands.h"
#include "apps/cli/model_output.h"
#include "core/error.h"
#include "model/quantize_model.h"

namespace grok::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type, tokenizer;
  int threads = 0;
};

void run(const QuantizeArgs& a) {
  const DType type = parse_dtype(a.type);
  const Model m = load_model(a.in);
  // A GGUF brings its own vocabulary; a Hugging Face folder's comes from its
  // tokenizer.model. --tokenizer overrides either.
  std::vector<std::pair<std::string, GgufValue>> vocab;
  std::string vocab_from = a.tokenizer;
  if (vocab_from.empty() && !m.gguf && std::filesystem::exists(a.in + "/tokenizer.model"))
    vocab_from = a.in + "/tokenizer.model";
  if (!vocab_from.empty()) vocab = vocabulary_from_file(vocab_from);
  if (!m.gguf && vocab.empty())
    std::fprintf(stderr, "grok: note: %s has no tokenizer.model; the output has no vocabulary (use --tokenizer)\n",
                 a.in.c_str());

  ThreadPool pool(a.threads);
  ProgressBar bar;
  TensorNotes notes;
  std::fprintf(stderr, "quantizing %s (%s) to %s as %s\n", a.in.c_str(), m.format.c_str(), a.out.c_str(),
               std::string(dtype_name(type)).c_str());
  quantize_model(m, a.out, type, vocab, pool, [&](const ExportProgress& p) { bar.update(p); },
                 [&](const std::string& t, const std::string& why) { notes.add(t, why); });
  bar.finish();
  notes.print();
  std::fprintf(stderr, "wrote %s: %.1f MiB\n", a.out.c_str(),
               double(std::filesystem::file_size(a.out)) / 1048576.0);
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Write a model as a GGUF of another type (q8_0, q4_0, q4_k, q6_k)");
  cmd->add_option("input", a->in, "GGUF file or Hugging Face folder")->required();
  cmd->add_option("output", a->out, "GGUF file to write")->required();
  cmd->add_option("--type", a->type,
                  "q8_0, q4_0, q4_k or q6_k (also f32, f16, bf16); norms and router stay f32, the embedding "
                  "follows llama.cpp (q6_k for the 4- and 6-bit types)")
      ->required();
  cmd->add_option("--tokenizer", a->tokenizer, "vocabulary to write: a tokenizer.model or a GGUF to copy it from");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: one per hardware thread)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
