#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace grok {
namespace {

void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Waits until pred() holds: spins for `spin`, then blocks on `word` (which
// must change, with a notify, whenever pred() may become true).
template <typename T, typename Pred>
void spin_then_wait(std::chrono::microseconds spin, const std::atomic<T>& word, std::atomic<int>& sleepers,
                    Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + spin;
  for (int i = 0; !pred(); ++i) {
    if ((i & 63) == 0 && std::chrono::steady_clock::now() >= deadline) {
      while (true) {
        const T seen = word.load();
        if (pred()) return;
        // Counted before waiting, so a notifier that reads sleepers == 0 has
        // already changed `word`, and wait() returns at once.
        sleepers.fetch_add(1);
        word.wait(seen);
        sleepers.fetch_sub(1);
      }
    }
    cpu_relax();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads, std::chrono::microseconds spin) : spin_(spin) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(int thread_index) {
  for (;;) {
    const int64_t begin = next_.fetch_add(chunk_, std::memory_order_relaxed);
    if (begin >= job_n_) return;
    try {
      (*job_)(begin, std::min(begin + chunk_, job_n_), thread_index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu_);
      if (!error_) error_ = std::current_exception();
      next_.store(job_n_, std::memory_order_relaxed);  // skip the chunks not yet started
    }
  }
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;
  for (;;) {
    spin_then_wait(spin_, generation_, sleepers_, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_chunks(index);
    if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1 && sleepers_.load() > 0) busy_.notify_all();
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  // A few chunks per thread balance uneven work with few atomic operations.
  chunk_ = std::max<int64_t>(1, n / (int64_t(size()) * 4));
  next_.store(0, std::memory_order_relaxed);
  error_ = nullptr;
  busy_.store(uint32_t(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes the job
  if (sleepers_.load() > 0) generation_.notify_all();
  run_chunks(0);
  spin_then_wait(spin_, busy_, sleepers_, [&] { return busy_.load(std::memory_order_acquire) == 0; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

}  // namespace grok
