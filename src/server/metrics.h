// The server's counters, gauges and time-to-first-token histogram, rendered
// in Prometheus' text format for GET /metrics. Thread-safe: HTTP threads count
// requests, the scheduler's thread counts tokens and sets the gauges.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine/batch_generator.h"

namespace grok::server {

class Metrics {
 public:
  void count_request(const std::string& endpoint, int status);
  void count_tokens(int64_t prompt_tokens, int64_t generated_tokens);
  void count_cancelled();
  void observe_time_to_first_token(double seconds);
  // After each forward pass: the sequences waiting and running, and the
  // tokens that pass generated in `seconds` (smoothed into tokens/s).
  void record_step(int64_t queue_depth, int64_t batch_size, int64_t tokens, double seconds);
  void set_queue(int64_t queue_depth, int64_t batch_size);
  // The scheduler's thread publishes these (BatchGenerator::kv_stats is
  // its thread's alone); /metrics shows the latest.
  void set_kv_memory(const KvMemoryStats& kv);
  // Tokens routed to each expert so far: counts[layer * n_experts + expert].
  void set_expert_tokens(const std::vector<int64_t>& counts, int n_experts);

  int64_t requests(const std::string& endpoint, int status) const;
  int64_t cancelled() const;
  int64_t generated_tokens() const;
  int64_t queue_depth() const;
  KvMemoryStats kv_memory() const;
  std::vector<int64_t> expert_tokens() const;
  std::string prometheus_text() const;

 private:
  // Upper bounds (seconds) of the time-to-first-token buckets; +Inf is implied.
  static constexpr std::array<double, 10> kTtftBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  int64_t prompt_tokens_ = 0, generated_tokens_ = 0, cancelled_ = 0;
  std::array<int64_t, kTtftBuckets.size() + 1> ttft_counts_{};
  double ttft_sum_ = 0;
  int64_t ttft_count_ = 0;
  int64_t queue_depth_ = 0, batch_size_ = 0;
  double tokens_per_second_ = 0;
  KvMemoryStats kv_;
  std::vector<int64_t> expert_tokens_;
  int n_experts_ = 0;
};

}  // namespace grok::server
