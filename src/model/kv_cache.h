// Keys (after rotary embedding) and values of every processed position of
// one sequence, in fp32: a block table over a KvBlockPool (position p lives
// in block blocks()[p / block_tokens()]). A cache either owns a pool sized
// for it (one sequence on its own) or draws from a shared one (batching),
// where its first blocks may be a cached prompt prefix shared with other
// sequences; those are never written again.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/config.h"
#include "model/kv_block_pool.h"

namespace grok {

class KVCache {
 public:
  static constexpr int kDefaultBlockTokens = 16;

  // Room for `capacity` positions in a pool of its own.
  KVCache(const GrokConfig& c, int64_t capacity);
  // Room for `capacity` positions from `pool`: first the `prefix` blocks,
  // full and already computed for `prefix_tokens` (prefix.size() ×
  // block_tokens ids; the cache takes a reference to each and starts after
  // them), then fresh blocks. Throws grok::Error, holding nothing, when the
  // pool has too few free blocks.
  KVCache(const GrokConfig& c, KvBlockPool& pool, int64_t capacity, std::span<const int32_t> prefix = {},
          std::span<const int32_t> prefix_tokens = {});
  // A follower rank's view of a leader's cache (model/transformer.h):
  // `table` in a mirror pool, `length` positions computed, whose validity
  // the caller fills in. Holds no references: the blocks are the mirror's.
  static KVCache mirror(KvBlockPool& pool, int64_t capacity, std::vector<int32_t> table, int64_t length);
  ~KVCache();  // releases its blocks
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;
  // A moved-from cache holds no blocks.
  KVCache(KVCache&& o) noexcept;
  KVCache& operator=(KVCache&& o) noexcept;

  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }
  void set_length(int64_t n);  // after a forward pass appended positions
  void clear() { set_length(0); }

  // Positions [0, n) become read-only (their blocks may now be shared):
  // set_length below n throws.
  void freeze(int64_t n);
  int64_t frozen() const { return frozen_; }

  int block_tokens() const { return block_tokens_; }
  std::span<const int32_t> blocks() const { return table_; }
  KvBlockPool& pool() { return *pool_; }

  // (head_dim) vectors of one position.
  float* key(int64_t layer, int64_t kv_head, int64_t pos) {
    return pool_->keys(table_[size_t(pos / block_tokens_)], layer, kv_head) + (pos % block_tokens_) * head_dim_;
  }
  float* value(int64_t layer, int64_t kv_head, int64_t pos) {
    return pool_->values(table_[size_t(pos / block_tokens_)], layer, kv_head) + (pos % block_tokens_) * head_dim_;
  }
  // [block_tokens][head_dim]: positions i·block_tokens.. of one layer and kv head.
  const float* block_keys(int64_t i, int64_t layer, int64_t kv_head) const {
    return pool_->keys(table_[size_t(i)], layer, kv_head);
  }
  const float* block_values(int64_t i, int64_t layer, int64_t kv_head) const {
    return pool_->values(table_[size_t(i)], layer, kv_head);
  }
  // Whether position `pos` holds a real token (pad tokens are masked as keys).
  std::vector<uint8_t>& valid() { return valid_; }

 private:
  void fill(const GrokConfig& c, std::span<const int32_t> prefix, std::span<const int32_t> prefix_tokens);

  KVCache() = default;

  bool mirror_ = false;               // mirror(): the blocks are not counted
  std::unique_ptr<KvBlockPool> own_;  // a cache on its own; null when drawing from a shared pool
  KvBlockPool* pool_ = nullptr;
  int block_tokens_ = 0;
  int64_t head_dim_ = 0, capacity_ = 0, length_ = 0, frozen_ = 0;
  std::vector<int32_t> table_;
  std::vector<uint8_t> valid_;
};

}  // namespace grok
