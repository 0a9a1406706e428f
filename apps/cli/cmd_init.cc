// grok init: write a random-weight model of a named shape as GGUF. The work
// is in model/random_model; this parses and prints.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "apps/cli/commands.h"
#include "apps/cli/model_output.h"
#include "core/error.h"
#include "model/random_model.h"

namespace grok::cli {
namespace {

struct InitArgs {
  std::string preset, out, type = "f32", vocab_from;
  int64_t layers = 0;
  uint64_t seed = 0;
  int threads = 0;
};

// Grok-1's tokenizer.model where the repository's tests look for it.
std::string find_grok_tokenizer() {
  const char* env = std::getenv("GROK_SHARED");
  for (const std::string& dir : {env && *env ? std::string(env) : std::string(), std::string("../shared")}) {
    if (dir.empty()) continue;
    const std::string p = dir + "/grok-1/tokenizer.model";
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

void run(const InitArgs& a) {
  GrokConfig c = preset_config(a.preset);
  if (a.layers > 0) c.n_layers = a.layers;
  RandomModelOptions o;
  o.type = parse_dtype(a.type);
  o.seed = a.seed;
  o.name = "grok-" + a.preset + "-random";
  std::string vocab_from = a.vocab_from;
  if (vocab_from.empty() && c.vocab_size == 131072) vocab_from = find_grok_tokenizer();
  if (!vocab_from.empty()) {
    o.vocabulary = vocabulary_from_file(vocab_from);
    const int64_t n = vocabulary_size(o.vocabulary);
    if (n > 0 && n != c.vocab_size) {
      std::fprintf(stderr, "grok: note: vocabulary size %lld from %s (the preset has %lld)\n", (long long)n,
                   vocab_from.c_str(), (long long)c.vocab_size);
      c.vocab_size = n;
    }
    std::fprintf(stderr, "vocabulary: %s\n", vocab_from.c_str());
  } else {
    std::fprintf(stderr, "vocabulary: none written (run the model on token ids or with --tokenizer FILE)\n");
  }
  std::fprintf(stderr, "writing %s: preset %s, %lld layers, %lld parameters, %s, seed %llu\n", a.out.c_str(),
               a.preset.c_str(), (long long)c.n_layers, (long long)c.parameter_count(),
               std::string(dtype_name(o.type)).c_str(), (unsigned long long)o.seed);
  ThreadPool pool(a.threads);
  ProgressBar bar;
  TensorNotes notes;
  write_random_model(a.out, c, o, pool, [&](const ExportProgress& p) { bar.update(p); },
                     [&](const std::string& t, const std::string& why) { notes.add(t, why); });
  bar.finish();
  notes.print();
  std::fprintf(stderr, "wrote %s: %.1f MiB\n", a.out.c_str(), double(std::filesystem::file_size(a.out)) / 1048576.0);
}

}  // namespace

void register_init(CLI::App& app) {
  auto a = std::make_shared<InitArgs>();
  CLI::App* cmd = app.add_subcommand("init", "Write a random-weight model of a named shape as GGUF");
  cmd->add_option("--preset", a->preset, "tiny, bench or grok-1")->required();
  cmd->add_option("output", a->out, "GGUF file to write")->required();
  cmd->add_option("--layers", a->layers, "number of layers (default: the preset's)")->check(CLI::Range(1, 1024));
  cmd->add_option("--type", a->type, "f32, f16, bf16, q8_0, q4_0, q4_k or q6_k (norms and router stay f32)")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "random seed; the same seed gives the same weights")->capture_default_str();
  cmd->add_option("--vocab-from,--tokenizer", a->vocab_from,
                  "copy the vocabulary from a GGUF, or convert a tokenizer.model (default: Grok-1's "
                  "tokenizer.model from $GROK_SHARED or ../shared when present)");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: one per hardware thread)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
