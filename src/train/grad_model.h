// The whole model's loss and gradient for a batch (docs/training.md): the
// forward pass of SPEC.md with the activations each backward function needs
// saved, the loss (cross-entropy + load-balancing), then the backward pass
// layer by layer. With checkpointing only each layer's input is kept and
// the layer is recomputed in the backward pass (same arithmetic, so the
// same gradient bit for bit).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"
#include "train/layer_ops.h"
#include "train/param_layout.h"

namespace grok {

class ThreadPool;

// rows × (seq + 1) token ids: each row's inputs and, shifted by one, targets.
struct TokenBatch {
  int64_t rows = 0, seq = 0;
  std::vector<int32_t> tokens;
};

struct LossOptions {
  double lb_coef = 0.01;      // load-balancing loss coefficient (0: off)
  double router_noise = 0;    // std of the Gaussian added to router logits (0: off)
  uint64_t noise_seed = 0;    // the noise is a function of (seed, layer, token, expert)
  bool checkpointing = false; // recompute each layer in the backward pass
};

struct LossReport {
  double loss = 0;      // ce + lb_coef·lb
  double ce = 0;        // mean over scored tokens
  double lb = 0;        // Σ over layers of the load-balancing loss
  double ce_sum = 0;    // Σ over scored tokens (for averaging several batches)
  int64_t scored = 0;   // tokens whose prediction is scored
  std::vector<int64_t> expert_tokens;  // [layer][expert]: valid tokens routed there
};

template <class S>
class GradModel {
 public:
  GradModel(const GrokConfig& c, ThreadPool* pool);
  ~GradModel();
  const ParamLayout& layout() const { return layout_; }

  // The loss at `params`; when `grads` is given, adds the gradient of the
  // loss into it (callers zero it first).
  LossReport run(const S* params, S* grads, const TokenBatch& batch, const LossOptions& o);

 private:
  struct Acts;
  void layer_forward(int64_t l, const S* params, S* x, Acts& a, const LossOptions& o, LossReport& r);
  void layer_backward(int64_t l, const S* params, S* grads, Acts& a, S* dx);

  GrokConfig c_;
  ParamLayout layout_;
  ThreadPool* pool_;
  // Per batch: sizes, inputs, masks.
  int64_t rows_ = 0, seq_ = 0, n_ = 0;
  std::vector<int32_t> inputs_, targets_, pos_;
  RopeTable<S> rope_;  // for positions below seq_, rebuilt when seq_ grows
  std::vector<uint8_t> valid_, scored_;
  int64_t n_valid_ = 0;
  double lb_coef_ = 0;
  std::vector<std::unique_ptr<Acts>> acts_;  // one per layer, or one shared when checkpointing
  std::vector<std::vector<S>> layer_inputs_;  // checkpointing: each layer's input
  std::vector<S> scratch_;
  std::vector<S> x_, h_, rstd_f_, logits_, dh_, dx_;
  // The backward pass's per-layer buffers, kept across layers and steps
  // rather than allocated per layer.
  struct BackwardBuffers {
    std::vector<S> dmoe, dxmid, dm, dp, dy, du, dh1, dhv, dme, dout, datt, dq, dk, dv, da;
  } b_;
};

}  // namespace grok
