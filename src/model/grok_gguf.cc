#include "model/grok_gguf.h"

#include <cmath>

#include "core/error.h"

namespace grok {

bool GrokTensor::is_norm() const {
  if (kind == Kind::FinalNorm) return true;
  if (kind != Kind::Layer) return false;
  return layer_tensor == LayerTensor::AttnNorm || layer_tensor == LayerTensor::AttnOutNorm ||
         layer_tensor == LayerTensor::FfnNorm || layer_tensor == LayerTensor::FfnOutNorm;
}

bool GrokTensor::is_router() const { return kind == Kind::Layer && layer_tensor == LayerTensor::Router; }

int64_t GrokTensor::rows() const {
  int64_t r = 1;
  for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
  return r;
}

std::vector<GrokTensor> grok_tensors(const GrokConfig& c, bool untied_output) {
  const TensorNaming n = gguf_tensor_naming();
  const int64_t d = c.dim, q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  std::vector<GrokTensor> out;
  out.push_back({n.embed, {c.vocab_size, d}, GrokTensor::Kind::Embed});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    auto layer = [&](LayerTensor t, std::vector<int64_t> shape) {
      GrokTensor g{n.layer(i, t), std::move(shape), GrokTensor::Kind::Layer, i};
      g.layer_tensor = t;
      out.push_back(std::move(g));
    };
    auto expert = [&](ExpertTensor t, int64_t rows, int64_t cols) {
      GrokTensor g{n.expert(i, 0, t), {c.n_experts, rows, cols}, GrokTensor::Kind::Expert, i};
      g.expert_tensor = t;
      out.push_back(std::move(g));
    };
    layer(LayerTensor::AttnNorm, {d});
    layer(LayerTensor::Q, {q_dim, d});
    layer(LayerTensor::K, {kv_dim, d});
    layer(LayerTensor::V, {kv_dim, d});
    layer(LayerTensor::O, {d, q_dim});
    layer(LayerTensor::AttnOutNorm, {d});
    layer(LayerTensor::FfnNorm, {d});
    layer(LayerTensor::Router, {c.n_experts, d});
    expert(ExpertTensor::W1, c.ffn_dim, d);
    expert(ExpertTensor::V, c.ffn_dim, d);
    expert(ExpertTensor::W2, d, c.ffn_dim);
    layer(LayerTensor::FfnOutNorm, {d});
  }
  out.push_back({n.final_norm, {d}, GrokTensor::Kind::FinalNorm});
  if (untied_output) out.push_back({n.output, {c.vocab_size, d}, GrokTensor::Kind::Output});
  return out;
}

DType stored_dtype(const GrokTensor& t, DType type, std::string* fallback) {
  if (t.is_norm() || t.is_router()) return DType::F32;
  const bool plain = type == DType::F32 || type == DType::F16 || type == DType::BF16;
  if (plain) return type;
  const int64_t cols = t.cols();
  if (t.kind == GrokTensor::Kind::Embed || t.kind == GrokTensor::Kind::Output) {
    // llama.cpp quantises a tied output (and so the embedding) as Q6_K
    // unless the model is Q8_0, and as Q8_0 when rows are not 256-blocks.
    if (type != DType::Q8_0 && cols % 256 == 0) return DType::Q6_K;
    if (cols % 32 == 0) return DType::Q8_0;
  } else if (cols % dtype_block_elems(type) == 0) {
    return type;
  }
  const DType fb = cols % 32 == 0 ? DType::Q8_0 : DType::F16;
  if (fallback)
    *fallback = cat("rows of ", cols, " are not whole ", dtype_name(type), " blocks of ", dtype_block_elems(type),
                    ": stored as ", dtype_name(fb));
  return fb;
}

uint32_t llama_file_type(DType type) {
  switch (type) {
    case DType::F32: return 0;   // ALL_F32
    case DType::F16: return 1;   // MOSTLY_F16
    case DType::Q4_0: return 2;  // MOSTLY_Q4_0
    case DType::Q8_0: return 7;  // MOSTLY_Q8_0
    case DType::Q4_K: return 14; // MOSTLY_Q4_K_S: Q4_K everywhere but the embedding
    case DType::Q6_K: return 18; // MOSTLY_Q6_K
    case DType::Q5_0: return 8;  // MOSTLY_Q5_0
    case DType::Q5_1: return 9;  // MOSTLY_Q5_1
    case DType::Q5_K: return 16; // MOSTLY_Q5_K_S: Q5_K everywhere but the embedding
    case DType::BF16: return 32; // MOSTLY_BF16
    case DType::I8: break;  // llama.cpp has no file type for the checkpoint's int8
  }
  fail("no GGUF file type for ", dtype_name(type));
}

void set_grok_metadata(GgufWriter& w, const GrokConfig& c, const std::string& name, DType type) {
  w.set_string("general.architecture", "grok");
  w.set_string("general.type", "model");
  w.set_string("general.name", name);
  w.set_u32("grok.block_count", uint32_t(c.n_layers));
  w.set_u32("grok.context_length", uint32_t(c.context_length));
  w.set_u32("grok.embedding_length", uint32_t(c.dim));
  w.set_u32("grok.feed_forward_length", uint32_t(c.ffn_dim));
  w.set_u32("grok.attention.head_count", uint32_t(c.n_heads));
  w.set_u32("grok.attention.head_count_kv", uint32_t(c.n_kv_heads));
  if (c.head_dim * c.n_heads != c.dim) {  // readers assume dim / heads otherwise
    w.set_u32("grok.attention.key_length", uint32_t(c.head_dim));
    w.set_u32("grok.attention.value_length", uint32_t(c.head_dim));
  }
  w.set_f32("grok.rope.freq_base", c.rope_base);
  w.set_f32("grok.attention.layer_norm_rms_epsilon", c.rms_eps);
  w.set_u32("grok.expert_count", uint32_t(c.n_experts));
  w.set_u32("grok.expert_used_count", uint32_t(c.n_experts_used));
  if (type != DType::I8) w.set_u32("general.file_type", llama_file_type(type));
  w.set_f32("grok.attn_logit_softcapping", c.attn_cap);
  // What llama.cpp's converter writes; Grok-1 has no router cap and this
  // engine ignores the key when reading.
  w.set_f32("grok.router_logit_softcapping", 30.0f);
  w.set_f32("grok.attention.output_scale", c.attn_scale);
  w.set_f32("grok.embedding_scale", c.embed_scale);
  w.set_f32("grok.logit_scale", c.logit_scale);
  w.set_u32("general.quantization_version", 2);
  const GrokConfig grok1;  // ids are written where they differ from Grok-1's
  if (c.pad_id >= 0 && c.pad_id != grok1.pad_id) w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(c.pad_id));
  if (c.bos_id >= 0 && c.bos_id != grok1.bos_id) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(c.bos_id));
  if (c.eos_id >= 0 && c.eos_id != grok1.eos_id) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(c.eos_id));
}

int64_t vocabulary_size(const std::vector<std::pair<std::string, GgufValue>>& vocabulary) {
  for (const auto& [k, v] : vocabulary)
    if (k == "tokenizer.ggml.tokens") return int64_t(v.strings.size());
  return -1;
}

}  // namespace grok
