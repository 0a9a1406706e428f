#include "server/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace grok::server {

using Clock = std::chrono::steady_clock;
constexpr const char* kShuttingDown = "the server is shutting down";

bool Job::next(JobEvent& event) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !events_.empty() || unfinished_ == 0; });
  if (events_.empty()) return false;
  event = std::move(events_.front());
  events_.pop_front();
  return true;
}

Job::Wait Job::next_for(JobEvent& event, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty() || unfinished_ == 0; })) return Wait::timeout;
  if (events_.empty()) return Wait::done;
  event = std::move(events_.front());
  events_.pop_front();
  return Wait::event;
}

void Job::push(JobEvent event) {
  {
    std::lock_guard lock(mu_);
    if (event.finished) --unfinished_;
    events_.push_back(std::move(event));
  }
  cv_.notify_all();
}

namespace {
BatchOptions batch_options(const SchedulerOptions& o) {
  BatchOptions b;
  b.max_batch = o.max_batch;
  b.kv_budget_tokens = o.kv_budget_tokens;
  b.kv_block_tokens = o.kv_block_tokens;
  b.prefix_cache = o.prefix_cache;
  return b;
}
}  // namespace

Scheduler::Scheduler(Engine& engine, Metrics& metrics, SchedulerOptions options)
    : metrics_(metrics), options_(options), batch_(engine, batch_options(options)),
      n_experts_(int(engine.model().config.n_experts)) {
  if (options.max_queue < 0) fail("the queue length ", options.max_queue, " must not be negative");
  batch_.set_expert_counts(&expert_tokens_);
  publish_memory();  // before the driver thread exists, so /metrics has it from the start
  driver_ = std::thread([this] { drive(); });
}

void Scheduler::publish_memory() {
  metrics_.set_kv_memory(batch_.kv_stats());
  metrics_.set_expert_tokens(expert_tokens_, n_experts_);
}

Scheduler::~Scheduler() { stop(); }

std::shared_ptr<Job> Scheduler::submit(std::vector<SequenceSpec> sequences) {
  auto job = std::make_shared<Job>();
  const int64_t n = int64_t(sequences.size());
  job->specs_ = std::move(sequences);
  job->arrived_ = Clock::now();
  job->unfinished_ = size_t(n);
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw ShuttingDown(kShuttingDown);
    if (in_flight_ + n > capacity())
      throw QueueFull(cat("the server is busy: ", in_flight_, " sequences are waiting or running (at most ",
                          capacity(), "); retry later"));
    in_flight_ += n;
    commands_.push_back({Command::Kind::submit, job});
  }
  wake_.notify_one();
  std::unique_lock lock(job->mu_);
  job->cv_.wait(lock, [&] { return job->state_ != Job::State::pending; });
  if (job->state_ == Job::State::rejected) {
    if (job->shutdown_) throw ShuttingDown(job->error_);
    throw Error(job->error_);
  }
  return job;
}

void Scheduler::cancel(const std::shared_ptr<Job>& job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;  // stop() cancels everything anyway
    commands_.push_back({Command::Kind::cancel, job});
  }
  wake_.notify_one();
}

int64_t Scheduler::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_.wait_for(lock, timeout, [&] { return in_flight_ == 0; });
}

void Scheduler::set_paused(bool paused) {
  {
    std::lock_guard lock(mu_);
    paused_ = paused;
  }
  wake_.notify_one();
}

void Scheduler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (driver_.joinable()) driver_.join();
}

