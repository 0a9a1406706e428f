// KV memory in blocks: the pool's accounting, a cache's block table over it,
// and the prefix cache's exact, least-recently-used reuse.
#include "model/kv_block_pool.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "core/error.h"
#include "engine/prefix_cache.h"
#include "model/kv_cache.h"
#include "test_support.h"

namespace grok {
namespace {

GrokConfig small_config() {
  GrokConfig c;
  c.n_layers = 2;
  c.n_kv_heads = 2;
  c.head_dim = 8;
  c.context_length = 64;
  return c;
}

std::vector<int32_t> iota_tokens(size_t n, int32_t first) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(KvBlockPool, CountsBlocksAsTheyAreTakenAndGivenBack) {
  KvBlockPool pool(small_config(), 4, 3);
  EXPECT_EQ(pool.total(), 3);
  EXPECT_EQ(pool.free(), 3);
  EXPECT_EQ(pool.bytes_per_token(), 2 * 2 * 2 * 8 * 4);
  std::set<int32_t> got;
  for (int i = 0; i < 3; ++i) got.insert(pool.allocate());
  EXPECT_EQ(got, (std::set<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.free(), 0);
  EXPECT_EQ(pool.held(), 3);
  EXPECT_EQ(pool.allocate(), -1);  // exhausted: no block, no throw

  pool.retain(1);
  EXPECT_EQ(pool.refs(1), 2);
  pool.release(1);
  EXPECT_EQ(pool.free(), 0);  // still held once
  pool.release(1);
  EXPECT_EQ(pool.free(), 1);
  EXPECT_EQ(pool.refs(1), 0);
  EXPECT_EQ(pool.allocate(), 1);  // the block just freed comes back first
}

TEST(KvBlockPool, RefusesBadIdsAndSizes) {
  KvBlockPool pool(small_config(), 4, 2);
  test::expect_error([&] { pool.retain(0); }, "free block 0");  // not allocated
  test::expect_error([&] { pool.release(5); }, "block 5");
  test::expect_error([&] { pool.retain(-1); }, "block -1");
  test::expect_error([&] { (void)pool.refs(2); }, "no block 2");
  test::expect_error([] { KvBlockPool(small_config(), 0, 2); }, "block size 0");
  test::expect_error([] { KvBlockPool(small_config(), 4, 0); }, "at least one block");
}

TEST(KvBlockPool, EachLayerAndHeadHasItsOwnContiguousPositions) {
  const GrokConfig c = small_config();
  KvBlockPool pool(c, 4, 2);
  const int32_t a = pool.allocate(), b = pool.allocate();
  // Every (block, k/v, layer, head, position, element) is a distinct float.
  std::set<const float*> seen;
  for (int32_t blk : {a, b})
    for (int64_t l = 0; l < c.n_layers; ++l)
      for (int64_t h = 0; h < c.n_kv_heads; ++h)
        for (float* base : {pool.keys(blk, l, h), pool.values(blk, l, h)})
          for (int64_t i = 0; i < 4 * c.head_dim; ++i) EXPECT_TRUE(seen.insert(base + i).second);
  EXPECT_EQ(seen.size(), size_t(2 * 2 * c.n_layers * c.n_kv_heads * 4 * c.head_dim));
}

TEST(KVCache, IsABlockTableOverThePool) {
  const GrokConfig c = small_config();
  KvBlockPool pool(c, 4, 5);
  {
    KVCache cache(c, pool, 10);  // 3 blocks of 4
    EXPECT_EQ(cache.blocks().size(), 3u);
    EXPECT_EQ(pool.free(), 2);
    EXPECT_EQ(cache.length(), 0);
    for (int64_t pos = 0; pos < 10; ++pos) {
      EXPECT_EQ(cache.key(1, 1, pos), cache.block_keys(pos / 4, 1, 1) + (pos % 4) * c.head_dim);
      EXPECT_EQ(cache.value(0, 1, pos), pool.values(cache.blocks()[size_t(pos / 4)], 0, 1) + (pos % 4) * c.head_dim);
    }
    // Too few free blocks: refused, and nothing stays taken.
    test::expect_error([&] { KVCache(c, pool, 12); }, "only 2 of 5 are free");
    EXPECT_EQ(pool.free(), 2);
  }
  EXPECT_EQ(pool.free(), 5);  // the cache gave its blocks back
}

TEST(KVCache, MapsAComputedPrefixAndNeverRewritesIt) {
  const GrokConfig c = small_config();
  KvBlockPool pool(c, 4, 4);
  const int32_t shared = pool.allocate();
  std::vector<int32_t> tokens = {5, 0, 7, 9};  // 0 is the pad id: masked
  {
    const int32_t prefix[] = {shared};
    KVCache cache(c, pool, 9, prefix, tokens);
    EXPECT_EQ(pool.refs(shared), 2);
    EXPECT_EQ(cache.blocks()[0], shared);
    EXPECT_EQ(cache.length(), 4);
    EXPECT_EQ(cache.frozen(), 4);
    EXPECT_EQ(cache.valid()[0], 1);
    EXPECT_EQ(cache.valid()[1], 0);
    test::expect_error([&] { cache.set_length(3); }, "shared");
    test::expect_error([&] { cache.clear(); }, "shared");
    cache.set_length(6);
    cache.freeze(6);
    test::expect_error([&] { cache.set_length(5); }, "shared");
    test::expect_error([&] { cache.freeze(7); }, "cannot freeze");
  }
  EXPECT_EQ(pool.refs(shared), 1);
  const int32_t prefix[] = {shared};
  test::expect_error([&] { KVCache(c, pool, 9, prefix, std::vector<int32_t>{1, 2}); }, "needs 4 token ids");
  test::expect_error([&] { KVCache(c, pool, 3, prefix, tokens); }, "does not fit");
  pool.release(shared);
  test::expect_error([&] { KVCache(c, pool, 9, prefix, tokens); }, "is free");
  EXPECT_EQ(pool.free(), 4);
}

TEST(KVCache, OnItsOwnKeepsTheContextCheckAndMoves) {
  const GrokConfig c = small_config();
  test::expect_error([&] { KVCache(c, 0); }, "outside the model's context");
  test::expect_error([&] { KVCache(c, 65); }, "outside the model's context");
  KVCache a(c, 40);
  EXPECT_EQ(a.capacity(), 40);
  EXPECT_EQ(a.blocks().size(), 3u);  // 16-position blocks
  KVCache small(c, 5);
  EXPECT_EQ(small.block_tokens(), 5);  // one short block
  float* k = a.key(1, 0, 33);
  k[0] = 1.5f;
  a.set_length(34);
  KVCache b(std::move(a));
  EXPECT_EQ(b.length(), 34);
  EXPECT_EQ(b.key(1, 0, 33), k);  // the same memory, now b's
  EXPECT_EQ(a.blocks().size(), 0u);
  a = std::move(b);
  EXPECT_EQ(a.key(1, 0, 33)[0], 1.5f);
}

// A pool of `n` blocks of 4 with a prefix cache over it.
struct Cached {
  KvBlockPool pool;
  PrefixCache cache;
  explicit Cached(int64_t n) : pool(small_config(), 4, n), cache(pool) {}

  // A sequence that computed `tokens` into fresh blocks and published them;
  // returns its blocks, held by the caller.
  std::vector<int32_t> publish(const std::vector<int32_t>& tokens) {
    std::vector<int32_t> blocks;
    for (size_t i = 0; i < (tokens.size() + 3) / 4; ++i) blocks.push_back(pool.allocate());
    cache.insert(tokens, blocks, int64_t(tokens.size()) / 4);
    return blocks;
  }
  void drop(const std::vector<int32_t>& blocks) {
    for (int32_t b : blocks) pool.release(b);
  }
};

TEST(PrefixCache, FindsTheLongestCachedPrefixExactly) {
  Cached c(8);
  const std::vector<int32_t> t = iota_tokens(10, 3);  // 2 full blocks and a partial one
  const std::vector<int32_t> blocks = c.publish(t);
  EXPECT_EQ(c.cache.size(), 2);
  EXPECT_EQ(c.pool.refs(blocks[0]), 2);
  EXPECT_EQ(c.pool.refs(blocks[2]), 1);  // the partial block is not kept
  c.drop(blocks);
  EXPECT_EQ(c.pool.free(), 8 - 2);
  EXPECT_EQ(c.cache.evictable(), 2);

  EXPECT_EQ(c.cache.match(t, 10), (std::vector<int32_t>{blocks[0], blocks[1]}));
  EXPECT_EQ(c.cache.match(t, 1), (std::vector<int32_t>{blocks[0]}));
  EXPECT_EQ(c.cache.match(std::span(t).first(7), 10), (std::vector<int32_t>{blocks[0]}));  // only whole blocks
  std::vector<int32_t> other = t;
  other[5] = 99;  // differs in the second block
  EXPECT_EQ(c.cache.match(other, 10), (std::vector<int32_t>{blocks[0]}));
  other[0] = 99;  // and in the first: nothing, though the second block's own tokens match
  other[5] = t[5];
  EXPECT_TRUE(c.cache.match(other, 10).empty());

  // Publishing the same prefix again keeps the first copy.
  const std::vector<int32_t> again = c.publish(t);
  EXPECT_EQ(c.cache.size(), 2);
  EXPECT_EQ(c.cache.match(t, 10), (std::vector<int32_t>{blocks[0], blocks[1]}));
  c.drop(again);
  EXPECT_EQ(c.pool.free(), 8 - 2);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedBlocksNobodyHolds) {
  Cached c(6);
  const std::vector<int32_t> a = iota_tokens(8, 10), b = iota_tokens(8, 50), d = iota_tokens(8, 90);
  const std::vector<int32_t> ba = c.publish(a), bb = c.publish(b), bd = c.publish(d);
  c.drop(ba);
  c.drop(bb);  // d's blocks stay held by their sequence
  EXPECT_EQ(c.pool.free(), 0);
  EXPECT_EQ(c.cache.evictable(), 4);
  c.cache.match(a, 2);  // a is now more recent than b

  ASSERT_TRUE(c.cache.make_free(1));
  // b's tail went first (a chain loses its tail before its head).
  EXPECT_EQ(c.cache.match(b, 2), (std::vector<int32_t>{bb[0]}));
  ASSERT_TRUE(c.cache.make_free(2));  // b's head was just used: a's tail goes
  EXPECT_EQ(c.cache.match(a, 2), (std::vector<int32_t>{ba[0]}));
  EXPECT_EQ(c.cache.match(b, 2), (std::vector<int32_t>{bb[0]}));
  EXPECT_FALSE(c.cache.make_free(5));  // d's blocks are held: only 4 can be freed
  EXPECT_EQ(c.pool.free(), 4);
  EXPECT_TRUE(c.cache.match(a, 2).empty());
  EXPECT_EQ(c.cache.match(d, 2), bd);
  c.drop(bd);
  EXPECT_TRUE(c.cache.make_free(6));
  EXPECT_EQ(c.cache.size(), 0);
}

TEST(PrefixCache, ABlockWhoseParentWasEvictedNeverMatches) {
  Cached c(4);
  const std::vector<int32_t> t = iota_tokens(8, 20);
  const std::vector<int32_t> first = c.publish(t);
  c.pool.release(first[0]);  // the head is free to evict; the tail stays held
  ASSERT_TRUE(c.cache.make_free(3));
  EXPECT_EQ(c.cache.size(), 1);  // the tail's entry, now stranded
  // The same first block computed again, into another block.
  const std::vector<int32_t> head = c.publish(std::vector<int32_t>(t.begin(), t.begin() + 4));
  // Its tail is not the stranded entry's child: only the head matches.
  EXPECT_EQ(c.cache.match(t, 2), head);
  c.drop(head);
  // Publishing the whole prefix again replaces the stranded entry.
  const std::vector<int32_t> whole = c.publish(t);
  EXPECT_EQ(c.cache.match(t, 2), (std::vector<int32_t>{head[0], whole[1]}));
  c.drop(whole);
  c.pool.release(first[1]);
  EXPECT_EQ(c.cache.size(), 2);
  EXPECT_TRUE(c.cache.make_free(4));
}

TEST(PrefixCache, RefusesBlocksThatDoNotFit) {
  Cached c(2);
  const int32_t blocks[] = {c.pool.allocate()};
  test::expect_error([&] { c.cache.insert(iota_tokens(4, 1), blocks, 2); }, "do not fit");
  test::expect_error([&] { c.cache.insert(iota_tokens(3, 1), blocks, 1); }, "do not fit");
  c.pool.release(blocks[0]);
}

}  // namespace
}  // namespace grok
