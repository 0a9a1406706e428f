// Owns the BatchGenerator and the one thread that drives it. HTTP handler
// threads post submit and cancel commands into a queue and read their tokens
// from a per-job channel; the driver thread applies the commands between
// forward passes and sleeps on a condition variable when there is nothing to do.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/batch_generator.h"
#include "server/metrics.h"

namespace grok::server {

// No room: the caller answers 429 (or 503 while shutting down).
struct QueueFull : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShuttingDown : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One sequence to generate: a prompt and its options.
struct SequenceSpec {
  std::vector<int32_t> prompt;
  GenerateOptions options;
};

// What a job's channel delivers, in order, for each of its sequences: tokens,
// then one `finished` event carrying the result.
struct JobEvent {
  int sequence = 0;  // index into the job's SequenceSpecs
  bool finished = false;
  TokenEvent token;       // when !finished
  GenerateResult result;  // when finished; finish_reason "cancelled" if cancelled
};

// The sequences of one HTTP request (n choices, several prompts), and the
// thread-safe channel between the driver thread and the handler thread.
class Job {
 public:
  // Blocks until an event arrives; false once every sequence has finished
  // and its events have been read.
  bool next(JobEvent& event);
  // Like next, but gives up after `timeout` so the caller can check on its
  // client in between.
  enum class Wait { event, timeout, done };
  Wait next_for(JobEvent& event, std::chrono::milliseconds timeout);
  size_t size() const { return specs_.size(); }

 private:
  friend class Scheduler;
  enum class State { pending, accepted, rejected };
  void push(JobEvent event);

  std::vector<SequenceSpec> specs_;
  std::chrono::steady_clock::time_point arrived_;
  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::pending;
  std::string error_;  // why the job was rejected
  bool shutdown_ = false;  // rejected because the server is stopping
  std::deque<JobEvent> events_;
  size_t unfinished_ = 0;
  // Driver thread only.
  std::vector<int64_t> batch_ids_;
  std::vector<bool> got_first_token_;
};

struct SchedulerOptions {
  int max_batch = 8;  // sequences sharing a forward pass
  int max_queue = 64; // sequences waiting beyond those; more gets QueueFull
  // KV memory (BatchOptions): the budget in tokens (0: the default), the
  // block size, and whether prompts reuse cached prefixes.
  int64_t kv_budget_tokens = 0;
  int kv_block_tokens = 16;
  bool prefix_cache = true;
};

class Scheduler {
 public:
  Scheduler(Engine& engine, Metrics& metrics, SchedulerOptions options);
  ~Scheduler();  // stop()s
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the sequences (all or none) and waits until the driver thread has
  // accepted them. Throws QueueFull when they do not fit, ShuttingDown after
  // stop(), and grok::Error when a sequence cannot run (the BatchGenerator's message).
  std::shared_ptr<Job> submit(std::vector<SequenceSpec> sequences);
  // Cancels the job's unfinished sequences; their `finished` events follow.
  void cancel(const std::shared_ptr<Job>& job);

  // Sequences submitted and not finished (waiting or running).
  int64_t in_flight() const;
  int64_t capacity() const { return int64_t(options_.max_batch) + options_.max_queue; }
  // Waits until nothing is in flight; false if `timeout` passed first.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Holds back forward passes (commands are still applied): tests use it to
  // fill the queue deterministically.
  void set_paused(bool paused);
  // Refuses new jobs, cancels every running and waiting sequence (their
  // channels get `finished` events) and joins the driver thread. Idempotent.
  void stop();
  // Why a forward pass failed, after which the scheduler stopped as stop()
  // does (under mpirun: the other ranks went away); "" while all is well.
  std::string failure() const;

 private:
  struct Command {
    enum class Kind { submit, cancel } kind;
    std::shared_ptr<Job> job;
  };
  void drive();
  void apply_submit(const std::shared_ptr<Job>& job);
  void apply_cancel(const std::shared_ptr<Job>& job);
  // Marks the job rejected, cancelling the first `queued` of its sequences.
  void reject(const std::shared_ptr<Job>& job, const std::string& why, size_t queued);
  void on_token(const std::shared_ptr<Job>& job, int sequence, const TokenEvent& ev);
  void on_finished(const std::shared_ptr<Job>& job, int sequence, const GenerateResult& result);
  // The KV memory and expert counts into Metrics (which HTTP threads read).
  void publish_memory();

  Metrics& metrics_;
  SchedulerOptions options_;
  BatchGenerator batch_;  // driver thread only
  int n_experts_;         // per layer

  mutable std::mutex mu_;
  std::condition_variable wake_;   // the driver: commands, unpause, stop
  std::condition_variable idle_;   // wait_idle
  std::deque<Command> commands_;
  int64_t in_flight_ = 0;
  bool paused_ = false, stopping_ = false;
  std::string failure_;

  std::vector<std::shared_ptr<Job>> active_;  // driver thread only: accepted jobs not yet finished
  int64_t step_tokens_ = 0;                   // driver thread only: tokens the current pass generated
  std::vector<int64_t> expert_tokens_;        // driver thread only: the passes' expert counts
  std::thread driver_;
};

}  // namespace grok::server
