#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/gguf_writer.h"
#include "model/gguf_export.h"
#include "model/grok_gguf.h"
#include "train/parallel.h"

namespace grok {
namespace {

// Rows of the flat parameter array as a TensorSource for the GGUF writer.
class ParamSource : public TensorSource {
 public:
  ParamSource(const ParamLayout& l, const float* p) : layout_(l), p_(p) {}
  void rows(const GrokTensor& t, int64_t begin, int64_t end, float* out) const override {
    const ParamTensor* pt = layout_.find(t.name);
    std::memcpy(out, p_ + pt->offset + begin * t.cols(), size_t((end - begin) * t.cols()) * sizeof(float));
  }

 private:
  const ParamLayout& layout_;
  const float* p_;
};

const char* kStepKey = "train.step";

}  // namespace

Trainer::Trainer(const GrokConfig& c, const TrainOptions& o, std::vector<int32_t> train_tokens,
                 std::vector<int32_t> eval_tokens, std::vector<std::pair<std::string, GgufValue>> vocabulary,
                 ThreadPool& pool)
    : c_(c),
      o_(o),
      train_(std::move(train_tokens)),
      eval_(std::move(eval_tokens)),
      vocabulary_(std::move(vocabulary)),
      pool_(pool),
      model_(c, &pool),
      params_(size_t(model_.layout().total()), 0.f),
      grads_(size_t(model_.layout().total()), 0.f),
      adam_(model_.layout().total()) {
  o_.adam.steps = o_.steps;
  if (o_.batch <= 0 || o_.seq <= 0) fail("train: --batch and --seq must be positive");
  if (o_.seq > c_.context_length)
    fail("train: --seq ", o_.seq, " is longer than the model's context of ", c_.context_length, " tokens");
  if (int64_t(train_.size()) < o_.seq + 1)
    fail("train: the training text has ", train_.size(), " tokens; --seq ", o_.seq, " needs at least ", o_.seq + 1);
  for (int32_t t : train_)
    if (t < 0 || t >= c_.vocab_size) fail("train: token id ", t, " outside the model's vocabulary");
}

void Trainer::init_random() { init_parameters(model_.layout(), o_.seed, params_.data()); }

void Trainer::load(const std::string& path, bool with_optimizer) {
  const GgufFile g = GgufFile::open(path);
  for (const ParamTensor& t : model_.layout().tensors()) {
    const TensorInfo& info = g.tensors().get(t.tensor.name, path);
    if (info.dtype != DType::F32 || info.numel() != t.size)
      fail(path, ": tensor '", t.tensor.name, "' is ", dtype_name(info.dtype), " ", info.shape_str(),
           "; training needs it fp32 with ", t.size, " elements (convert the model with grok quantize ... f32)");
    std::memcpy(params_.data() + t.offset, info.data, size_t(t.size) * sizeof(float));
  }
  if (!with_optimizer) return;
  const std::string opt_path = path + ".adamw";
  if (!std::filesystem::exists(opt_path))
    fail(opt_path, ": the optimizer state is missing (it is written beside every checkpoint)");
  const GgufFile s = GgufFile::open(opt_path);
  const int64_t step = s.get_int(kStepKey).value_or(-1);
  if (step != g.get_int(kStepKey).value_or(-2))
    fail(opt_path, ": optimizer state of step ", step, " does not match ", path, " (step ",
         g.get_int(kStepKey).value_or(-1), ")");
  for (const ParamTensor& t : model_.layout().tensors())
    for (auto [prefix, dst] : {std::pair{"m.", &adam_.m}, std::pair{"v.", &adam_.v}}) {
      const TensorInfo& info = s.tensors().get(prefix + t.tensor.name, opt_path);
      if (info.dtype != DType::F32 || info.numel() != t.size)
        fail(opt_path, ": tensor '", prefix, t.tensor.name, "' has the wrong type or size");
      std::memcpy(dst->data() + t.offset, info.data, size_t(t.size) * sizeof(float));
    }
  adam_.step = step;
}

TokenBatch Trainer::batch(int64_t step) const {
  TokenBatch b;
  b.rows = o_.batch;
  b.seq = o_.seq;
  b.tokens.resize(size_t(b.rows * (b.seq + 1)));
  const uint64_t span = uint64_t(train_.size()) - uint64_t(b.seq);  // starts in [0, span)
  for (int64_t r = 0; r < b.rows; ++r) {
    const uint64_t start = mix64(mix64(o_.seed ^ 0x5eedULL) ^ mix64(uint64_t(step)) ^ uint64_t(r)) % span;
    std::memcpy(b.tokens.data() + r * (b.seq + 1), train_.data() + start, size_t(b.seq + 1) * sizeof(int32_t));
  }
  return b;
}

EvalReport Trainer::evaluate() {
  EvalReport e;
  e.step = step();
  e.layers = c_.n_layers;
  e.experts = c_.n_experts;
  e.expert_tokens.assign(size_t(c_.n_layers * c_.n_experts), 0);
  const int64_t windows = std::min<int64_t>(o_.eval_windows, (int64_t(eval_.size()) - 1) / o_.seq);
  double ce_sum = 0;
  for (int64_t w0 = 0; w0 < windows; w0 += o_.batch) {
    TokenBatch b;
    b.rows = std::min(o_.batch, windows - w0);
    b.seq = o_.seq;
    for (int64_t w = w0; w < w0 + b.rows; ++w)
      b.tokens.insert(b.tokens.end(), eval_.begin() + w * o_.seq, eval_.begin() + w * o_.seq + o_.seq + 1);
    LossOptions lo;
    lo.lb_coef = 0;
    const LossReport r = model_.run(params_.data(), nullptr, b, lo);
    ce_sum += r.ce_sum;
    e.tokens += r.scored;
    for (size_t i = 0; i < r.expert_tokens.size(); ++i) e.expert_tokens[i] += r.expert_tokens[i];
  }
  e.loss = e.tokens > 0 ? ce_sum / double(e.tokens) : 0.0;
  for (int64_t l = 0; l < c_.n_layers; ++l) {
    int64_t total = 0;
    for (int64_t x = 0; x < c_.n_experts; ++x) total += e.expert_tokens[size_t(l * c_.n_experts + x)];
    for (int64_t x = 0; x < c_.n_experts; ++x)
      if (total > 0 && double(e.expert_tokens[size_t(l * c_.n_experts + x)]) < 0.01 * double(total))
        e.dead.emplace_back(l, x);
  }
  return e;
}

void Trainer::save(const std::string& path) {
  GgufWriter meta;
  set_grok_metadata(meta, c_, o_.name, DType::F32);
  for (const auto& [k, v] : vocabulary_) meta.set(k, v);
  meta.set_u32(kStepKey, uint32_t(step()));
  std::vector<ExportTensor> tensors;
  for (const ParamTensor& t : model_.layout().tensors()) tensors.push_back({t.tensor, DType::F32});
  write_gguf_model(path, std::move(meta), tensors, ParamSource(model_.layout(), params_.data()), pool_, {});

  // AdamW's moments, as one GGUF of m.NAME / v.NAME tensors.
  GgufWriter opt;
  opt.set_u32(kStepKey, uint32_t(step()));
  opt.set_string("train.options", o_.run_info);
  for (const ParamTensor& t : model_.layout().tensors())
    for (auto [prefix, src] : {std::pair{"m.", &adam_.m}, std::pair{"v.", &adam_.v}}) {
      std::vector<std::byte> bytes(size_t(t.size) * sizeof(float));
      std::memcpy(bytes.data(), src->data() + t.offset, bytes.size());
      opt.add_tensor(prefix + t.tensor.name, DType::F32, t.tensor.shape, std::move(bytes));
    }
  opt.write(path + ".adamw");
}

void Trainer::run(const std::function<void(const StepReport&)>& on_step,
                  const std::function<void(const EvalReport&)>& on_eval,
                  const std::function<void(const std::string&)>& on_save, int64_t until) {
  using clock = std::chrono::steady_clock;
  const int64_t save_every = o_.save_every > 0 ? o_.save_every : o_.eval_every;
  const int64_t last_step = until >= 0 ? std::min(until, o_.steps) : o_.steps;
  while (step() < last_step) {
    const int64_t t = step() + 1;
    const auto t0 = clock::now();
    LossOptions lo;
    lo.lb_coef = o_.lb_coef;
    lo.router_noise = o_.router_noise;
    lo.noise_seed = mix64(o_.seed ^ 0x4015eULL) ^ mix64(uint64_t(t));
    lo.checkpointing = o_.checkpointing;
    for_each_range(&pool_, int64_t(grads_.size()), 1 << 16,
                   [&](int64_t b, int64_t e) { std::fill(grads_.data() + b, grads_.data() + e, 0.f); });
    const LossReport r = model_.run(params_.data(), grads_.data(), batch(t), lo);
    if (!std::isfinite(r.loss)) fail("train: the loss became ", r.loss, " at step ", t, " (try a lower --lr)");
    StepReport s;
    s.step = t;
    s.steps = o_.steps;
    s.loss = r.loss;
    s.ce = r.ce;
    s.lb = r.lb;
    s.lr = learning_rate(o_.adam, t);
    s.grad_norm = adam_.update(params_.data(), grads_.data(), model_.layout(), o_.adam, &pool_);
    s.seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (on_step) on_step(s);
    const bool last = t == last_step;
    if ((o_.eval_every > 0 && t % o_.eval_every == 0) || last)
      if (on_eval && !eval_.empty()) on_eval(evaluate());
    if (!o_.out.empty() && ((save_every > 0 && t % save_every == 0) || last)) {
      save(o_.out);
      if (on_save) on_save(o_.out);
    }
  }
}

}  // namespace grok
