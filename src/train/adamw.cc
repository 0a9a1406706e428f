#include "train/adamw.h"

#include <algorithm>
#include <cmath>

#include "train/parallel.h"

namespace grok {

double learning_rate(const AdamWOptions& o, int64_t t) {
  if (o.warmup > 0 && t <= o.warmup) return o.lr * double(t) / double(o.warmup);
  if (o.steps <= o.warmup) return o.lr;
  const double progress = std::min(1.0, double(t - o.warmup) / double(o.steps - o.warmup));
  return o.min_lr + (o.lr - o.min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// The squared norm sums fixed blocks of kNormBlock in order: the same sum
// on any number of threads.
constexpr int64_t kNormBlock = 1 << 16;

template <class S>
double AdamW<S>::update(S* params, S* grads, const ParamLayout& layout, const AdamWOptions& o, ThreadPool* pool) {
  const int64_t n = layout.total();
  const int64_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> block_ss(size_t(blocks), 0.0);
  for_each_range(pool, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      double ss = 0;
      for (int64_t i = blk * kNormBlock; i < std::min(n, (blk + 1) * kNormBlock); ++i)
        ss += double(grads[i]) * double(grads[i]);
      block_ss[size_t(blk)] = ss;
    }
  });
  double ss = 0;
  for (double b : block_ss) ss += b;
  const double norm = std::sqrt(ss);
  const S clip = o.clip > 0 && norm > o.clip ? S(o.clip / (norm + 1e-6)) : S(1);
  ++step;
  const double lr = learning_rate(o, step);
  const double bc1 = 1.0 - std::pow(o.beta1, double(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, double(step)));
  const S b1 = S(o.beta1), b2 = S(o.beta2), one = S(1);
  const S step_size = S(lr / bc1), decay = S(1.0 - lr * o.weight_decay);
  const S inv_bc2_sqrt = S(1.0 / bc2_sqrt), eps = S(o.eps);
  for (const ParamTensor& t : layout.tensors()) {
    S* p = params + t.offset;
    S* g = grads + t.offset;
    S* mm = m.data() + t.offset;
    S* vv = v.data() + t.offset;
    for_each_range(pool, t.size, 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        if (clip != S(1)) g[i] *= clip;
        if (t.decay) p[i] *= decay;
        mm[i] = b1 * mm[i] + (one - b1) * g[i];
        vv[i] = b2 * vv[i] + (one - b2) * g[i] * g[i];
        p[i] -= step_size * mm[i] / (std::sqrt(vv[i]) * inv_bc2_sqrt + eps);
      }
    });
  }
  return norm;
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace grok
