#include "engine/engine.h"

#include <chrono>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "engine/stop_strings.h"

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

Engine::Engine(Model model, std::optional<Tokenizer> tokenizer, int threads)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), pool_(threads), transformer_(model_) {}

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
  transformer_.forward(ids, cache, pool_, all_positions, out);
  return out;
}

GenerateResult Engine::generate(std::vector<int32_t> prompt, const GenerateOptions& opt,
                                const std::function<void(const TokenEvent&)>& on_token) {
  using Clock = std::chrono::steady_clock;
  const GrokConfig& c = model_.config;
  if (prompt.empty()) fail("the prompt is empty (it has no tokens)");
  if (opt.max_tokens < 0) fail("--max-tokens must not be negative");
  const int64_t need = int64_t(prompt.size()) + opt.max_tokens;
  if (need > c.context_length)
    fail("the prompt (", prompt.size(), " tokens) plus up to ", opt.max_tokens,
         " generated tokens exceeds the model's context of ", c.context_length,
         " tokens; shorten the prompt or lower --max-tokens");

  GenerateResult res;
  res.prompt_ids = prompt;
  res.finish_reason = "length";
  KVCache cache(c, need);
  Sampler sampler(opt.sampling);
  StreamDecoder decoder(tokenizer());
  StopStringFilter stops(opt.stop);
  std::vector<float> logits;

  auto t0 = Clock::now();
  transformer_.forward(prompt, cache, pool_, /*all_positions=*/false, logits);
  res.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  t0 = Clock::now();
  for (int64_t step = 0; step < opt.max_tokens; ++step) {
    const SampledToken tok = sampler.sample(logits, opt.top_probs);
    res.ids.push_back(tok.id);
    if (tok.id == c.eos_id) {
      res.finish_reason = "eos";
      break;
    }
    TokenEvent ev{tok.id, "", tok.prob, tok.top};
    const bool stopped = stops.push(decoder.push(tok.id), ev.text);
    res.text += ev.text;
    if (on_token) on_token(ev);
    if (stopped) {
      res.finish_reason = "stop";
      break;
    }
    if (step + 1 < opt.max_tokens) {
      const int32_t next = tok.id;
      transformer_.forward(std::span<const int32_t>(&next, 1), cache, pool_, false, logits);
    }
  }
  if (res.finish_reason != "stop") {
    // Whatever the decoder and the stop filter still hold is final text now.
    std::string tail;
    stops.push(decoder.finish(), tail);
    tail += stops.flush();
    if (!tail.empty()) {
      res.text += tail;
      if (on_token) on_token(TokenEvent{-1, tail, 0, {}});
    }
  }
  res.generate_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return res;
}

}  // namespace grok
