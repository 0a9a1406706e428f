// The training loop of `grok train`: batches drawn from a token stream,
// the loss and gradient (grad_model.h), AdamW (adamw.h), a held-out loss
// and the experts' load every few steps, and checkpoints: the model as a
// GGUF every command runs (fp32, with its vocabulary) and, beside it, the
// optimizer's state (OUT.adamw), both written atomically, so a run resumes
// bit for bit where a checkpoint left it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "io/gguf.h"
#include "model/config.h"
#include "train/adamw.h"
#include "train/grad_model.h"

namespace grok {

struct TrainOptions {
  int64_t steps = 1000;
  int64_t batch = 8, seq = 256;  // rows per step, positions per row
  AdamWOptions adam;             // adam.steps is set to steps
  double lb_coef = 0.01;
  double router_noise = 0;
  bool checkpointing = false;    // recompute layers in the backward pass
  uint64_t seed = 1;             // initial weights, batches, router noise
  int64_t eval_every = 100;      // held-out loss and expert load (0: only at the end)
  int64_t save_every = 0;        // checkpoints (0: at every evaluation)
  int64_t eval_windows = 64;     // held-out windows of seq tokens evaluated (at most)
  std::string out;               // OUT.gguf; the optimizer state goes to OUT.gguf.adamw
  std::string name = "grok-trained";
  // Stored in the optimizer state as train.options (the CLI's JSON of how
  // the run was started, read back by --resume).
  std::string run_info;
};

struct StepReport {
  int64_t step = 0, steps = 0;
  double loss = 0, ce = 0, lb = 0, lr = 0, grad_norm = 0;
  double seconds = 0;  // this step's
};

struct EvalReport {
  int64_t step = 0;
  double loss = 0;        // mean cross-entropy of the held-out tokens
  int64_t tokens = 0;     // scored
  int64_t layers = 0, experts = 0;
  std::vector<int64_t> expert_tokens;  // [layer][expert]
  // (layer, expert) with less than 1% of the routed tokens of its layer.
  std::vector<std::pair<int64_t, int64_t>> dead;
};

class Trainer {
 public:
  // vocabulary: tokenizer.ggml.* keys written into every checkpoint.
  Trainer(const GrokConfig& c, const TrainOptions& o, std::vector<int32_t> train_tokens,
          std::vector<int32_t> eval_tokens, std::vector<std::pair<std::string, GgufValue>> vocabulary,
          ThreadPool& pool);

  void init_random();
  // Parameters from an fp32 GGUF of this config (fine-tuning, or resuming),
  // and, when `with_optimizer`, AdamW's state from path + ".adamw".
  void load(const std::string& path, bool with_optimizer);

  // Steps from step()+1 to options.steps (or to `until`, as a run that is
  // stopped there); evaluations and checkpoints on the way and at the end.
  void run(const std::function<void(const StepReport&)>& on_step,
           const std::function<void(const EvalReport&)>& on_eval,
           const std::function<void(const std::string&)>& on_save, int64_t until = -1);

  EvalReport evaluate();
  void save(const std::string& path);  // model, then path + ".adamw"
  // One step's batch (deterministic in seed and step).
  TokenBatch batch(int64_t step) const;

  int64_t step() const { return adam_.step; }
  const std::vector<float>& params() const { return params_; }
  std::vector<float>& params() { return params_; }  // e.g. to start from a chosen state
  const ParamLayout& layout() const { return model_.layout(); }

 private:
  GrokConfig c_;
  TrainOptions o_;
  std::vector<int32_t> train_, eval_;
  std::vector<std::pair<std::string, GgufValue>> vocabulary_;
  ThreadPool& pool_;
  GradModel<float> model_;
  std::vector<float> params_, grads_;
  AdamW<float> adam_;
};

}  // namespace grok
