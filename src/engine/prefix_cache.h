// Computed KV blocks kept for reuse, addressed by content: a full block is
// found by the token ids of the whole prefix up to its end, so a request
// whose prompt starts with the same tokens maps those blocks instead of
// computing them again. Keys at a position depend only on the tokens up to
// it, so a block is valid for every sequence with that prefix.
//
// Lookups are exact, not just by hash: an entry records its own tokens and
// the entry before it (block and serial number), and a match walks the
// chain from the first block, so a hash collision or an entry whose parent
// was evicted never matches.
//
// The cache holds one reference to each block it keeps; blocks held by
// nothing else are evicted least recently used first when the pool needs
// room.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

#include "model/kv_block_pool.h"

namespace grok {

class PrefixCache {
 public:
  explicit PrefixCache(KvBlockPool& pool);
  ~PrefixCache();  // releases its blocks
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  // The cached blocks holding tokens[0, k·block_tokens) for the largest
  // k ≤ max_blocks, marked recently used.
  std::vector<int32_t> match(std::span<const int32_t> tokens, int64_t max_blocks);

  // Keeps the first n_full blocks of a sequence: blocks[i] holds
  // tokens[i·block_tokens, (i+1)·block_tokens), all computed. A prefix
  // already cached keeps its existing block.
  void insert(std::span<const int32_t> tokens, std::span<const int32_t> blocks, int64_t n_full);

  // Evicts least recently used blocks that only the cache holds until the
  // pool has n free blocks; false (having evicted them all) if it cannot.
  bool make_free(int64_t n);

  int64_t size() const { return int64_t(entries_.size()); }
  // Blocks only the cache holds: what make_free can give back.
  int64_t evictable() const;

 private:
  struct Entry {
    uint64_t key;  // hash of the whole prefix up to the block's end
    int32_t block;
    int32_t parent;  // the previous block's entry: its block, -1 for the first
    uint64_t parent_serial, serial;
    std::vector<int32_t> tokens;  // the block's own tokens
  };
  using Lru = std::list<Entry>;  // most recently used first

  // The entry for prefix hash `key` whose block follows (parent, parent_serial)
  // and holds `tokens`, or null.
  Entry* find(uint64_t key, int32_t parent, uint64_t parent_serial, std::span<const int32_t> tokens);
  void erase(Lru::iterator it);

  KvBlockPool& pool_;
  int block_tokens_;
  uint64_t next_serial_ = 1;
  Lru entries_;
  std::unordered_map<uint64_t, Lru::iterator> by_key_;
};

}  // namespace grok
