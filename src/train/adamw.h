// AdamW with decoupled weight decay (as torch.optim.AdamW), linear warm-up
// then cosine decay of the learning rate, and clipping by the global
// gradient norm (docs/training.md, steps 5-7).
#pragma once

#include <cstdint>
#include <vector>

#include "train/param_layout.h"

namespace grok {

class ThreadPool;

struct AdamWOptions {
  double lr = 1e-3, min_lr = 1e-4;
  int64_t warmup = 100, steps = 1000;  // steps: where the cosine ends
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  double clip = 1.0;  // 0: no clipping
};

// The learning rate of step t (1-based).
double learning_rate(const AdamWOptions& o, int64_t t);

template <class S>
class AdamW {
 public:
  explicit AdamW(int64_t n) : m(size_t(n), S(0)), v(size_t(n), S(0)) {}
  // One step: clips `grads` in place, updates `params`, returns the
  // gradient's global L2 norm before clipping. On the pool when given; the
  // result does not depend on the thread count.
  double update(S* params, S* grads, const ParamLayout& layout, const AdamWOptions& o, ThreadPool* pool = nullptr);

  std::vector<S> m, v;  // first and second moments
  int64_t step = 0;     // updates done
};

}  // namespace grok
