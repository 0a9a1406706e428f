// Continuous batching: generations join and leave a running batch between
// forward passes, and one pass serves them all (Transformer::forward_batch).
// A request's tokens are those Engine::generate gives it alone with the same
// options, whatever else is running (the kernels give a token the same
// result whatever its batch; see forward_batch for the one exception).
//
// KV memory comes from one pool of fixed-size blocks with a budget
// (model/kv_block_pool.h). Admission policy: requests start in submission
// order, a request only when the blocks for its whole prompt plus
// max_tokens fit in what is free (or held only by the prefix cache, which
// gives them up least recently used first); until then it and everything
// after it wait. A running request so never runs out of memory and is
// never preempted, and since every running request ends within its
// max_tokens, the head of the queue always starts eventually: a request is
// refused at submit only when it could not fit even alone.
//
// Prefix reuse: the full blocks of each request's prompt (after its first
// pass) and of everything it processed (when it ends) are kept in a
// PrefixCache (engine/prefix_cache.h); a later request whose prompt starts
// with the same tokens maps them and computes only the rest (always at
// least its last prompt token, whose logits it needs). Reused keys and
// values are bit for bit what it would compute, because a token's result
// does not depend on which other tokens share its pass. That fails only for
// the forward_batch exception (checkpoint int8 matrices on the row kernels,
// which split the work differently for up to 4 tokens), so with those the
// prefix cache is off.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/generation.h"
#include "engine/prefix_cache.h"
#include "model/kv_block_pool.h"

namespace grok {

struct BatchOptions {
  int max_batch = 8;
  // KV memory in positions (tokens) over all requests, rounded down to whole
  // blocks. 0: max_batch × the model's context, capped at half the memory
  // available now (but never below one full context).
  int64_t kv_budget_tokens = 0;
  int kv_block_tokens = 16;
  bool prefix_cache = true;
};

// What the KV memory holds, for /metrics. Every block is in exactly one of
// used, cached and free.
struct KvMemoryStats {
  int block_tokens = 0;
  int64_t blocks_total = 0;
  int64_t blocks_used = 0;    // held by running requests (some maybe also cached)
  int64_t blocks_cached = 0;  // held only by the prefix cache: reusable, evictable
  int64_t blocks_free = 0;
  int64_t prefix_hits = 0;        // requests that reused cached blocks
  int64_t prefix_hit_tokens = 0;  // prompt tokens they did not compute
};

struct BatchRequest {
  std::vector<int32_t> prompt;
  GenerateOptions options;
  std::function<void(const TokenEvent&)> on_token;  // each token's text, as generate streams it
  std::function<void(const GenerateResult&)> on_done;  // once; finish_reason "cancelled" if cancelled
};

// One thread drives it: submit, cancel and step must not be called from
// inside a request's callbacks (the server will queue such calls).
class BatchGenerator {
 public:
  // At most max_batch generations share a pass; the rest wait in order.
  // The KV memory and prefix cache are BatchOptions' defaults.
  BatchGenerator(Engine& engine, int max_batch);
  // Throws grok::Error on a batch size below 1, a block size outside
  // 1..context, or a budget below one block.
  BatchGenerator(Engine& engine, BatchOptions options);
  ~BatchGenerator();

  // Queues a request and returns its id. Throws grok::Error, queuing
  // nothing, when the request cannot run (empty prompt, context exceeded,
  // more KV memory than the whole budget).
  int64_t submit(BatchRequest request);
  // Drops a queued or running request (its cache is freed at once) and calls
  // its on_done with finish_reason "cancelled". Unknown ids are ignored.
  void cancel(int64_t id);

  // One forward pass: admits waiting requests up to max_batch (their whole
  // prompts go in this pass), advances every running one by a token, and
  // retires the finished. Returns whether work remains.
  bool step();

  size_t running() const { return running_.size(); }
  size_t waiting() const { return waiting_.size(); }

  // KV memory, for /metrics (from the thread that drives it, like the rest).
  KvMemoryStats kv_stats() const;
  int64_t kv_blocks_total() const { return pool_.total(); }
  int64_t kv_blocks_used() const { return kv_stats().blocks_used; }
  int64_t kv_blocks_free() const { return pool_.free(); }
  int64_t prefix_hit_tokens() const { return prefix_hit_tokens_; }
  // Whether prefix reuse is on (asked for, and exact with this model).
  bool prefix_cache_enabled() const { return prefix_ != nullptr; }
  // Tokens routed to each expert of each layer, added up in `counts` by
  // every pass from now on (Transformer::set_expert_counts); null stops.
  void set_expert_counts(std::vector<int64_t>* counts) { transformer_.set_expert_counts(counts); }

 private:
  struct Entry {
    int64_t id;
    BatchRequest request;
    std::unique_ptr<Generation> generation;
  };
  int64_t blocks_for(int64_t positions) const;
  bool try_admit(Entry& e);  // gives it a cache if its blocks fit now
  void publish(Entry& e);    // its full computed blocks into the prefix cache
  void retire(Entry& e, const char* reason_override);

  Engine& engine_;
  Transformer transformer_;  // its own scratch, apart from the engine's
  int max_batch_;
  KvBlockPool pool_;
  std::unique_ptr<PrefixCache> prefix_;  // null when off
  int64_t prefix_hits_ = 0, prefix_hit_tokens_ = 0;
  int64_t next_id_ = 1;
  std::deque<Entry> waiting_;
  std::vector<Entry> running_;
  std::vector<SequenceStep> steps_;
  std::vector<float> logits_;
};

}  // namespace grok
