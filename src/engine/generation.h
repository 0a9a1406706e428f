// One generation in progress, between forward passes: sampling, streaming
// detokenisation, stop strings and the finish reason. Engine::generate runs
// one; BatchGenerator runs many through shared forward passes, and both give
// the same tokens for the same request.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "engine/stop_strings.h"

namespace grok {

class Generation {
 public:
  // Checks the request against the model (empty prompt, context) and makes
  // room in its own KV cache for the prompt plus max_tokens.
  Generation(const GrokConfig& config, const Tokenizer& tokenizer, std::vector<int32_t> prompt,
             const GenerateOptions& options);

  // The tokens the next forward pass must process for this generation: the
  // prompt first, then each sampled token.
  std::span<const int32_t> pending() const;
  KVCache& cache() { return cache_; }

  // After a forward pass over pending(): samples from its logits row, streams
  // the token's text to on_token, and returns whether another pass is needed.
  bool advance(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token);

  bool done() const { return done_; }
  const GenerateResult& result() const { return result_; }
  GenerateResult& result() { return result_; }

 private:
  void finish(const std::function<void(const TokenEvent&)>& on_token);  // flushes held-back text

  GenerateOptions options_;
  int32_t eos_id_;
  KVCache cache_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopStringFilter stops_;
  GenerateResult result_;
  std::vector<float> row_;  // the logits row the sampler may modify
  int32_t next_ = 0;
  bool prompt_done_ = false, done_ = false;
};

}  // namespace grok
