#include "engine/engine.h"

#include <chrono>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "engine/generation.h"

namespace grok {

std::string tokenizer_file_beside(const Model& model) {
  std::error_code ec;
  const auto dir = std::filesystem::absolute(model.path, ec).lexically_normal();
  std::vector<std::filesystem::path> places;
  if (model.format == "safetensors" || model.format == "checkpoint") places.push_back(dir / "tokenizer.model");
  if (model.format == "checkpoint") places.push_back(dir.parent_path() / "tokenizer.model");  // the release's layout
  for (const auto& p : places)
    if (std::filesystem::exists(p, ec)) return p.string();
  return "";
}

std::optional<Tokenizer> find_tokenizer(const Model& model, const std::string& override_path) {
  std::optional<Tokenizer> tok = [&]() -> std::optional<Tokenizer> {
    if (!override_path.empty()) return Tokenizer::from_model_file(override_path);
    if (model.format == "builtin") return Tokenizer::builtin();
    if (model.gguf && model.gguf->get_string_array("tokenizer.ggml.tokens")) return Tokenizer::from_gguf(*model.gguf);
    if (const std::string beside = tokenizer_file_beside(model); !beside.empty())
      return Tokenizer::from_model_file(beside);
    return std::nullopt;
  }();
  if (tok && tok->vocab_size() > model.config.vocab_size)
    fail("the tokenizer has ", tok->vocab_size(), " tokens but the model's vocabulary has only ",
         model.config.vocab_size);
  return tok;
}

Tokenizer tokenizer_for(const Model& model, const std::string& override_path) {
  std::optional<Tokenizer> tok = find_tokenizer(model, override_path);
  if (!tok) fail(model.path, ": the model carries no vocabulary; pass --tokenizer path/to/tokenizer.model");
  return std::move(*tok);
}

Engine::Engine(ReadyModel ready, int threads)
    : model_(std::move(ready.model)),
      comm_(ready.comm),
      tokenizer_(std::move(ready.tokenizer)),
      pool_(threads),
      transformer_(model_, comm_) {}

Engine::~Engine() {
  try {
    transformer_.stop_followers(false);
  } catch (const std::exception&) {
    // The other ranks are gone already: nothing is left to tell them.
  }
}

const Tokenizer& Engine::tokenizer() const {
  if (!tokenizer_)
    fail(model_.path, ": the model carries no vocabulary; pass --tokenizer path/to/tokenizer.model");
  return *tokenizer_;
}

std::vector<int32_t> Engine::tokenize(std::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  if (add_bos) ids.push_back(model_.config.bos_id);
  const std::vector<int32_t> body = tokenizer().encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::vector<float> Engine::logits(std::span<const int32_t> ids, bool all_positions) {
  if (ids.empty()) fail("no tokens to evaluate");
  if (int64_t(ids.size()) > model_.config.context_length)
    fail(ids.size(), " tokens exceed the model's context of ", model_.config.context_length);
  KVCache cache(model_.config, int64_t(ids.size()));
  std::vector<float> out;
  transformer_.set_logits_gather(LogitsGather::kFull);
  transformer_.forward(ids, cache, pool_, all_positions, out);
  return out;
}

GenerateResult Engine::generate(std::vector<int32_t> prompt, const GenerateOptions& opt,
                                const std::function<void(const TokenEvent&)>& on_token) {
  using Clock = std::chrono::steady_clock;
  Generation g(model_.config, tokenizer(), std::move(prompt), opt);
  std::vector<float> logits;
  // Greedy decoding without probabilities needs only each row's best token.
  const bool greedy_only = opt.sampling.temperature <= 0 && opt.top_probs == 0 && !opt.prompt_logprobs;
  transformer_.set_logits_gather(greedy_only ? LogitsGather::kArgmax : LogitsGather::kFull);
  auto t0 = Clock::now();
  transformer_.forward(g.pending(), g.cache(), pool_, g.needs_all_positions(), logits);
  const double prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  while (g.advance(logits, on_token))
    transformer_.forward(g.pending(), g.cache(), pool_, g.needs_all_positions(), logits);
  GenerateResult res = std::move(g.result());
  res.prompt_seconds = prompt_seconds;
  res.generate_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return res;
}

}  // namespace grok
