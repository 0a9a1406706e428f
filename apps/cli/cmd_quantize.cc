// grok quantize: rewrite a model (GGUF or Hugging Face folder) as a GGUF of
// another type. The work is in model/quantize_model; this parses and prints.
#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "apps/cli/model_output.h"
#include "io/atomic_file.h"

namespace grok::cli {
namespace {

struct QuantizeArgs {
  std::string in, out, type, tokenizer;
  int threads = 0;
};

}  // namespace

void register_quantize(CLI::App& app) {
  auto a = std::make_shared<QuantizeArgs>();
  CLI::App* cmd = app.add_subcommand("quantize", "Write a model as a GGUF of another type (q8_0, q4_0, q4_k, q6_k)");
  cmd->add_option("input", a->in, "GGUF file, Hugging Face folder or ckpt-0 folder")->required();
  cmd->add_option("output", a->out, "GGUF file to write")->required();
  cmd->add_option("--type", a->type,
                  "q8_0, q4_0, q4_k or q6_k (also f32, f16, bf16); norms and router stay f32, the embedding "
                  "follows llama.cpp (q6_k for the 4- and 6-bit types)")
      ->required();
  cmd->add_option("--tokenizer", a->tokenizer, "vocabulary to write: a tokenizer.model or a GGUF to copy it from");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: one per hardware thread)")
      ->check(thread_count());
  cmd->callback([a] {
    const DType type = parse_dtype(a->type);
    check_output_path(a->out);  // before loading the model
    write_model_gguf(load_model(a->in, load_options()), a->in, a->out, type, a->tokenizer, a->threads);
  });
}

}  // namespace grok::cli
