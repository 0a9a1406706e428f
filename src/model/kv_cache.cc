#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace grok {
namespace {

int64_t checked_capacity(const GrokConfig& c, int64_t capacity) {
  if (capacity <= 0 || capacity > c.context_length)
    fail("KV cache of ", capacity, " positions is outside the model's context (1..", c.context_length, ")");
  return capacity;
}

int64_t blocks_for(int64_t positions, int block_tokens) { return (positions + block_tokens - 1) / block_tokens; }

}  // namespace

KVCache::KVCache(const GrokConfig& c, int64_t capacity)
    : head_dim_(c.head_dim), capacity_(checked_capacity(c, capacity)) {
  // A short cache gets one short block rather than a mostly empty one.
  const int bt = int(std::min<int64_t>(kDefaultBlockTokens, capacity));
  own_ = std::make_unique<KvBlockPool>(c, bt, blocks_for(capacity, bt));
  pool_ = own_.get();
  block_tokens_ = bt;
  fill(c, {}, {});
}

KVCache::KVCache(const GrokConfig& c, KvBlockPool& pool, int64_t capacity, std::span<const int32_t> prefix,
                 std::span<const int32_t> prefix_tokens)
    : pool_(&pool), block_tokens_(pool.block_tokens()), head_dim_(c.head_dim), capacity_(checked_capacity(c, capacity)) {
  fill(c, prefix, prefix_tokens);
}

void KVCache::fill(const GrokConfig& c, std::span<const int32_t> prefix, std::span<const int32_t> prefix_tokens) {
  const int64_t n_blocks = blocks_for(capacity_, block_tokens_);
  const int64_t prefix_len = int64_t(prefix.size()) * block_tokens_;
  if (prefix_len > capacity_)
    fail("KV cache: a prefix of ", prefix.size(), " blocks does not fit ", capacity_, " positions");
  if (int64_t(prefix_tokens.size()) != prefix_len)
    fail("KV cache: a prefix of ", prefix.size(), " blocks needs ", prefix_len, " token ids, not ",
         prefix_tokens.size());
  for (int32_t b : prefix)
    if (pool_->refs(b) < 1) fail("KV cache: prefix block ", b, " is free (it holds nothing)");
  for (int32_t b : prefix) pool_->retain(b);
  table_.assign(prefix.begin(), prefix.end());
  table_.reserve(size_t(n_blocks));
  while (int64_t(table_.size()) < n_blocks) {
    const int32_t b = pool_->allocate();
    if (b < 0) {
      for (int32_t held : table_) pool_->release(held);
      table_.clear();
      fail("KV cache: ", n_blocks - int64_t(prefix.size()), " blocks of ", block_tokens_,
           " positions are needed but only ", pool_->free(), " of ", pool_->total(), " are free");
    }
    table_.push_back(b);
  }
  valid_.assign(size_t(capacity_), 0);
  for (size_t i = 0; i < prefix_tokens.size(); ++i) valid_[i] = prefix_tokens[i] > c.pad_id;  // as forward sets it
  length_ = frozen_ = prefix_len;
}

KVCache KVCache::mirror(KvBlockPool& pool, int64_t capacity, std::vector<int32_t> table, int64_t length) {
  KVCache c;
  c.mirror_ = true;
  c.pool_ = &pool;
  c.block_tokens_ = pool.block_tokens();
  c.head_dim_ = pool.head_dim();
  c.capacity_ = capacity;
  c.length_ = length;
  for (int32_t b : table) pool.mirror_block(b);
  c.table_ = std::move(table);
  c.valid_.assign(size_t(capacity), 0);
  return c;
}

KVCache::~KVCache() {
  if (!mirror_)
    for (int32_t b : table_) pool_->release(b);
}

KVCache::KVCache(KVCache&& o) noexcept
    : mirror_(o.mirror_),
      own_(std::move(o.own_)),
      pool_(o.pool_),
      block_tokens_(o.block_tokens_),
      head_dim_(o.head_dim_),
      capacity_(o.capacity_),
      length_(o.length_),
      frozen_(o.frozen_),
      table_(std::move(o.table_)),
      valid_(std::move(o.valid_)) {
  o.table_.clear();
  o.capacity_ = o.length_ = o.frozen_ = 0;
}

KVCache& KVCache::operator=(KVCache&& o) noexcept {
  if (this == &o) return *this;
  if (!mirror_)
    for (int32_t b : table_) pool_->release(b);
  mirror_ = o.mirror_;
  table_ = std::move(o.table_);
  o.table_.clear();
  own_ = std::move(o.own_);  // after the release above: the old pool may have held those blocks
  pool_ = o.pool_;
  block_tokens_ = o.block_tokens_;
  head_dim_ = o.head_dim_;
  capacity_ = o.capacity_;
  length_ = o.length_;
  frozen_ = o.frozen_;
  valid_ = std::move(o.valid_);
  o.capacity_ = o.length_ = o.frozen_ = 0;
  return *this;
}

void KVCache::set_length(int64_t n) {
  if (n < 0 || n > capacity_) fail("KV cache length ", n, " exceeds its capacity ", capacity_);
  if (n < frozen_) fail("KV cache: positions before ", frozen_, " are shared and cannot be recomputed (length ", n, ")");
  length_ = n;
}

void KVCache::freeze(int64_t n) {
  if (n < 0 || n > length_) fail("KV cache: cannot freeze ", n, " positions of ", length_, " computed");
  frozen_ = std::max(frozen_, n);
}

}  // namespace grok
