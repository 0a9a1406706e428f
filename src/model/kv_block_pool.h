// KV cache memory in fixed-size blocks, shared by every sequence of a batch.
// A block holds `block_tokens` consecutive positions for every layer and kv
// head: keys then values, each [layer][kv_head][position][head_dim], so
// attention walks contiguous head_dim vectors, block_tokens at a time.
// Blocks are reference-counted: a sequence's KVCache holds its blocks, and
// the prefix cache (engine/prefix_cache.h) holds the blocks it keeps.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"

namespace grok {

class KvBlockPool {
 public:
  // Throws grok::Error on a non-positive block size or count. Memory for a
  // block is allocated (and zeroed) the first time it is handed out, so a
  // large budget costs only what is used.
  KvBlockPool(const GrokConfig& c, int block_tokens, int64_t n_blocks);
  ~KvBlockPool();
  KvBlockPool(const KvBlockPool&) = delete;
  KvBlockPool& operator=(const KvBlockPool&) = delete;

  // Unique in this process: how a tensor-parallel leader names the pool to
  // the other ranks, which keep a mirror of it (model/transformer.h).
  uint64_t id() const { return id_; }
  // From now on, pools record their ids as they are destroyed, for
  // take_retired (the leader tells the other ranks to drop their mirrors).
  static void track_retired();
  static std::vector<uint64_t> take_retired();
  // A mirror's block: its storage, made (zeroed) on first use. Which blocks
  // are in use is the leader's pool's business, so counts are not kept.
  void mirror_block(int32_t block);

  int block_tokens() const { return block_tokens_; }
  int64_t total() const { return int64_t(refs_.size()); }
  int64_t free() const { return int64_t(free_.size()); }
  int64_t held() const { return total() - free(); }
  // Bytes of one position in every layer (keys and values).
  int64_t bytes_per_token() const { return 2 * layer_floats_per_token() * n_layers_ * 4; }
  int32_t pad_id() const { return pad_id_; }
  int64_t head_dim() const { return head_dim_; }

  // A free block with one reference, or -1 when none is free.
  int32_t allocate();
  void retain(int32_t block);
  // Drops a reference; the block is free again at zero.
  void release(int32_t block);
  int32_t refs(int32_t block) const;

  // The [block_tokens][head_dim] keys (values) of one layer and kv head in
  // `block`, which must be held.
  float* keys(int32_t block, int64_t layer, int64_t kv_head) { return base(block) + head_offset(layer, kv_head); }
  float* values(int32_t block, int64_t layer, int64_t kv_head) {
    return base(block) + half_floats_ + head_offset(layer, kv_head);
  }

 private:
  int64_t layer_floats_per_token() const { return n_kv_heads_ * head_dim_; }
  int64_t head_offset(int64_t layer, int64_t kv_head) const {
    return (layer * n_kv_heads_ + kv_head) * block_tokens_ * head_dim_;
  }
  float* base(int32_t block) { return storage_[size_t(block)].get(); }
  void check(int32_t block, const char* what) const;

  uint64_t id_;
  int64_t n_layers_, n_kv_heads_, head_dim_;
  int32_t pad_id_;
  int block_tokens_;
  int64_t half_floats_;  // keys (or values) of one block
  std::vector<std::unique_ptr<float[]>> storage_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;  // a stack: the most recently freed (still in cache) first
};

}  // namespace grok
