// Element-wise and row-wise loops of training on the thread pool.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/thread_pool.h"

namespace grok {

// fn(begin, end) over [0, n) in chunks of at least `grain` on the pool
// (null, or too little work: here, in one call). For loops whose results do
// not depend on the split: each index written by one call.
template <class Fn>
void for_each_range(ThreadPool* pool, int64_t n, int64_t grain, Fn fn) {
  if (pool && pool->size() > 1 && n >= 2 * grain)
    pool->parallel_for((n + grain - 1) / grain,
                       [&](int64_t b, int64_t e, int) { fn(b * grain, std::min(n, e * grain)); });
  else
    fn(0, n);
}

}  // namespace grok
