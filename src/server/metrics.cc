#include "server/metrics.h"

#include <sstream>

namespace grok::server {

void Metrics::count_request(const std::string& endpoint, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{endpoint, status}];
}

void Metrics::count_tokens(int64_t prompt_tokens, int64_t generated_tokens) {
  std::lock_guard lock(mu_);
  prompt_tokens_ += prompt_tokens;
  generated_tokens_ += generated_tokens;
}

void Metrics::count_cancelled() {
  std::lock_guard lock(mu_);
  ++cancelled_;
}

void Metrics::observe_time_to_first_token(double seconds) {
  std::lock_guard lock(mu_);
  size_t b = 0;
  while (b < kTtftBuckets.size() && seconds > kTtftBuckets[b]) ++b;
  ++ttft_counts_[b];
  ttft_sum_ += seconds;
  ++ttft_count_;
}

void Metrics::record_step(int64_t queue_depth, int64_t batch_size, int64_t tokens, double seconds) {
  std::lock_guard lock(mu_);
  queue_depth_ = queue_depth;
  batch_size_ = batch_size;
  if (seconds <= 0) return;
  // An exponential average over the last few dozen passes: steady under load, and it follows changes.
  const double rate = double(tokens) / seconds;
  tokens_per_second_ = tokens_per_second_ == 0 ? rate : 0.9 * tokens_per_second_ + 0.1 * rate;
}

void Metrics::set_queue(int64_t queue_depth, int64_t batch_size) {
  std::lock_guard lock(mu_);
  queue_depth_ = queue_depth;
  batch_size_ = batch_size;
  if (batch_size == 0) tokens_per_second_ = 0;
}

void Metrics::set_kv_memory(const KvMemoryStats& kv) {
  std::lock_guard lock(mu_);
  kv_ = kv;
}

void Metrics::set_expert_tokens(const std::vector<int64_t>& counts, int n_experts) {
  std::lock_guard lock(mu_);
  expert_tokens_ = counts;  // a few hundred numbers: copied whole, so a reader never sees half a pass
  n_experts_ = n_experts;
}

KvMemoryStats Metrics::kv_memory() const {
  std::lock_guard lock(mu_);
  return kv_;
}

std::vector<int64_t> Metrics::expert_tokens() const {
  std::lock_guard lock(mu_);
  return expert_tokens_;
}

int64_t Metrics::requests(const std::string& endpoint, int status) const {
  std::lock_guard lock(mu_);
  auto it = requests_.find({endpoint, status});
  return it == requests_.end() ? 0 : it->second;
}

int64_t Metrics::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

int64_t Metrics::generated_tokens() const {
  std::lock_guard lock(mu_);
  return generated_tokens_;
}

int64_t Metrics::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_depth_;
}

std::string Metrics::prometheus_text() const {
  std::lock_guard lock(mu_);
  std::ostringstream o;
  o << "# HELP grok_requests_total HTTP requests answered, by endpoint and status code.\n"
       "# TYPE grok_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    o << "grok_requests_total{endpoint=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  o << "# HELP grok_prompt_tokens_total Prompt tokens processed.\n# TYPE grok_prompt_tokens_total counter\n"
    << "grok_prompt_tokens_total " << prompt_tokens_ << "\n"
    << "# HELP grok_generated_tokens_total Tokens generated.\n# TYPE grok_generated_tokens_total counter\n"
    << "grok_generated_tokens_total " << generated_tokens_ << "\n"
    << "# HELP grok_sequences_cancelled_total Sequences cancelled (client gone or shutdown).\n"
    << "# TYPE grok_sequences_cancelled_total counter\n"
    << "grok_sequences_cancelled_total " << cancelled_ << "\n"
    << "# HELP grok_queue_depth Sequences waiting for a place in the batch.\n# TYPE grok_queue_depth gauge\n"
    << "grok_queue_depth " << queue_depth_ << "\n"
    << "# HELP grok_batch_size Sequences in the running batch.\n# TYPE grok_batch_size gauge\n"
    << "grok_batch_size " << batch_size_ << "\n"
    << "# HELP grok_generation_tokens_per_second Tokens generated per second by recent forward passes.\n"
    << "# TYPE grok_generation_tokens_per_second gauge\n"
    << "grok_generation_tokens_per_second " << tokens_per_second_ << "\n"
    << "# HELP grok_time_to_first_token_seconds From a request's arrival to its first generated token.\n"
    << "# TYPE grok_time_to_first_token_seconds histogram\n";
  int64_t cumulative = 0;
  for (size_t b = 0; b < kTtftBuckets.size(); ++b) {
    cumulative += ttft_counts_[b];
    o << "grok_time_to_first_token_seconds_bucket{le=\"" << kTtftBuckets[b] << "\"} " << cumulative << "\n";
  }
  o << "grok_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << ttft_count_ << "\n"
    << "grok_time_to_first_token_seconds_sum " << ttft_sum_ << "\n"
    << "grok_time_to_first_token_seconds_count " << ttft_count_ << "\n";
  o << "# HELP grok_kv_block_tokens Positions (tokens) in one KV block.\n# TYPE grok_kv_block_tokens gauge\n"
    << "grok_kv_block_tokens " << kv_.block_tokens << "\n"
    << "# HELP grok_kv_blocks_total KV blocks in the memory budget.\n# TYPE grok_kv_blocks_total gauge\n"
    << "grok_kv_blocks_total " << kv_.blocks_total << "\n"
    << "# HELP grok_kv_blocks KV blocks by state: used by running requests, cached (held only by the prefix "
       "cache, reusable and evictable), free.\n# TYPE grok_kv_blocks gauge\n"
    << "grok_kv_blocks{state=\"used\"} " << kv_.blocks_used << "\n"
    << "grok_kv_blocks{state=\"cached\"} " << kv_.blocks_cached << "\n"
    << "grok_kv_blocks{state=\"free\"} " << kv_.blocks_free << "\n"
    << "# HELP grok_prefix_cache_hits_total Requests that reused cached prompt blocks.\n"
    << "# TYPE grok_prefix_cache_hits_total counter\n"
    << "grok_prefix_cache_hits_total " << kv_.prefix_hits << "\n"
    << "# HELP grok_prefix_cache_hit_tokens_total Prompt tokens taken from the prefix cache, not computed.\n"
    << "# TYPE grok_prefix_cache_hit_tokens_total counter\n"
    << "grok_prefix_cache_hit_tokens_total " << kv_.prefix_hit_tokens << "\n";
  if (n_experts_ > 0 && !expert_tokens_.empty()) {
    o << "# HELP grok_expert_tokens_total Tokens routed to each expert, by layer (expert load).\n"
      << "# TYPE grok_expert_tokens_total counter\n";
    for (size_t i = 0; i < expert_tokens_.size(); ++i)
      o << "grok_expert_tokens_total{layer=\"" << i / size_t(n_experts_) << "\",expert=\"" << i % size_t(n_experts_)
        << "\"} " << expert_tokens_[i] << "\n";
  }
  return o.str();
}

}  // namespace grok::server
