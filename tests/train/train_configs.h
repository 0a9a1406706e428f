// Small Grok configs for the training tests: 2 layers, 4 query heads over 2
// KV heads of dim/4, top-2 routing, Grok's scales for that size.
#pragma once

#include <cmath>
#include <cstdint>

#include "model/config.h"

namespace grok {

inline GrokConfig small_train_config(int64_t vocab, int64_t dim, int64_t experts, int64_t ffn, int64_t context) {
  GrokConfig c;
  c.vocab_size = vocab;
  c.dim = dim;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = dim / 4;
  c.n_experts = experts;
  c.n_experts_used = 2;
  c.ffn_dim = ffn;
  c.context_length = context;
  c.embed_scale = std::sqrt(float(dim));
  c.attn_scale = 1.0f / std::sqrt(float(c.head_dim));
  return c;
}

}  // namespace grok
