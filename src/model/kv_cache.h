// Keys (after rotary embedding) and values of every processed position, per
// layer and kv head, in fp32.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace grok {

class KVCache {
 public:
  // Room for `capacity` positions; memory is 2·layers·kv_heads·capacity·head_dim floats.
  KVCache(const GrokConfig& c, int64_t capacity);

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  void set_length(int64_t n);  // after a forward pass appended positions
  void clear() { length_ = 0; }

  // (head_dim) vectors; layout [layer][kv_head][position][head_dim].
  float* key(int64_t layer, int64_t kv_head, int64_t pos) { return &k_[offset(layer, kv_head, pos)]; }
  float* value(int64_t layer, int64_t kv_head, int64_t pos) { return &v_[offset(layer, kv_head, pos)]; }
  // Whether position `pos` holds a real token (pad tokens are masked as keys).
  std::vector<uint8_t>& valid() { return valid_; }

 private:
  size_t offset(int64_t layer, int64_t kv_head, int64_t pos) const {
    return size_t(((layer * n_kv_heads_ + kv_head) * capacity_ + pos) * head_dim_);
  }
  int64_t n_kv_heads_, head_dim_, capacity_, length_ = 0;
  std::vector<float> k_, v_;
  std::vector<uint8_t> valid_;
};

}  // namespace grok
