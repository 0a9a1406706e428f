#include "model/config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace grok {

void GrokConfig::validate(std::string_view where) const {
  auto positive = [&](const char* field, int64_t v, int64_t max) {
    if (v <= 0 || v > max) fail(where, ": ", field, " = ", v, " is out of range (1..", max, ")");
  };
  // Bounds far above any real model, low enough that size products fit int64.
  positive("vocab_size", vocab_size, int64_t(1) << 24);
  positive("dim", dim, int64_t(1) << 17);
  positive("n_layers", n_layers, 1024);
  positive("n_heads", n_heads, 4096);
  positive("n_kv_heads", n_kv_heads, 4096);
  positive("head_dim", head_dim, 4096);
  positive("n_experts", n_experts, 1024);
  positive("n_experts_used", n_experts_used, n_experts);
  positive("ffn_dim", ffn_dim, int64_t(1) << 20);
  positive("context_length", context_length, int64_t(1) << 24);
  if (n_heads % n_kv_heads != 0)
    fail(where, ": n_heads (", n_heads, ") is not a multiple of n_kv_heads (", n_kv_heads, ")");
  if (head_dim % 2 != 0) fail(where, ": head_dim (", head_dim, ") must be even for rotary embedding");
  auto finite_positive = [&](const char* field, float v) {
    if (!std::isfinite(v) || v <= 0) fail(where, ": ", field, " = ", v, " must be a positive number");
  };
  finite_positive("rope_base", rope_base);
  finite_positive("rms_eps", rms_eps);
  finite_positive("attn_scale", attn_scale);
  finite_positive("attn_cap", attn_cap);
  finite_positive("embed_scale", embed_scale);
  finite_positive("logit_scale", logit_scale);
}

int64_t GrokConfig::parameter_count() const {
  const int64_t attn = dim * head_dim * (2 * n_heads + 2 * n_kv_heads);
  const int64_t moe = n_experts * 3 * dim * ffn_dim + n_experts * dim;
  return vocab_size * dim + dim + n_layers * (attn + moe + 4 * dim);
}

std::string GrokConfig::describe() const {
  std::ostringstream os;
  os << "layers " << n_layers << ", dim " << dim << ", heads " << n_heads << " (kv " << n_kv_heads
     << ", head_dim " << head_dim << ")\n"
     << "experts " << n_experts << " (top " << n_experts_used << "), ffn " << ffn_dim << "\n"
     << "vocab " << vocab_size << ", context " << context_length << "\n"
     << "rope base " << rope_base << ", rms eps " << rms_eps << ", attention scale " << attn_scale
     << ", cap " << attn_cap << "\n"
     << "embedding scale " << embed_scale << ", logit scale " << logit_scale << "\n"
     << "parameters " << parameter_count() << " (active per token "
     << parameter_count() - n_layers * (n_experts - n_experts_used) * 3 * dim * ffn_dim << ")\n";
  return os.str();
}

void apply_config_json(GrokConfig& c, std::string_view text, const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(path, ": expected a JSON object of GrokConfig fields");
  using json = nlohmann::json;
  auto integer = [&](const std::string& key, const json& v) {
    if (!v.is_number_integer()) fail(path, ": field '", key, "' must be an integer, got ", v.dump());
    return v.get<int64_t>();
  };
  auto real = [&](const std::string& key, const json& v) {
    if (!v.is_number()) fail(path, ": field '", key, "' must be a number, got ", v.dump());
    return float(v.get<double>());
  };
  for (const auto& [key, v] : j.items()) {
    int64_t* ints[] = {&c.vocab_size, &c.dim, &c.n_layers, &c.n_heads, &c.n_kv_heads, &c.head_dim,
                       &c.n_experts, &c.n_experts_used, &c.ffn_dim, &c.context_length};
    const char* int_keys[] = {"vocab_size", "dim",     "n_layers",       "n_heads", "n_kv_heads",
                              "head_dim",   "n_experts", "n_experts_used", "ffn_dim", "context_length"};
    float* reals[] = {&c.rope_base, &c.rms_eps, &c.attn_scale, &c.attn_cap, &c.embed_scale, &c.logit_scale};
    const char* real_keys[] = {"rope_base", "rms_eps", "attn_scale", "attn_cap", "embed_scale", "logit_scale"};
    int32_t* ids[] = {&c.pad_id, &c.bos_id, &c.eos_id};
    const char* id_keys[] = {"pad_id", "bos_id", "eos_id"};
    bool known = false;
    for (size_t k = 0; k < std::size(ints); ++k)
      if (key == int_keys[k]) *ints[k] = integer(key, v), known = true;
    for (size_t k = 0; k < std::size(reals); ++k)
      if (key == real_keys[k]) *reals[k] = real(key, v), known = true;
    for (size_t k = 0; k < std::size(ids); ++k)
      if (key == id_keys[k]) {
        const int64_t id = integer(key, v);
        if (id < 0 || id > INT32_MAX) fail(path, ": field '", key, "' is out of range");
        *ids[k] = int32_t(id);
        known = true;
      }
    if (!known) fail(path, ": unknown field '", key, "'");
  }
}

}  // namespace grok
