#include "engine/generation.h"

#include <algorithm>

#include "core/error.h"

namespace grok {
namespace {

int64_t checked_capacity(const GrokConfig& c, const std::vector<int32_t>& prompt, const GenerateOptions& opt) {
  if (prompt.empty()) fail("the prompt is empty (it has no tokens)");
  if (opt.max_tokens < 0) fail("--max-tokens must not be negative");
  const int64_t need = int64_t(prompt.size()) + opt.max_tokens;
  if (need > c.context_length)
    fail("the prompt (", prompt.size(), " tokens) plus up to ", opt.max_tokens,
         " generated tokens exceeds the model's context of ", c.context_length,
         " tokens; shorten the prompt or lower --max-tokens");
  return need;
}

}  // namespace

Generation::Generation(const GrokConfig& config, const Tokenizer& tokenizer, std::vector<int32_t> prompt,
                       const GenerateOptions& options, bool own_cache)
    : options_(options),
      tokenizer_(tokenizer),
      vocab_size_(config.vocab_size),
      eos_id_(config.eos_id), sampler_(options.sampling), decoder_(tokenizer), stops_(options.stop) {
  const int64_t capacity = checked_capacity(config, prompt, options);
  if (own_cache) cache_ = std::make_unique<KVCache>(config, capacity);
  result_.prompt_ids = std::move(prompt);
  result_.finish_reason = "length";
}

void Generation::attach_cache(std::unique_ptr<KVCache> cache) {
  if (!cache) fail("generation: no KV cache to attach");
  if (cache_) fail("generation: it already has a KV cache");
  if (prompt_done_) fail("generation: a KV cache attached after the prompt");
  if (cache->capacity() < capacity())
    fail("generation: a KV cache of ", cache->capacity(), " positions is smaller than the ", capacity(), " needed");
  if (cache->length() >= int64_t(result_.prompt_ids.size()))
    fail("generation: the KV cache already holds ", cache->length(), " positions of a ", result_.prompt_ids.size(),
         "-token prompt (at least one must be computed)");
  cache_ = std::move(cache);
}

KVCache& Generation::cache() {
  if (!cache_) fail("generation: no KV cache attached");
  return *cache_;
}

std::vector<int32_t> Generation::cached_tokens() const {
  if (!cache_) return {};
  const size_t n = size_t(cache_->length()), p = result_.prompt_ids.size();
  std::vector<int32_t> t(result_.prompt_ids.begin(), result_.prompt_ids.begin() + std::min(n, p));
  if (n > p) t.insert(t.end(), result_.ids.begin(), result_.ids.begin() + std::min(n - p, result_.ids.size()));
  return t;
}

std::span<const int32_t> Generation::pending() const {
  if (done_) return {};
  if (!prompt_done_) {
    const int64_t have = cache_ ? cache_->length() : 0;
    return std::span<const int32_t>(result_.prompt_ids).subspan(size_t(have));
  }
  return std::span<const int32_t>(&next_, 1);
}

void Generation::report_prompt(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token) {
  const std::vector<int32_t>& prompt = result_.prompt_ids;
  const size_t n = prompt.size(), V = size_t(vocab_size_);
  // The pass must have covered the whole prompt (no reused prefix).
  if (logits.size() != n * V) fail("generation: prompt logprobs need logits for all ", n, " prompt positions");
  std::vector<TokenEvent> events(n);
  StreamDecoder decoder(tokenizer_);
  for (size_t j = 0; j < n; ++j) {
    TokenEvent& ev = events[j];
    ev.id = prompt[j];
    ev.text = decoder.push(prompt[j]);
    ev.prompt = true;
    ev.scored = j > 0;
    if (!ev.scored) continue;
    // Row j - 1 is the distribution after the tokens before j.
    const std::vector<float> p = softmax_probs(logits.subspan((j - 1) * V, V));
    ev.prob = p[size_t(prompt[j])];
    if (options_.top_probs > 0) ev.top = top_k(p, options_.top_probs);
  }
  events.back().text += decoder.finish();
  if (on_token)
    for (const TokenEvent& ev : events) on_token(ev);
}

bool Generation::advance(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token) {
  if (done_) fail("generation: advanced after it finished");
  if (needs_all_positions()) {
    report_prompt(logits, on_token);
    logits = logits.last(size_t(vocab_size_));
  }
  prompt_done_ = true;
  if (int64_t(result_.ids.size()) >= options_.max_tokens) {  // max_tokens 0
    finish(on_token);
    return false;
  }
  row_.assign(logits.begin(), logits.end());
  const SampledToken tok = sampler_.sample(row_, options_.top_probs);
  result_.ids.push_back(tok.id);
  if (tok.id == eos_id_) {
    result_.finish_reason = "eos";
    finish(on_token);
    return false;
  }
  TokenEvent ev{tok.id, "", tok.prob, tok.top};
  const bool stopped = stops_.push(decoder_.push(tok.id), ev.text);
  result_.text += ev.text;
  if (on_token) on_token(ev);
  if (stopped) {
    result_.finish_reason = "stop";  // the text after the stop string is dropped
    done_ = true;
    return false;
  }
  if (int64_t(result_.ids.size()) >= options_.max_tokens) {
    finish(on_token);
    return false;
  }
  next_ = tok.id;
  return true;
}

void Generation::finish(const std::function<void(const TokenEvent&)>& on_token) {
  done_ = true;
  // Whatever the decoder and the stop filter still hold is final text now.
  std::string tail;
  stops_.push(decoder_.finish(), tail);
  tail += stops_.flush();
  if (!tail.empty()) {
    result_.text += tail;
    if (on_token) on_token(TokenEvent{-1, tail, 0, {}});
  }
}

}  // namespace grok
