// The forward pass of SPEC.md over a loaded model: a batch of new tokens at
// the positions after what the KV cache holds, producing logits.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/collectives.h"
#include "core/thread_pool.h"
#include "model/kv_cache.h"
#include "model/model.h"

namespace grok {

// Called with each named intermediate tensor (names follow llama.cpp's
// callback names, e.g. "attn_norm-0", "ffn_moe_out-1", so dumps can be
// compared with the oracle's). shape is {rows, cols}, row-major.
using TensorObserver =
    std::function<void(const std::string& name, const float* data, int64_t rows, int64_t cols)>;

struct ForwardScratch;

// One sequence's part of a batched forward pass: new tokens to append after
// what its cache holds.
struct SequenceStep {
  std::span<const int32_t> tokens;
  KVCache* cache = nullptr;
  bool all_positions = false;  // logits for every new position, else the last only
};

// What the leader of a tensor-parallel job needs of each row of logits:
// all of them, or only the most probable token (greedy decoding), which
// spares gathering vocabulary-sized rows from every rank.
enum class LogitsGather { kFull, kArgmax };

// Under tensor parallelism (model.shard split over `comm`, model/shard.h)
// every rank holds a Transformer over its slice. The leader (rank 0) calls
// forward / forward_batch as usual: each call first broadcasts its plan
// (token ids, positions, the caches' block tables, never activations), and
// every other rank, inside follow(), runs the same pass on its slice. Two
// all-reduces per layer (after attention, after the MoE) make every rank's
// residual stream the same bits; the leader gathers the logits.
class Transformer {
 public:
  explicit Transformer(const Model& model, Collectives* comm = nullptr);
  ~Transformer();

  const GrokConfig& config() const { return cfg_; }

  // Processes `tokens` at positions cache.length() onwards and appends them to
  // the cache. Writes logits [rows][vocab] to `logits`: every position when
  // all_positions, else only the last. Throws grok::Error on a token id out of
  // range or a cache too small.
  void forward(std::span<const int32_t> tokens, KVCache& cache, ThreadPool& pool, bool all_positions,
               std::vector<float>& logits);

  // Several sequences in one pass, each with its own cache (distinct caches):
  // the matrix products and the experts run over all their tokens together,
  // attention within each sequence. logits holds each step's rows in step
  // order. A sequence's logits are bit-for-bit those it gets alone (the
  // kernels give a token the same result whatever its batch), except with
  // the checkpoint's int8 weights, whose decode kernels split the work
  // differently for up to 4 tokens. Everything is checked before any cache
  // changes.
  void forward_batch(std::span<const SequenceStep> steps, ThreadPool& pool, std::vector<float>& logits);

  // Ranks other than the leader: run the leader's passes until it stops.
  // Returns whether the leader asked for a report after stopping
  // (stop_followers(true)).
  bool follow(ThreadPool& pool);
  // The leader: ends the followers' follow() (once per process; later calls,
  // from any Transformer, do nothing and later passes are refused).
  void stop_followers(bool report);
  // In kArgmax mode the leader's logits rows hold -infinity except at the
  // most probable token (ties to the lower id), which has its true value.
  void set_logits_gather(LogitsGather g) { gather_ = g; }
  bool distributed() const { return comm_ && comm_->distributed(); }

  void set_observer(TensorObserver obs) { observer_ = std::move(obs); }
  // From now on, every pass adds the tokens routed to each expert of each
  // layer to (*counts)[layer * n_experts + expert] (resized to fit; padding
  // rows are not counted); null stops. Counting costs a few additions per
  // token and layer, unlike an observer's copies and strings. `counts` must
  // outlive the passes and is written by the thread running them.
  void set_expert_counts(std::vector<int64_t>* counts);

 private:
  void observe(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const;
  void check_steps(std::span<const SequenceStep> steps) const;
  void send_plan(std::span<const SequenceStep> steps);
  void run(std::span<const SequenceStep> steps, ThreadPool& pool, std::vector<float>& logits);
  void gather_logits(int64_t rows, std::vector<float>& logits);

  const GrokConfig& cfg_;
  GrokConfig local_;  // this rank's heads and ffn slice (= cfg_ in one process)
  Shard shard_;
  Collectives* comm_ = nullptr;
  LogitsGather gather_ = LogitsGather::kFull;
  struct Mirrors;
  std::unique_ptr<Mirrors> mirrors_;  // followers: their copies of the leader's KV pools
  const GrokWeights& w_;
  TensorObserver observer_;
  std::vector<int64_t>* expert_counts_ = nullptr;
  std::unique_ptr<ForwardScratch> s_;
};

}  // namespace grok
