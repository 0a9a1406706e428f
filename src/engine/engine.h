// Generation over a model and its tokenizer: prompt in one batched pass, then
// one token at a time with the KV cache, streaming text through a callback.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/thread_pool.h"
#include "engine/open_model.h"
#include "model/model.h"
#include "model/pack_weights.h"
#include "model/transformer.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace grok {

// The tokenizer a model should use: `override_path` (a tokenizer.model) if
// given, else the GGUF's own vocabulary, else tokenizer.model in a Hugging
// Face folder, else the built-in one for the built-in model; nullopt if none.
std::optional<Tokenizer> find_tokenizer(const Model& model, const std::string& override_path);
// The tokenizer.model that goes with a folder model: inside a Hugging Face
// folder, inside or beside a ckpt-0 folder; "" if none.
std::string tokenizer_file_beside(const Model& model);
// Like find_tokenizer, but a model without a vocabulary is an error.
Tokenizer tokenizer_for(const Model& model, const std::string& override_path);

struct GenerateOptions {
  int64_t max_tokens = 256;
  SamplingOptions sampling;
  std::vector<std::string> stop;  // generation ends before the first of these
  bool add_bos = false;           // the reference adds none
  int top_probs = 0;              // report this many most probable tokens per step
  // Also report each prompt token, before the first generated one, as a
  // TokenEvent with `prompt` set: its probability given the tokens before it
  // under the model's own distribution (the logits without temperature or
  // top-p), with top_probs alternatives. The first has none (`scored` false).
  // Costs the output projection for every prompt position.
  bool prompt_logprobs = false;
};

struct TokenEvent {
  int32_t id = 0;
  std::string text;  // text completed by this token (may be empty mid-character)
  float prob = 0;
  std::vector<std::pair<int32_t, float>> top;
  bool prompt = false;  // a prompt token (GenerateOptions::prompt_logprobs), not a generated one
  bool scored = true;   // false for the first prompt token: nothing predicts it
};

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> ids;  // generated
  std::string text;          // generated, up to a stop string
  std::string finish_reason; // "eos", "length" or "stop"
  double prompt_seconds = 0;
  double generate_seconds = 0;
};

class Engine {
 public:
  // A model from open_model / make_ready (engine/open_model.h). Without a
  // tokenizer the engine works on token ids only.
  Engine(ReadyModel ready, int threads);
  ~Engine();  // a tensor-parallel leader stops the followers if nobody has
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const Model& model() const { return model_; }
  // Throws grok::Error when the engine has no tokenizer.
  const Tokenizer& tokenizer() const;
  ThreadPool& pool() { return pool_; }

  std::vector<int32_t> tokenize(std::string_view text, bool add_bos) const;

  GenerateResult generate(std::vector<int32_t> prompt, const GenerateOptions& opt,
                          const std::function<void(const TokenEvent&)>& on_token);

  // Logits [rows][vocab] for `ids` processed in one pass: every position or the last.
  std::vector<float> logits(std::span<const int32_t> ids, bool all_positions);

  void set_observer(TensorObserver obs) { transformer_.set_observer(std::move(obs)); }

  // Tensor parallelism (Transformer): ranks other than the leader run the
  // leader's passes here until it stops them; the leader stops them with
  // stop_followers (or when the engine goes).
  bool follow() { return transformer_.follow(pool_); }
  void stop_followers(bool report) { transformer_.stop_followers(report); }
  Collectives* comm() const { return comm_; }

 private:
  Model model_;
  Collectives* comm_;
  std::optional<Tokenizer> tokenizer_;
  ThreadPool pool_;
  Transformer transformer_;
};

}  // namespace grok
