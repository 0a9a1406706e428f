// Grok models in GGUF, as llama.cpp's converter writes them (arch "grok").
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "model/bind_weights.h"
#include "model/model.h"

namespace grok {
namespace {

GrokConfig config_from_gguf(const GgufFile& g) {
  const std::string& p = g.path();
  const auto arch = g.get_string("general.architecture");
  if (!arch) fail(p, ": metadata key 'general.architecture' is missing");
  if (*arch != "grok") fail(p, ": architecture '", *arch, "' is not supported (expected 'grok')");

  auto need_int = [&](const char* key) {
    const auto v = g.get_int(key);
    if (!v) fail(p, ": metadata key '", key, "' is missing");
    return *v;
  };
  GrokConfig c;
  c.n_layers = need_int("grok.block_count");
  c.dim = need_int("grok.embedding_length");
  c.ffn_dim = need_int("grok.feed_forward_length");
  c.n_heads = need_int("grok.attention.head_count");
  c.n_kv_heads = g.get_int("grok.attention.head_count_kv").value_or(c.n_heads);
  c.n_experts = need_int("grok.expert_count");
  c.n_experts_used = need_int("grok.expert_used_count");
  if (c.n_heads <= 0) fail(p, ": grok.attention.head_count must be positive");
  c.head_dim = g.get_int("grok.attention.key_length").value_or(c.dim / c.n_heads);
  c.context_length = g.get_int("grok.context_length").value_or(c.context_length);
  c.rope_base = float(g.get_float("grok.rope.freq_base").value_or(c.rope_base));
  c.rms_eps = float(g.get_float("grok.attention.layer_norm_rms_epsilon").value_or(c.rms_eps));
  c.attn_cap = float(g.get_float("grok.attn_logit_softcapping").value_or(c.attn_cap));
  // Converters that predate these keys hard-coded Grok-1's values.
  c.attn_scale = float(g.get_float("grok.attention.output_scale").value_or(1.0 / std::sqrt(double(c.head_dim))));
  c.embed_scale = float(g.get_float("grok.embedding_scale").value_or(c.embed_scale));
  c.logit_scale = float(g.get_float("grok.logit_scale").value_or(c.logit_scale));
  // grok.router_logit_softcapping is deliberately ignored: Grok-1 has no router cap.
  c.pad_id = int32_t(g.get_int("tokenizer.ggml.padding_token_id").value_or(c.pad_id));
  c.bos_id = int32_t(g.get_int("tokenizer.ggml.bos_token_id").value_or(c.bos_id));
  c.eos_id = int32_t(g.get_int("tokenizer.ggml.eos_token_id").value_or(c.eos_id));

  const TensorInfo* embd = g.tensors().find("token_embd.weight");
  if (!embd) fail(p, ": tensor 'token_embd.weight' is missing");
  if (embd->shape.size() != 2) fail(p, ": tensor 'token_embd.weight' has shape ", embd->shape_str(), ", expected 2-D");
  c.vocab_size = embd->shape[0];
  if (const auto* tokens = g.get_string_array("tokenizer.ggml.tokens"); tokens && int64_t(tokens->size()) != c.vocab_size)
    fail(p, ": tokenizer.ggml.tokens has ", tokens->size(), " entries but token_embd.weight has ", c.vocab_size, " rows");
  c.validate(p);
  return c;
}

}  // namespace

TensorNaming gguf_tensor_naming() {
  TensorNaming n;
  n.embed = "token_embd.weight";
  n.final_norm = "output_norm.weight";
  n.output = "output.weight";
  n.layer = [](int64_t i, LayerTensor t) {
    const std::string b = "blk." + std::to_string(i) + ".";
    switch (t) {
      case LayerTensor::AttnNorm: return b + "attn_norm.weight";
      case LayerTensor::AttnOutNorm: return b + "attn_output_norm.weight";
      case LayerTensor::FfnNorm: return b + "ffn_norm.weight";
      case LayerTensor::FfnOutNorm: return b + "layer_output_norm.weight";
      case LayerTensor::Q: return b + "attn_q.weight";
      case LayerTensor::K: return b + "attn_k.weight";
      case LayerTensor::V: return b + "attn_v.weight";
      case LayerTensor::O: return b + "attn_output.weight";
      case LayerTensor::Router: return b + "ffn_gate_inp.weight";
    }
    return b;
  };
  n.stacked_experts = true;
  n.expert = [](int64_t i, int64_t, ExpertTensor t) {
    const std::string b = "blk." + std::to_string(i) + ".";
    switch (t) {
      case ExpertTensor::W1: return b + "ffn_gate_exps.weight";
      case ExpertTensor::V: return b + "ffn_up_exps.weight";
      case ExpertTensor::W2: return b + "ffn_down_exps.weight";
    }
    return b;
  };
  return n;
}

Model load_gguf_model(const std::string& path) {
  auto g = std::make_shared<const GgufFile>(GgufFile::open(path));
  Model m;
  m.config = config_from_gguf(*g);
  m.store = g->share_tensors();
  m.weights = bind_weights(m.config, *m.store, gguf_tensor_naming(), path);
  m.path = path;
  m.format = "gguf";
  m.gguf = std::move(g);
  return m;
}

Model load_model(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_hf_model(path);
  if (!std::filesystem::exists(path, ec)) fail(path, ": no such file or folder");
  return load_gguf_model(path);
}

}  // namespace grok
