#include "model/kv_cache.h"

#include "core/error.h"

namespace grok {

KVCache::KVCache(const GrokConfig& c, int64_t capacity)
    : n_kv_heads_(c.n_kv_heads), head_dim_(c.head_dim), capacity_(capacity) {
  if (capacity <= 0 || capacity > c.context_length)
    fail("KV cache of ", capacity, " positions is outside the model's context (1..", c.context_length, ")");
  const size_t n = size_t(c.n_layers * c.n_kv_heads * capacity * c.head_dim);
  k_.assign(n, 0.0f);
  v_.assign(n, 0.0f);
  valid_.assign(size_t(capacity), 0);
}

void KVCache::set_length(int64_t n) {
  if (n < 0 || n > capacity_) fail("KV cache length ", n, " exceeds its capacity ", capacity_);
  length_ = n;
}

}  // namespace grok
