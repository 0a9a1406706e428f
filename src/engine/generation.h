// One generation in progress, between forward passes: sampling, streaming
// detokenisation, stop strings and the finish reason. Engine::generate runs
// one; BatchGenerator runs many through shared forward passes, and both give
// the same tokens for the same request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/engine.h"
#include "engine/stop_strings.h"

namespace grok {

class Generation {
 public:
  // Checks the request against the model (empty prompt, context) and, with
  // own_cache, makes room in a KV cache of its own for capacity() positions;
  // without, the caller attaches one (attach_cache) before the first pass.
  Generation(const GrokConfig& config, const Tokenizer& tokenizer, std::vector<int32_t> prompt,
             const GenerateOptions& options, bool own_cache = true);

  // The prompt plus max_tokens: the positions its cache must hold.
  int64_t capacity() const { return int64_t(result_.prompt_ids.size()) + options_.max_tokens; }
  const std::vector<int32_t>& prompt() const { return result_.prompt_ids; }
  // Takes a cache of at least capacity() positions. It may already hold a
  // prefix of the prompt (computed for the same tokens): only the rest is
  // processed, of which there must be at least one token.
  void attach_cache(std::unique_ptr<KVCache> cache);
  bool has_cache() const { return cache_ != nullptr; }
  void release_cache() { cache_.reset(); }
  // The tokens of the positions its cache holds (prompt, then generated).
  std::vector<int32_t> cached_tokens() const;

  // The tokens the next forward pass must process for this generation: the
  // prompt first (what the cache does not hold yet), then each sampled token.
  std::span<const int32_t> pending() const;
  KVCache& cache();

  // Whether the next pass must give logits for every pending position (the
  // prompt's passes with prompt_logprobs), not only the last.
  bool needs_all_positions() const { return options_.prompt_logprobs && !prompt_done_; }
  // With prompt_logprobs the prompt goes in passes of at most this many
  // tokens, so its logits stay small (a long prompt's every position times
  // a 131072-token vocabulary would be gigabytes).
  static constexpr int64_t kScoredPromptChunk = 64;

  // After a forward pass over pending(): samples from its logits row,
  // streams the token's text to on_token, and returns whether another pass
  // is needed. With needs_all_positions() there is a row per pending token:
  // they score those prompt tokens' successors, and only a pass that
  // completes the prompt samples (from its last row).
  bool advance(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token);

  bool done() const { return done_; }
  const GenerateResult& result() const { return result_; }
  GenerateResult& result() { return result_; }

 private:
  void finish(const std::function<void(const TokenEvent&)>& on_token);  // flushes held-back text
  // The events of the prompt tokens a pass processed, from the logits of all
  // its positions (prompt_logprobs).
  void report_prompt(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token);

  GenerateOptions options_;
  const Tokenizer& tokenizer_;
  int64_t vocab_size_;
  int32_t eos_id_;
  std::unique_ptr<KVCache> cache_;
  Sampler sampler_;
  StreamDecoder decoder_;
  StopStringFilter stops_;
  GenerateResult result_;
  std::vector<float> row_;  // the logits row the sampler may modify
  // prompt_logprobs: the prompt's text so far, and the previous pass's
  // distribution after its last position (which scores this pass's first token).
  std::unique_ptr<StreamDecoder> prompt_decoder_;
  std::vector<float> prev_probs_;
  int32_t next_ = 0;
  bool prompt_done_ = false, done_ = false;
};

}  // namespace grok
