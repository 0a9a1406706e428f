// A fixed set of worker threads, passed explicitly to whatever needs it (no
// global pool). parallel_for splits [0, n) into contiguous chunks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace grok {

class ThreadPool {
 public:
  // Decode makes about a hundred parallel_for calls per token, each a few
  // tens of microseconds of work. Waking a thread blocked in the kernel costs
  // about as much on a virtual machine (measured 40-50 us per call), so idle
  // threads spin for `spin` before they block; the bound keeps an idle pool
  // from burning cores for longer than a short pause between calls.
  static constexpr std::chrono::microseconds kDefaultSpin{200};

  // n_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int n_threads = 0, std::chrono::microseconds spin = kDefaultSpin);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }  // the caller works too

  // Calls fn(begin, end, thread_index) over chunks covering [0, n); returns
  // when all are done. thread_index < size() (for per-thread scratch).
  // An exception thrown by fn is rethrown here. Not reentrant: one caller at
  // a time, and fn must not call parallel_for on the same pool.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

 private:
  void worker_loop(int index);
  void run_chunks(int thread_index);

  std::vector<std::thread> workers_;
  const std::chrono::microseconds spin_;
  // The current job, published by the release store to generation_.
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};      // next chunk start
  std::atomic<uint32_t> generation_{0};  // bumped per job (and to stop)
  std::atomic<uint32_t> busy_{0};        // workers still inside the current job
  std::atomic<int> sleepers_{0};         // threads blocked (not spinning) on an atomic
  std::atomic<bool> stop_{false};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

}  // namespace grok
