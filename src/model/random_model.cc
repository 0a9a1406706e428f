#include "model/random_model.h"

#include <cmath>

#include "core/error.h"

namespace grok {

GrokConfig preset_config(const std::string& name) {
  GrokConfig c;  // Grok-1's vocabulary, context and constants
  if (name == "tiny") {
    c.n_layers = 2, c.dim = 64, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.ffn_dim = 128;
  } else if (name == "bench") {
    c.n_layers = 8, c.dim = 1024, c.n_heads = 16, c.n_kv_heads = 4, c.head_dim = 64, c.ffn_dim = 2816;
  } else if (name != "grok-1") {
    std::string names;
    for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
    fail("unknown preset '", name, "' (presets: ", names, ")");
  }
  c.attn_scale = 1.0f / std::sqrt(float(c.head_dim));
  c.validate(name);
  return c;
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tiny", "bench", "grok-1"};
  return names;
}

TensorInit tensor_init(const GrokConfig& c, const GrokTensor& t) {
  const float inv_sqrt_dim = 1.0f / std::sqrt(float(c.dim));
  const float embed_std = 0.5f / c.embed_scale;
  switch (t.kind) {
    case GrokTensor::Kind::Embed:
    case GrokTensor::Kind::Output: return {0.0f, embed_std};
    case GrokTensor::Kind::FinalNorm: {
      // logits = final_norm * normalised h · E * logit_scale: a scale s gives
      // logit std s * embed_std * sqrt(dim) * logit_scale; aim for 4.
      const float s = 4.0f / (embed_std * std::sqrt(float(c.dim)) * c.logit_scale);
      return {s, 0.1f * s};
    }
    case GrokTensor::Kind::Expert:
      switch (t.expert_tensor) {
        case ExpertTensor::W1: return {0.0f, 1.2f * inv_sqrt_dim};
        case ExpertTensor::V: return {0.0f, inv_sqrt_dim};
        case ExpertTensor::W2: return {0.0f, 1.0f / std::sqrt(float(c.ffn_dim))};
      }
      break;
    case GrokTensor::Kind::Layer:
      switch (t.layer_tensor) {
        case LayerTensor::AttnNorm:
        case LayerTensor::AttnOutNorm:
        case LayerTensor::FfnNorm:
        case LayerTensor::FfnOutNorm: return {1.0f, 0.1f};
        case LayerTensor::Q:
        case LayerTensor::K: return {0.0f, 1.7f * inv_sqrt_dim};
        case LayerTensor::V: return {0.0f, inv_sqrt_dim};
        case LayerTensor::O: return {0.0f, 1.0f / std::sqrt(float(c.n_heads * c.head_dim))};
        case LayerTensor::Router: return {0.0f, 1.2f * inv_sqrt_dim};
      }
      break;
  }
  fail("tensor_init: unknown tensor ", t.name);
}

namespace {

uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  return h;
}

}  // namespace

void RandomSource::rows(const GrokTensor& t, int64_t begin, int64_t end, float* out) const {
  const TensorInit init = tensor_init(c_, t);
  const int64_t cols = t.cols();
  const uint64_t key = fnv1a(t.name);
  for (int64_t r = begin; r < end; ++r) {
    // splitmix64 from a per-row state: rows are independent streams.
    uint64_t s = seed_ * 0xd1b54a32d192ed03ull ^ key ^ (uint64_t(r) * 0x9e3779b97f4a7c15ull);
    splitmix64(s);
    float* y = out + (r - begin) * cols;
    // Box-Muller, both outputs of each pair used.
    for (int64_t i = 0; i < cols; i += 2) {
      const double u1 = (double(splitmix64(s) >> 11) + 1.0) * 0x1.0p-53;
      const double u2 = double(splitmix64(s) >> 11) * 0x1.0p-53;
      const double rad = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * M_PI * u2;
      y[i] = init.mean + init.stddev * float(rad * std::cos(angle));
      if (i + 1 < cols) y[i + 1] = init.mean + init.stddev * float(rad * std::sin(angle));
    }
  }
}

void write_random_model(const std::string& path, const GrokConfig& c, const RandomModelOptions& o,
                        ThreadPool& pool, const std::function<void(const ExportProgress&)>& progress,
                        const std::function<void(const std::string&, const std::string&)>& note) {
  c.validate(path);
  GgufWriter meta;
  set_grok_metadata(meta, c, o.name, o.type);
  for (const auto& [k, v] : o.vocabulary) meta.set(k, v);
  if (const int64_t n = vocabulary_size(o.vocabulary); n >= 0 && n != c.vocab_size)
    fail(path, ": the vocabulary has ", n, " tokens but the model has ", c.vocab_size);
  std::vector<ExportTensor> tensors;
  for (GrokTensor& t : grok_tensors(c)) {
    std::string why;
    const DType dt = stored_dtype(t, o.type, &why);
    if (!why.empty() && note) note(t.name, why);
    tensors.push_back({std::move(t), dt});
  }
  write_gguf_model(path, std::move(meta), tensors, RandomSource(c, o.seed), pool, progress);
}

}  // namespace grok
