// grok generate: stream a continuation of a prompt.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"

namespace grok::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string prompt;
  std::string prompt_file;
  GenerateOptions gen;
  bool bos = false;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the prompt file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void print_top_probs(const Tokenizer& tok, const TokenEvent& ev) {
  // One JSON object per generated token on stdout (--top-probs replaces the plain text).
  std::string line = "{\"id\": " + std::to_string(ev.id) + ", \"piece\": " + json_escape(tok.piece(ev.id)) +
                     ", \"text\": " + json_escape(ev.text) + ", \"prob\": " + std::to_string(ev.prob) +
                     ", \"top\": [";
  for (size_t i = 0; i < ev.top.size(); ++i)
    line += std::string(i ? ", " : "") + "[" + std::to_string(ev.top[i].first) + ", " +
            json_escape(tok.piece(ev.top[i].first)) + ", " + std::to_string(ev.top[i].second) + "]";
  std::printf("%s]}\n", line.c_str());
}

void run(const GenerateArgs& a) {
  if (!a.prompt_file.empty() && !a.prompt.empty()) fail("give the prompt with -p or -f, not both");
  auto engine = open_engine(a.model);
  if (follow_leader(*engine)) return;
  const std::string prompt = a.prompt_file.empty() ? a.prompt : read_text_file(a.prompt_file);
  std::vector<int32_t> ids = engine->tokenize(prompt, a.bos);
  if (ids.empty()) fail("the prompt is empty; give some text with -p (or pass --bos to start from BOS)");
  const bool json = a.gen.top_probs > 0;
  const GenerateResult r = engine->generate(std::move(ids), a.gen, [&](const TokenEvent& ev) {
    if (json && ev.id >= 0) {
      print_top_probs(engine->tokenizer(), ev);
    } else if (!json) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
    }
    std::fflush(stdout);
  });
  finish_job(*engine);
  if (!json) std::printf("\n");
  const double pp = r.prompt_seconds > 0 ? double(r.prompt_ids.size()) / r.prompt_seconds : 0;
  const double tg = r.generate_seconds > 0 ? double(r.ids.size()) / r.generate_seconds : 0;
  std::fprintf(stderr, "prompt: %zu tokens, %.2f tokens/s; generated: %zu tokens, %.2f tokens/s; stop: %s\n",
               r.prompt_ids.size(), pp, r.ids.size(), tg, r.finish_reason.c_str());
}

}  // namespace

void register_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt, streaming the text to stdout");
  add_model_options(cmd, a->model);
  cmd->add_option("-p,--prompt", a->prompt, "the prompt text");
  cmd->add_option("-f,--file", a->prompt_file, "read the prompt from a file");
  cmd->add_option("-n,--max-tokens", a->gen.max_tokens, "most tokens to generate")
      ->capture_default_str()->check(whole_number(0));
  cmd->add_option("--temperature", a->gen.sampling.temperature, "0 is greedy")
      ->capture_default_str()->check(real_number(0, 100));
  cmd->add_option("--top-p", a->gen.sampling.top_p, "nucleus sampling mass")
      ->capture_default_str()->check(real_number(0, 1));
  cmd->add_option("--seed", a->gen.sampling.seed, "random seed; the same seed gives the same output")
      ->capture_default_str()->check(unsigned_number());
  cmd->add_option("--stop", a->gen.stop, "stop before this text (repeatable)");
  cmd->add_flag("--bos", a->bos, "prepend the BOS token (the reference does not)");
  cmd->add_option("--top-probs", a->gen.top_probs,
                  "print one JSON line per token: its probability and the N most likely tokens (N: 8 when not given)")
      ->expected(0, 1)->default_str("8")->check(whole_number(1, 100));
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
