// grok convert: a ckpt-0 folder (xAI's release) or a Hugging Face folder
// to one GGUF file, streamed tensor by tensor (model/quantize_model).
#include <cstdio>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "apps/cli/model_output.h"
#include "core/error.h"
#include "io/atomic_file.h"

namespace grok::cli {
namespace {

struct ConvertArgs {
  std::string in, out, type, tokenizer;
  int threads = 0;
};

void run(const ConvertArgs& a) {
  check_output_path(a.out);  // before checking hundreds of GB of checkpoint
  const Model m = load_model(a.in, load_options());
  // int8 keeps the release's weights bit for bit; elsewhere bf16 loses nothing of an HF folder's usual dtype.
  const std::string type_name = !a.type.empty() ? a.type : m.format == "checkpoint" ? "int8" : "bf16";
  write_model_gguf(m, a.in, a.out, parse_dtype(type_name, true), a.tokenizer, a.threads);
}

}  // namespace

void register_convert(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a ckpt-0 folder or a Hugging Face folder to one GGUF file");
  cmd->add_option("input", a->in, "ckpt-0 folder (xAI's release), Hugging Face folder or GGUF file")->required();
  cmd->add_option("output", a->out, "GGUF file to write")->required();
  cmd->add_option("--type", a->type,
                  "int8 (the release's own int8 weights and bf16 scales, bit for bit; only this engine reads it), "
                  "bf16 (the reference's weights bf16(int8·scale)), q8_0 or q4_k (these three load in llama.cpp too); "
                  "default: int8 for a ckpt-0 folder, else bf16");
  cmd->add_option("--tokenizer", a->tokenizer,
                  "vocabulary to write: a tokenizer.model (default: one in or beside the input folder)");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: one per hardware thread)")
      ->check(thread_count());
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
