// The forward pass of SPEC.md over a loaded model: a batch of new tokens at
// the positions after what the KV cache holds, producing logits.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

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

class Transformer {
 public:
  explicit Transformer(const Model& model);
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

  void set_observer(TensorObserver obs) { observer_ = std::move(obs); }
  // From now on, every pass adds the tokens routed to each expert of each
  // layer to (*counts)[layer * n_experts + expert] (resized to fit; padding
  // rows are not counted); null stops. Counting costs a few additions per
  // token and layer, unlike an observer's copies and strings. `counts` must
  // outlive the passes and is written by the thread running them.
  void set_expert_counts(std::vector<int64_t>* counts);

 private:
  void observe(const char* name, int64_t layer, const float* data, int64_t rows, int64_t cols) const;

  const GrokConfig& cfg_;
  const GrokWeights& w_;
  TensorObserver observer_;
  std::vector<int64_t>* expert_counts_ = nullptr;
  std::unique_ptr<ForwardScratch> s_;
};

}  // namespace grok
