// grok init: write a random-weight model of a named shape as GGUF. The work
// is in model/random_model; this parses and prints.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "apps/cli/model_output.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "model/random_model.h"

namespace grok::cli {
namespace {

struct InitArgs {
  std::string preset, out, type = "f32", vocab_from;
  int64_t layers = 0;
  uint64_t seed = 0;
  int threads = 0;
};

// Where Grok-1's tokenizer.model may be: $GROK_SHARED, ../shared from the
// current directory, and shared/ beside the repository as seen from the
// executable (<repo>/build/grok: <exe dir>/../../shared; an install's
// <prefix>/bin/grok: <exe dir>/../shared), so init works from any directory.
std::vector<std::string> grok_tokenizer_candidates() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("GROK_SHARED"); env && *env) dirs.emplace_back(env);
  dirs.emplace_back("../shared");
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.has_parent_path()) {
    dirs.push_back((exe.parent_path() / "../../shared").lexically_normal().string());
    dirs.push_back((exe.parent_path() / "../shared").lexically_normal().string());
  }
  std::vector<std::string> files;
  for (const std::string& d : dirs) files.push_back(d + "/grok-1/tokenizer.model");
  return files;
}

void run(const InitArgs& a) {
  check_output_path(a.out);  // before reading a vocabulary or drawing weights
  GrokConfig c = preset_config(a.preset);
  if (a.layers > 0) c.n_layers = a.layers;
  RandomModelOptions o;
  o.type = parse_dtype(a.type);
  o.seed = a.seed;
  o.name = "grok-" + a.preset + "-random";
  std::string vocab_from = a.vocab_from;
  std::string looked_in;  // where Grok-1's vocabulary was looked for, when it was not found
  if (vocab_from.empty() && c.vocab_size == 131072) {
    for (const std::string& p : grok_tokenizer_candidates()) {
      std::error_code ec;
      if (std::filesystem::is_regular_file(p, ec)) {
        vocab_from = p;
        break;
      }
      looked_in += (looked_in.empty() ? "" : ", ") + p;
    }
  }
  if (!vocab_from.empty()) {
    o.vocabulary = vocabulary_from_file(vocab_from);
    const int64_t n = vocabulary_size(o.vocabulary);
    if (n > 0 && n != c.vocab_size) {
      std::fprintf(stderr, "grok: note: vocabulary size %lld from %s (the preset has %lld)\n", (long long)n,
                   vocab_from.c_str(), (long long)c.vocab_size);
      c.vocab_size = n;
    }
    std::fprintf(stderr, "vocabulary: %s\n", vocab_from.c_str());
  } else if (!looked_in.empty()) {
    // Easy to miss in a log, and the model then cannot take text: a warning, not a note.
    std::fprintf(stderr,
                 "grok: warning: no Grok-1 tokenizer.model found (looked for %s); the model is written without a "
                 "vocabulary: give one with --tokenizer FILE or set GROK_SHARED\n",
                 looked_in.c_str());
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
  cmd->add_option("--layers", a->layers, "number of layers (default: the preset's)")->check(whole_number(1, 1024));
  cmd->add_option("--type", a->type, "f32, f16, bf16, q8_0, q4_0, q4_k or q6_k (norms and router stay f32)")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "random seed; the same seed gives the same weights")
      ->capture_default_str()->check(unsigned_number());
  cmd->add_option("--vocab-from,--tokenizer", a->vocab_from,
                  "copy the vocabulary from a GGUF, or convert a tokenizer.model (default: Grok-1's "
                  "tokenizer.model from $GROK_SHARED, ../shared, or the shared/ folder beside the repository "
                  "the executable was built in, when present)");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: one per hardware thread)")
      ->check(thread_count());
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
