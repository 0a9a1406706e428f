// `grok bench`: prompt and generation speed of a model, like llama-bench's
// pp512 / tg128, with the weight bandwidth generation achieves against the
// machine's own measured memory-read bandwidth.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/collectives.h"
#include "core/thread_pool.h"
#include "model/model.h"

namespace grok {

struct BenchOptions {
  int64_t prompt_tokens = 512;  // pp: one batched forward of this many tokens
  int64_t gen_tokens = 128;     // tg: this many single-token forwards
  int64_t batch = 1;            // tg: sequences decoding together, one token each per forward
  int repetitions = 5;
  uint64_t seed = 1;
  uint64_t probe_bytes = uint64_t(1) << 30;  // memory-bandwidth probe buffer (far above cache sizes)
};

struct BenchResult {
  std::vector<double> prompt_tps, gen_tps;  // per repetition; gen counts every sequence's tokens
  double prompt_tps_median = 0, gen_tps_median = 0;
  uint64_t weight_bytes_per_token = 0;  // bytes of weights one generated token reads
  double weight_gbps = 0;               // weight_bytes_per_token × gen tokens/s (batch 1 only)
  double memory_read_gbps = 0;          // measured on this machine, same threads
  double peak_rss_mib = 0;
  std::string isa;
  // Tensor parallelism: the leader's communication per generated token
  // (every sequence's token counts), over the timed generation runs.
  int ranks = 1;
  double comm_seconds_per_token = 0;     // all-reduces, plan broadcasts and logit gathers
  double allreduce_seconds_per_token = 0;
  double allreduces_per_token = 0;
  double comm_bytes_per_token = 0;       // sent by the leader
};

// Bytes of weights a single decoded token reads: attention, router and norms
// of every layer, the n_experts_used experts' share of the expert weights,
// and the output projection (embedding rows are looked up, not streamed).
uint64_t weight_bytes_per_token(const Model& m);

// Streams a buffer much larger than the caches with every thread of `pool`
// and returns the median read bandwidth in GB/s.
double measure_read_bandwidth(ThreadPool& pool, uint64_t bytes = uint64_t(1) << 30, int repetitions = 5);

// `m` comes from open_model, read once and repacked (OpenOptions::read_all_first)
// as generation runs it. `progress` gets one line per finished measurement.
// With `comm` over several ranks (the model split over them), the leader
// runs this while the others follow (Transformer::follow); it stops them
// at the end, asking for their reports.
BenchResult run_bench(const Model& m, ThreadPool& pool, const BenchOptions& opt,
                      const std::function<void(const std::string&)>& progress, Collectives* comm = nullptr);

}  // namespace grok
