// grok logits: write the model's logits for a prompt as a .npy file.
#include <cstdio>

#include "apps/cli/commands.h"
#include "core/error.h"
#include "io/npy.h"

namespace grok::cli {
namespace {

struct LogitsArgs {
  ModelArgs model;
  std::string prompt;
  std::string tokens;
  std::string out;
  bool all_positions = false;
  bool bos = false;
};

void run(const LogitsArgs& a) {
  if (a.prompt.empty() == a.tokens.empty()) fail("give exactly one of -p TEXT or --tokens 1,2,3");
  auto engine = open_engine(a.model, /*need_tokenizer=*/a.tokens.empty());
  if (follow_leader(*engine)) return;
  const std::vector<int32_t> ids = a.tokens.empty() ? engine->tokenize(a.prompt, a.bos) : parse_id_list(a.tokens);
  if (ids.empty()) fail("no tokens to evaluate");
  const std::vector<float> logits = engine->logits(ids, a.all_positions);
  finish_job(*engine);
  const int64_t vocab = engine->model().config.vocab_size;
  const int64_t rows = int64_t(logits.size()) / vocab;
  write_npy_f32(a.out, logits.data(), rows, vocab);
  std::fprintf(stderr, "wrote %s: float32 [%lld, %lld] for %zu tokens\n", a.out.c_str(), (long long)rows,
               (long long)vocab, ids.size());
}

}  // namespace

void register_logits(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  CLI::App* cmd = app.add_subcommand("logits", "Write logits [positions, vocab] as a float32 .npy file");
  add_model_options(cmd, a->model);
  cmd->add_option("-p,--prompt", a->prompt, "the prompt text");
  cmd->add_option("--tokens", a->tokens, "token ids instead of text, e.g. 1,2,3");
  cmd->add_option("-o,--output", a->out, "output .npy file")->required();
  cmd->add_flag("--all-positions", a->all_positions, "every position, not only the last");
  cmd->add_flag("--bos", a->bos, "prepend the BOS token to the text");
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