std::string Scheduler::failure() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void Scheduler::drive() {
  for (;;) {
    const bool has_work = batch_.running() + batch_.waiting() > 0;
    std::deque<Command> commands;
    bool paused = false, stopping = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !commands_.empty() || (has_work && !paused_); });
      commands.swap(commands_);
      paused = paused_;
      stopping = stopping_;
    }
    for (Command& c : commands) {
      if (c.kind == Command::Kind::cancel)
        apply_cancel(c.job);
      else if (stopping)
        reject(c.job, kShuttingDown, 0);
      else
        apply_submit(c.job);
    }
    if (stopping) {
      // Cancel what is left: each sequence's on_done reaches its channel.
      for (std::shared_ptr<Job> job : std::vector(active_)) apply_cancel(job);
      return;
    }
    if (paused || batch_.running() + batch_.waiting() == 0) {
      metrics_.set_queue(int64_t(batch_.waiting()), int64_t(batch_.running()));
      publish_memory();  // cancels free memory too
      continue;
    }
    step_tokens_ = 0;
    const auto start = Clock::now();
    try {
      batch_.step();
    } catch (const std::exception& e) {
      // No pass can run any more (under mpirun: a rank stopped). Stop as
      // stop() does: new jobs are refused, running ones cancelled.
      {
        std::lock_guard lock(mu_);
        stopping_ = true;
        failure_ = e.what();
        commands.clear();
        commands.swap(commands_);
      }
      for (Command& c : commands)
        if (c.kind == Command::Kind::submit) reject(c.job, kShuttingDown, 0);
      for (std::shared_ptr<Job> job : std::vector(active_)) apply_cancel(job);
      return;
    }
    metrics_.record_step(int64_t(batch_.waiting()), int64_t(batch_.running()), step_tokens_,
                         std::chrono::duration<double>(Clock::now() - start).count());
    publish_memory();
  }
}

void Scheduler::reject(const std::shared_ptr<Job>& job, const std::string& why, size_t queued) {
  {
    std::lock_guard lock(job->mu_);
    job->state_ = Job::State::rejected;
    job->error_ = why;
    job->shutdown_ = queued == 0 && why == kShuttingDown;
  }
  // Sequences already queued finish as cancelled (on_finished ignores them); the rest never ran.
  for (size_t i = 0; i < queued; ++i) batch_.cancel(job->batch_ids_[i]);
  {
    std::lock_guard lock(mu_);
    in_flight_ -= int64_t(job->specs_.size() - queued);
    if (in_flight_ == 0) idle_.notify_all();
  }
  std::lock_guard lock(job->mu_);
  job->unfinished_ = 0;
  job->events_.clear();
  job->cv_.notify_all();
}

void Scheduler::apply_submit(const std::shared_ptr<Job>& job) {
  job->got_first_token_.assign(job->specs_.size(), false);
  for (size_t i = 0; i < job->specs_.size(); ++i) {
    const int sequence = int(i);
    BatchRequest request{job->specs_[i].prompt, job->specs_[i].options,
                         [this, job, sequence](const TokenEvent& ev) { on_token(job, sequence, ev); },
                         [this, job, sequence](const GenerateResult& r) { on_finished(job, sequence, r); }};
    try {
      job->batch_ids_.push_back(batch_.submit(std::move(request)));
    } catch (const std::exception& e) {
      reject(job, e.what(), i);
      return;
    }
  }
  active_.push_back(job);
  std::lock_guard lock(job->mu_);
  job->state_ = Job::State::accepted;
  job->cv_.notify_all();
}

void Scheduler::on_token(const std::shared_ptr<Job>& job, int sequence, const TokenEvent& ev) {
  if (ev.id >= 0 && !ev.prompt) {
    ++step_tokens_;
    if (!job->got_first_token_[size_t(sequence)]) {
      job->got_first_token_[size_t(sequence)] = true;
      metrics_.observe_time_to_first_token(std::chrono::duration<double>(Clock::now() - job->arrived_).count());
    }
  }
  job->push(JobEvent{sequence, false, ev, {}});
}

void Scheduler::apply_cancel(const std::shared_ptr<Job>& job) {
  if (std::find(active_.begin(), active_.end(), job) == active_.end()) return;  // finished already
  const std::vector<int64_t> ids = job->batch_ids_;
  for (int64_t id : ids) batch_.cancel(id);  // ids of finished sequences are ignored
}

void Scheduler::on_finished(const std::shared_ptr<Job>& job, int sequence, const GenerateResult& result) {
  bool rejected;
  {
    std::lock_guard lock(job->mu_);
    rejected = job->state_ == Job::State::rejected;
  }
  if (!rejected) {
    metrics_.count_tokens(int64_t(result.prompt_ids.size()), int64_t(result.ids.size()));
    if (result.finish_reason == "cancelled") metrics_.count_cancelled();
    job->push(JobEvent{sequence, true, {}, result});
  }
  bool job_done;
  {
    std::lock_guard lock(job->mu_);
    job_done = rejected || job->unfinished_ == 0;
  }
  if (job_done && !rejected) std::erase(active_, job);
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

}  // namespace grok::server
