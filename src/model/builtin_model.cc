// The built-in smoke-test model: Grok's architecture at a tiny size with
// random weights from a fixed seed, so `grok generate` works with no file.
// Its output is gibberish by design; it checks the machinery, not the model.
#include <cmath>
#include <cstring>
#include <random>

#include "model/bind_weights.h"
#include "model/model.h"

namespace grok {
namespace {

// Box-Muller over mt19937_64, which the standard fixes bit for bit (unlike
// std::normal_distribution), so every platform builds the same model.
class Gaussian {
 public:
  explicit Gaussian(uint64_t seed) : rng_(seed) {}
  float operator()(float stddev) {
    const double u1 = (double(rng_() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = double(rng_() >> 11) * 0x1.0p-53;
    return float(stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
  }

 private:
  std::mt19937_64 rng_;
};

}  // namespace

Model builtin_model(int64_t vocab_size, uint64_t seed, std::span<const int32_t> quiet_ids) {
  GrokConfig c;
  c.vocab_size = vocab_size;
  c.dim = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.n_experts = 8;
  c.n_experts_used = 2;
  c.ffn_dim = 128;
  c.context_length = 2048;
  c.attn_scale = 0.25f;  // head_dim^-0.5, as Grok-1's 128^-0.5
  c.validate("built-in model");

  Gaussian gauss(seed);
  auto store = std::make_shared<TensorStore>();
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float mean, float stddev) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto buf = std::make_shared<std::vector<float>>(size_t(n));
    for (float& x : *buf) x = mean + gauss(stddev);
    TensorInfo t;
    t.name = name;
    t.dtype = DType::F32;
    t.shape = std::move(shape);
    t.data = reinterpret_cast<const std::byte*>(buf->data());
    t.nbytes = uint64_t(n) * 4;
    t.file = "built-in model";
    store->add(std::move(t));
    store->keep_alive(buf);
  };
  const TensorNaming naming = gguf_tensor_naming();
  const float d = float(c.dim);
  // Embedding rows of rms 0.5 after the embedding scale; a large final norm
  // scale so logits have a spread like a trained model's (std of a few units).
  add(naming.embed, {c.vocab_size, c.dim}, 0, 0.5f / c.embed_scale);
  float* embed = reinterpret_cast<float*>(const_cast<std::byte*>(store->tensors().back().data));
  for (int32_t id : quiet_ids)
    if (id >= 0 && id < c.vocab_size)
      for (int64_t d = 0; d < c.dim; ++d) embed[id * c.dim + d] *= 0.01f;
  add(naming.final_norm, {c.dim}, 4.0f / (0.5f / c.embed_scale * std::sqrt(d) * c.logit_scale), 0);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    auto name = [&](LayerTensor t) { return naming.layer(i, t); };
    for (LayerTensor t : {LayerTensor::AttnNorm, LayerTensor::AttnOutNorm, LayerTensor::FfnNorm,
                          LayerTensor::FfnOutNorm})
      add(name(t), {c.dim}, 1.0f, 0.1f);
    add(name(LayerTensor::Q), {c.n_heads * c.head_dim, c.dim}, 0, 1.7f / std::sqrt(d));
    add(name(LayerTensor::K), {c.n_kv_heads * c.head_dim, c.dim}, 0, 1.7f / std::sqrt(d));
    add(name(LayerTensor::V), {c.n_kv_heads * c.head_dim, c.dim}, 0, 1.0f / std::sqrt(d));
    add(name(LayerTensor::O), {c.dim, c.n_heads * c.head_dim}, 0, 1.0f / std::sqrt(d));
    add(name(LayerTensor::Router), {c.n_experts, c.dim}, 0, 1.2f / std::sqrt(d));
    add(naming.expert(i, 0, ExpertTensor::W1), {c.n_experts, c.ffn_dim, c.dim}, 0, 1.2f / std::sqrt(d));
    add(naming.expert(i, 0, ExpertTensor::V), {c.n_experts, c.ffn_dim, c.dim}, 0, 1.0f / std::sqrt(d));
    add(naming.expert(i, 0, ExpertTensor::W2), {c.n_experts, c.dim, c.ffn_dim}, 0,
        1.0f / std::sqrt(float(c.ffn_dim)));
  }
  Model m;
  m.config = c;
  m.weights = bind_weights(c, *store, naming, "built-in model");
  m.store = std::move(store);
  m.format = "builtin";
  return m;
}

}  // namespace grok
