// grok kl: KL divergence and top-1 agreement of a quantised model against its source.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"
#include "engine/kl.h"

namespace grok::cli {
namespace {

struct KlArgs {
  ModelArgs model;  // the quantised model
  std::string base;
  std::string text_file;
  int64_t window = 512;
};

void run(const KlArgs& a) {
  if (a.model.model.empty()) fail("give the quantised model with -m");
  std::ifstream in(a.text_file, std::ios::binary);
  if (!in) fail(a.text_file, ": cannot open the text file");
  std::ostringstream ss;
  ss << in.rdbuf();
  const Model base = load_model(a.base, load_options());
  // The quantised model as generation runs it (repacked kernels, activation bits).
  const ReadyModel test = open_model_for(a.model, /*need_tokenizer=*/false);
  const Tokenizer tok = tokenizer_for(base, a.model.tokenizer);
  const std::vector<int32_t> ids = tok.encode(ss.str());
  ThreadPool pool(a.model.threads);
  const KlResult r = compare_models(base, test.model, ids, a.window, pool);
  std::printf("positions: %lld (windows of %lld tokens)\n", (long long)r.positions, (long long)a.window);
  std::printf("KL(base || quantised), nats: mean %.6f  median %.6f  p99 %.6f  max %.6f\n", r.kl_mean, r.kl_median,
              r.kl_p99, r.kl_max);
  std::printf("top-1 agreement: %.2f%%\n", 100 * r.top1_agreement);
}

}  // namespace

void register_kl(CLI::App& app) {
  auto a = std::make_shared<KlArgs>();
  CLI::App* cmd = app.add_subcommand("kl", "KL divergence and top-1 agreement of a quantised model against its source");
  add_model_options(cmd, a->model);
  cmd->add_option("--base", a->base, "the full-precision model the quantised one was made from")->required();
  cmd->add_option("-f,--file", a->text_file, "text to evaluate on")->required();
  cmd->add_option("--window", a->window, "tokens per evaluation window")->capture_default_str()->check(whole_number(1, 1 << 20));
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
