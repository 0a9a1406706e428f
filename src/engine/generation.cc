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
      eos_id_(config.eos_id),
      sampler_(options.sampling),
      decoder_(tokenizer),
      stops_(options.stop) {
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
    std::span<const int32_t> rest = std::span<const int32_t>(result_.prompt_ids).subspan(size_t(have));
    if (options_.prompt_logprobs && int64_t(rest.size()) > kScoredPromptChunk) rest = rest.first(kScoredPromptChunk);
    return rest;
  }
  return std::span<const int32_t>(&next_, 1);
}

void Generation::report_prompt(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token) {
  const std::vector<int32_t>& prompt = result_.prompt_ids;
  const size_t V = size_t(vocab_size_), rows = logits.size() / V;
  // The pass covered positions [first, cache length).
  const size_t end = size_t(cache().length());
  if (rows == 0 || rows * V != logits.size() || rows > end || end > prompt.size())
    fail("generation: prompt logprobs need logits for every prompt position of the pass");
  const size_t first = end - rows;
  if (first > 0 && prev_probs_.empty())
    fail("generation: prompt logprobs need the whole prompt computed (the KV cache held part of it)");
  if (!prompt_decoder_) prompt_decoder_ = std::make_unique<StreamDecoder>(tokenizer_);
  std::vector<TokenEvent> events(rows);
  for (size_t i = 0; i < rows; ++i) {
    const size_t j = first + i;
    TokenEvent& ev = events[i];
    ev.id = prompt[j];
    ev.text = prompt_decoder_->push(prompt[j]);
    ev.prompt = true;
    ev.scored = j > 0;
    if (ev.scored) {
      ev.prob = prev_probs_[size_t(prompt[j])];
      if (options_.top_probs > 0) ev.top = top_k(prev_probs_, options_.top_probs);
    }
    // This position's distribution scores the next prompt token.
    if (j + 1 < prompt.size()) prev_probs_ = softmax_probs(logits.subspan(i * V, V));
  }
  if (end == prompt.size()) {
    events.back().text += prompt_decoder_->finish();
    prompt_decoder_.reset();
    prev_probs_ = {};
  }
  if (on_token)
    for (const TokenEvent& ev : events) on_token(ev);
}

bool Generation::advance(std::span<const float> logits, const std::function<void(const TokenEvent&)>& on_token) {
  if (done_) fail("generation: advanced after it finished");
  if (needs_all_positions()) {
    report_prompt(logits, on_token);
    if (cache().length() < int64_t(result_.prompt_ids.size())) return true;  // more of the prompt to go
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
