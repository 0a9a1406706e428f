// Continuous batching: generations join and leave a running batch between
// forward passes, and one pass serves them all (Transformer::forward_batch).
// A request's tokens are those Engine::generate gives it alone with the same
// options, whatever else is running (the kernels give a token the same
// result whatever its batch; see forward_batch for the one exception).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/generation.h"

namespace grok {

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
  BatchGenerator(Engine& engine, int max_batch);

  // Queues a request and returns its id. Throws grok::Error, queuing
  // nothing, when the request cannot run (empty prompt, context exceeded).
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

 private:
  struct Entry {
    int64_t id;
    BatchRequest request;
    std::unique_ptr<Generation> generation;
  };
  void retire(Entry& e, const char* reason_override);

  Engine& engine_;
  Transformer transformer_;  // its own scratch, apart from the engine's
  int max_batch_;
  int64_t next_id_ = 1;
  std::deque<Entry> waiting_;
  std::vector<Entry> running_;
  std::vector<SequenceStep> steps_;
  std::vector<float> logits_;
};

}  // namespace grok
