#include "engine/prefix_cache.h"

#include <algorithm>

#include "core/error.h"

namespace grok {
namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The hash of a prefix extended by one block's tokens.
uint64_t chain(uint64_t h, std::span<const int32_t> tokens) {
  for (int32_t t : tokens) h = mix(h ^ (uint64_t(uint32_t(t)) + 0x9e3779b97f4a7c15ull));
  return h;
}

constexpr uint64_t kEmptyPrefix = 0x6a09e667f3bcc908ull;

}  // namespace

PrefixCache::PrefixCache(KvBlockPool& pool) : pool_(pool), block_tokens_(pool.block_tokens()) {}

PrefixCache::~PrefixCache() {
  for (const Entry& e : entries_) pool_.release(e.block);
}

PrefixCache::Entry* PrefixCache::find(uint64_t key, int32_t parent, uint64_t parent_serial,
                                      std::span<const int32_t> tokens) {
  const auto it = by_key_.find(key);
  if (it == by_key_.end()) return nullptr;
  Entry& e = *it->second;
  if (e.parent != parent || e.parent_serial != parent_serial) return nullptr;
  if (!std::equal(tokens.begin(), tokens.end(), e.tokens.begin(), e.tokens.end())) return nullptr;
  return &e;
}

void PrefixCache::erase(Lru::iterator it) {
  by_key_.erase(it->key);
  pool_.release(it->block);
  entries_.erase(it);
}

std::vector<int32_t> PrefixCache::match(std::span<const int32_t> tokens, int64_t max_blocks) {
  std::vector<int32_t> blocks;
  std::vector<Lru::iterator> used;
  uint64_t h = kEmptyPrefix, parent_serial = 0;
  int32_t parent = -1;
  const int64_t n = std::min<int64_t>(max_blocks, int64_t(tokens.size()) / block_tokens_);
  for (int64_t i = 0; i < n; ++i) {
    const auto own = tokens.subspan(size_t(i * block_tokens_), size_t(block_tokens_));
    h = chain(h, own);
    Entry* e = find(h, parent, parent_serial, own);
    if (!e) break;
    blocks.push_back(e->block);
    used.push_back(by_key_.at(h));
    parent = e->block;
    parent_serial = e->serial;
  }
  // Deepest first, so the first block ends most recent: eviction takes a
  // chain's tail before its head (a head's loss strands its tail).
  for (auto it = used.rbegin(); it != used.rend(); ++it) entries_.splice(entries_.begin(), entries_, *it);
  return blocks;
}

void PrefixCache::insert(std::span<const int32_t> tokens, std::span<const int32_t> blocks, int64_t n_full) {
  if (n_full < 0 || n_full > int64_t(blocks.size()) || n_full * block_tokens_ > int64_t(tokens.size()))
    fail("prefix cache: ", n_full, " full blocks of ", block_tokens_, " positions do not fit ", blocks.size(),
         " blocks and ", tokens.size(), " tokens");
  std::vector<Lru::iterator> chain_entries;
  uint64_t h = kEmptyPrefix, parent_serial = 0;
  int32_t parent = -1;
  for (int64_t i = 0; i < n_full; ++i) {
    const auto own = tokens.subspan(size_t(i * block_tokens_), size_t(block_tokens_));
    h = chain(h, own);
    if (!find(h, parent, parent_serial, own)) {
      // A stale entry (its parent was evicted) or another prefix of the
      // same hash gives way to this one.
      if (const auto old = by_key_.find(h); old != by_key_.end()) erase(old->second);
      pool_.retain(blocks[size_t(i)]);
      entries_.push_front(Entry{h, blocks[size_t(i)], parent, parent_serial, next_serial_++, {own.begin(), own.end()}});
      by_key_[h] = entries_.begin();
    }
    const Lru::iterator it = by_key_.at(h);
    chain_entries.push_back(it);
    parent = it->block;
    parent_serial = it->serial;
  }
  for (auto it = chain_entries.rbegin(); it != chain_entries.rend(); ++it)
    entries_.splice(entries_.begin(), entries_, *it);
}

bool PrefixCache::make_free(int64_t n) {
  auto it = entries_.end();
  while (pool_.free() < n && it != entries_.begin()) {
    --it;
    if (pool_.refs(it->block) == 1) erase(it++);
  }
  return pool_.free() >= n;
}

int64_t PrefixCache::evictable() const {
  return std::count_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return pool_.refs(e.block) == 1; });
}

}  // namespace grok
