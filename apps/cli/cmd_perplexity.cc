// grok perplexity: a model's perplexity on a text file, as llama.cpp's
// llama-perplexity measures it (engine/perplexity.h).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"
#include "engine/perplexity.h"

namespace grok::cli {
namespace {

struct PerplexityArgs {
  ModelArgs model;
  std::string text_file;
  int64_t ctx = 0;    // 0: min(512, the model's context)
  int64_t batch = 0;  // 0: the chunk length
  bool json = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the text file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, ": cannot read the text file");
  return ss.str();
}

void run(const PerplexityArgs& a) {
  const std::string text = read_text(a.text_file);
  if (text.empty()) fail(a.text_file, ": the file is empty; perplexity needs a text of at least 2 tokens");
  auto engine = open_engine(a.model);
  const std::vector<int32_t> ids = engine->tokenize(text, /*add_bos=*/false);
  if (ids.size() < 2)
    fail(a.text_file, ": the text makes ", ids.size(), " token", ids.size() == 1 ? "" : "s",
         "; perplexity needs at least 2");

  PerplexityOptions opt;
  opt.n_ctx = a.ctx;
  opt.batch = a.batch;
  // What the library will do (and its refusals), before the first pass.
  const PerplexityPlan plan = plan_perplexity(engine->model().config, int64_t(ids.size()), opt);
  std::fprintf(stderr, "perplexity: %zu tokens: %lld chunk%s of %lld, scoring the last %lld token%s of %s",
               ids.size(), (long long)plan.chunks, plan.chunks == 1 ? "" : "s", (long long)plan.n_ctx,
               (long long)plan.scored_per_chunk, plan.scored_per_chunk == 1 ? "" : "s",
               plan.chunks == 1 ? "it" : "each");
  if (plan.left_out > 0)
    std::fprintf(stderr, " (the last %lld tokens, less than a chunk, are left out)", (long long)plan.left_out);
  std::fprintf(stderr, "\n");
  const PerplexityResult r = compute_perplexity(*engine, ids, opt, [&plan](const PerplexityChunk& c, int64_t chunks) {
    if (c.index == 0) {
      std::fprintf(stderr, "perplexity: %.2f seconds per chunk - ETA %.2f minutes\n", c.seconds,
                   c.seconds * double(chunks - plan.chunks_per_pass) / 60.0);
    }
    std::fprintf(stderr, "[%lld]%.4f,", (long long)(c.index + 1), c.running_perplexity);
    if (c.index + 1 == chunks) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  });
  std::fprintf(stderr, "Final estimate: PPL = %.4f +/- %.5f\n", r.perplexity, r.perplexity_stderr);

  if (a.json) {
    nlohmann::json per_chunk = nlohmann::json::array();
    for (const PerplexityChunk& c : r.per_chunk)
      per_chunk.push_back({{"chunk", c.index + 1},
                           {"start", c.start},
                           {"tokens", c.tokens},
                           {"scored", c.scored},
                           {"mean_nll", c.mean_nll},
                           {"perplexity", c.perplexity},
                           {"running_perplexity", c.running_perplexity}});
    const nlohmann::json j = {{"model", a.model.model.empty() ? "(built-in)" : a.model.model},
                              {"tokens", r.tokens},
                              {"chunks", r.chunks},
                              {"n_ctx", r.n_ctx},
                              {"scored_tokens", r.scored_tokens},
                              {"mean_nll", r.mean_nll},
                              {"perplexity", r.perplexity},
                              // NaN (a single scored token) is written as null.
                              {"perplexity_stderr", r.perplexity_stderr},
                              {"per_chunk", per_chunk}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("perplexity %.4f +/- %.5f, mean NLL %.6f nats over %lld tokens (%lld chunk%s of %lld)\n",
                r.perplexity, r.perplexity_stderr, r.mean_nll, (long long)r.scored_tokens, (long long)r.chunks,
                r.chunks == 1 ? "" : "s", (long long)r.n_ctx);
  }
}

}  // namespace

void register_perplexity(CLI::App& app) {
  auto a = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand(
      "perplexity", "Perplexity and mean negative log-likelihood of a text file, as llama.cpp's llama-perplexity");
  add_model_options(cmd, a->model);
  cmd->add_option("-f,--file", a->text_file, "the text to evaluate")->required();
  cmd->add_option("--ctx", a->ctx,
                  "tokens per chunk (default: 512, or the model's context if shorter); the second half of each "
                  "chunk is scored")
      ->check(whole_number(2, int64_t(1) << 30));
  cmd->add_option("--batch", a->batch,
                  "tokens per forward pass (default: the chunk length): less, and each chunk takes several passes "
                  "over its KV cache; twice the chunk length or more, and N/ctx whole chunks (rounded down) go "
                  "through one pass together")
      ->check(whole_number(1, int64_t(1) << 30));
  cmd->add_flag("--json", a->json, "print the results as one JSON object on stdout");
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
