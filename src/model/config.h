// Every size and constant of a Grok-architecture model in one place. The
// defaults are the released Grok-1's (SPEC.md); a model file overrides sizes
// and the multipliers it records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace grok {

struct GrokConfig {
  int64_t vocab_size = 131072;
  int64_t dim = 6144;             // emb_size D
  int64_t n_layers = 64;
  int64_t n_heads = 48;           // query heads
  int64_t n_kv_heads = 8;         // grouped-query: n_heads / n_kv_heads q heads per kv head
  int64_t head_dim = 128;
  int64_t n_experts = 8;
  int64_t n_experts_used = 2;
  int64_t ffn_dim = 32768;        // per expert
  int64_t context_length = 8192;
  float rope_base = 10000.0f;
  float rms_eps = 1e-5f;
  float attn_scale = 0.08838834764831845f;  // attn_output_multiplier, applied to q·k
  float attn_cap = 30.0f;                   // scores become cap·tanh(s/cap)
  float embed_scale = 78.38367176906169f;   // embedding_multiplier_scale
  float logit_scale = 0.5773502691896257f;  // output_multiplier_scale
  int32_t pad_id = 0;                       // pad tokens are masked out
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  // Under tensor parallelism (model/shard.h): the KV heads this process
  // keeps in its KV cache; -1: all of them.
  int64_t kv_heads_local = -1;
  int64_t kv_heads_kept() const { return kv_heads_local < 0 ? n_kv_heads : kv_heads_local; }

  // Throws grok::Error "<where>: <field> ..." when sizes are impossible.
  void validate(std::string_view where) const;
  int64_t parameter_count() const;
  std::string describe() const;  // multi-line summary for `grok inspect`
};

// Sets the fields a JSON object names (GrokConfig's field names: vocab_size,
// dim, n_layers, ..., logit_scale, pad_id, bos_id, eos_id); throws
// grok::Error naming `path` for bad JSON, an unknown field or a wrong type.
void apply_config_json(GrokConfig& c, std::string_view text, const std::string& path);

}  // namespace grok
