// Grok models as Hugging Face folders in the grok-1-hf naming: config.json
// plus *.safetensors (sharded with model.safetensors.index.json or not).
#include <cmath>
#include <fstream>
#include <iterator>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "model/bind_weights.h"
#include "model/model.h"

namespace grok {
namespace {

using nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  int64_t integer(const char* key) const {
    const auto v = opt_integer(key);
    if (!v) fail(path_, ": field '", key, "' is missing");
    return *v;
  }
  std::optional<int64_t> opt_integer(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) fail(path_, ": field '", key, "' must be an integer, got ", it->dump());
    return it->get<int64_t>();
  }
  float real(const char* key, double fallback) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return float(fallback);
    if (!it->is_number()) fail(path_, ": field '", key, "' must be a number, got ", it->dump());
    return float(it->get<double>());
  }

 private:
  const json& j_;
  std::string path_;
};

}  // namespace

GrokConfig parse_hf_config(std::string_view text, const std::string& path) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  const ConfigReader r(j, path);
  GrokConfig c;
  c.vocab_size = r.integer("vocab_size");
  c.dim = r.integer("hidden_size");
  c.n_layers = r.integer("num_hidden_layers");
  c.n_heads = r.integer("num_attention_heads");
  c.n_kv_heads = r.opt_integer("num_key_value_heads").value_or(c.n_heads);
  c.ffn_dim = r.integer("intermediate_size");
  c.n_experts = r.integer("num_local_experts");
  c.n_experts_used = r.integer("num_experts_per_tok");
  if (c.n_heads <= 0) fail(path, ": field 'num_attention_heads' must be positive");
  c.head_dim = r.opt_integer("head_dim").value_or(c.dim / c.n_heads);
  c.context_length = r.opt_integer("max_position_embeddings").value_or(c.context_length);
  c.rope_base = r.real("rope_theta", c.rope_base);
  c.rms_eps = r.real("rms_norm_eps", c.rms_eps);
  c.attn_scale = r.real("attn_output_multiplier", 1.0 / std::sqrt(double(c.head_dim)));
  c.attn_cap = r.real("max_attn_value", r.real("attn_logit_softcapping", c.attn_cap));
  c.embed_scale = r.real("embedding_multiplier_scale", c.embed_scale);
  c.logit_scale = r.real("output_multiplier_scale", c.logit_scale);
  // "hidden_act": "gelu" is ignored on purpose: Grok's GELU is the tanh form.
  c.pad_id = int32_t(r.opt_integer("pad_token_id").value_or(c.pad_id));
  c.bos_id = int32_t(r.opt_integer("bos_token_id").value_or(c.bos_id));
  c.eos_id = int32_t(r.opt_integer("eos_token_id").value_or(c.eos_id));
  c.validate(path);
  return c;
}

namespace {

GrokConfig config_from_hf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (a Hugging Face model folder needs config.json)");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_hf_config(text, path);
}

TensorNaming hf_naming() {
  TensorNaming n;
  n.embed = "transformer.in_out_embed.weight";
  n.final_norm = "transformer.rms_norm.weight";
  n.output = "lm_head.weight";
  n.layer = [](int64_t i, LayerTensor t) {
    const std::string b = "transformer.decoder_layer." + std::to_string(i) + ".";
    switch (t) {
      case LayerTensor::AttnNorm: return b + "rms_norm.weight";
      case LayerTensor::AttnOutNorm: return b + "rms_norm_1.weight";
      case LayerTensor::FfnNorm: return b + "rms_norm_2.weight";
      case LayerTensor::FfnOutNorm: return b + "rms_norm_3.weight";
      case LayerTensor::Q: return b + "multi_head_attention.query.weight";
      case LayerTensor::K: return b + "multi_head_attention.key.weight";
      case LayerTensor::V: return b + "multi_head_attention.value.weight";
      case LayerTensor::O: return b + "multi_head_attention.linear.weight";
      case LayerTensor::Router: return b + "router.weight";
    }
    return b;
  };
  n.expert = [](int64_t i, int64_t e, ExpertTensor t) {
    const std::string b = "transformer.decoder_layer." + std::to_string(i) + ".moe." + std::to_string(e) + ".";
    switch (t) {
      case ExpertTensor::W1: return b + "linear.weight";
      case ExpertTensor::V: return b + "linear_v.weight";
      case ExpertTensor::W2: return b + "linear_1.weight";
    }
    return b;
  };
  return n;
}

}  // namespace

Model load_hf_model(const std::string& dir) {
  Model m;
  m.config = config_from_hf(dir + "/config.json");
  auto store = std::make_shared<TensorStore>();
  read_safetensors_folder(dir, *store);
  m.weights = bind_weights(m.config, *store, hf_naming(), dir);
  m.store = std::move(store);
  m.path = dir;
  m.format = "safetensors";
  return m;
}

}  // namespace grok
