// xAI's released checkpoint (ckpt-0/, CHECKPOINT.md) run as it is: int8
// matrices with their bf16 scales used in place, the router read [in][out].
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/checkpoint.h"
#include "model/bind_weights.h"
#include "model/model.h"

namespace grok {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kConfigName = "grok-config.json";

TensorNaming checkpoint_naming() {
  TensorNaming n;
  n.embed = "language_model/in_out_embed/embeddings";
  n.final_norm = "language_model/rms_norm/scale";
  n.layer = [](int64_t i, LayerTensor t) {
    const std::string b = "transformer/decoder_layer_" + std::to_string(i) + "/";
    switch (t) {
      case LayerTensor::AttnNorm: return b + "rms_norm/scale";
      case LayerTensor::AttnOutNorm: return b + "rms_norm_1/scale";
      case LayerTensor::FfnNorm: return b + "rms_norm_2/scale";
      case LayerTensor::FfnOutNorm: return b + "rms_norm_3/scale";
      case LayerTensor::Q: return b + "multi_head_attention/query/w";
      case LayerTensor::K: return b + "multi_head_attention/key/w";
      case LayerTensor::V: return b + "multi_head_attention/value/w";
      case LayerTensor::O: return b + "multi_head_attention/linear/w";
      case LayerTensor::Router: return b + "router/w";
    }
    return b;
  };
  n.stacked_experts = true;
  n.expert = [](int64_t i, int64_t, ExpertTensor t) {
    const std::string b = "transformer/decoder_layer_" + std::to_string(i) + "/moe/";
    switch (t) {
      case ExpertTensor::W1: return b + "linear/w";
      case ExpertTensor::V: return b + "linear_v/w";
      case ExpertTensor::W2: return b + "linear_1/w";
    }
    return b;
  };
  n.scales = [](const std::string& m) { return m.substr(0, m.size() - 1) + "scales"; };
  n.input_major_router = true;
  return n;
}

const TensorInfo& shaped(const TensorStore& s, const std::string& name, size_t dims, const std::string& dir) {
  const TensorInfo& t = s.get(name, dir);
  if (t.shape.size() != dims)
    fail(t.file, ": ", name, " has shape ", t.shape_str(), ", expected ", dims, " dimensions");
  return t;
}

// Sizes read off the tensors; head_dim is Grok-1's 128 unless the config says.
GrokConfig config_from_shapes(const TensorStore& s, int64_t n_layers, const json& overrides, const std::string& dir) {
  GrokConfig c;
  const TensorInfo& embed = shaped(s, "language_model/in_out_embed/embeddings", 2, dir);
  const std::string l0 = "transformer/decoder_layer_0/";
  const TensorInfo& q = shaped(s, l0 + "multi_head_attention/query/w", 2, dir);
  const TensorInfo& k = shaped(s, l0 + "multi_head_attention/key/w", 2, dir);
  const TensorInfo& w1 = shaped(s, l0 + "moe/linear/w", 3, dir);
  c.vocab_size = embed.shape[0];
  c.dim = embed.shape[1];
  c.n_layers = n_layers;
  c.n_experts = w1.shape[0];
  c.ffn_dim = w1.shape[2];
  if (auto it = overrides.find("head_dim"); it != overrides.end() && it->is_number_integer())
    c.head_dim = it->get<int64_t>();
  if (c.head_dim <= 0 || q.shape[1] % c.head_dim || k.shape[1] % c.head_dim)
    fail(dir, ": query/key widths ", q.shape[1], "/", k.shape[1], " are not whole heads of ", c.head_dim,
         " (give head_dim in ", kConfigName, ")");
  c.n_heads = q.shape[1] / c.head_dim;
  c.n_kv_heads = k.shape[1] / c.head_dim;
  c.n_experts_used = std::min<int64_t>(2, c.n_experts);
  c.attn_scale = float(1.0 / std::sqrt(double(c.head_dim)));
  return c;
}

void apply_overrides(GrokConfig& c, const json& j, const std::string& path) {
  apply_config_json(c, j.dump(), path);
}

json read_config(const std::string& path) {
  if (path.empty()) return json::object();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  return j;
}

// The config file load_checkpoint_model reads for dir; "" if there is none.
std::string checkpoint_config_path(const std::string& dir) {
  std::error_code ec;
  const fs::path inside = fs::path(dir) / kConfigName;
  if (fs::exists(inside, ec)) return inside.string();
  const fs::path beside = fs::absolute(fs::path(dir), ec).lexically_normal().parent_path() / kConfigName;
  if (fs::exists(beside, ec)) return beside.string();
  return "";
}

}  // namespace

bool is_checkpoint_folder(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / "tensor00000_000", ec);
}

Model load_checkpoint_model(const std::string& dir, const LoadOptions& options) {
  const std::string config_path = checkpoint_config_path(dir);
  const json overrides = read_config(config_path);
  GrokConfig checked;  // unknown or mistyped fields are reported before anything else
  apply_overrides(checked, overrides, config_path);
  std::shared_ptr<TensorStore> store = read_checkpoint(dir, kConfigName, options.progress);
  int64_t layers = 0;  // read_checkpoint checked there are 2 + 12 files per layer
  for (const TensorInfo& t : store->tensors()) layers += t.name.ends_with("/router/w");
  Model m;
  m.config = config_from_shapes(*store, layers, overrides, dir);
  apply_overrides(m.config, overrides, config_path);
  m.config.validate(config_path.empty() ? dir : config_path);
  m.weights = bind_weights(m.config, *store, checkpoint_naming(), dir);
  m.store = std::move(store);
  m.path = dir;
  m.format = "checkpoint";
  return m;
}

}  // namespace grok
