#include "model/kv_block_pool.h"

#include <atomic>
#include <mutex>
#include <utility>

#include "core/error.h"

namespace grok {
namespace {

std::atomic<uint64_t> next_pool_id{1};
std::atomic<bool> tracking{false};
std::mutex retired_mutex;
std::vector<uint64_t> retired;

}  // namespace

KvBlockPool::KvBlockPool(const GrokConfig& c, int block_tokens, int64_t n_blocks)
    : id_(next_pool_id++),
      n_layers_(c.n_layers),
      n_kv_heads_(c.kv_heads_kept()),
      head_dim_(c.head_dim),
      pad_id_(c.pad_id),
      block_tokens_(block_tokens),
      half_floats_(c.n_layers * c.kv_heads_kept() * block_tokens * c.head_dim) {
  if (block_tokens < 1) fail("KV block size ", block_tokens, " must be at least 1 position");
  if (n_blocks < 1) fail("a KV block pool needs at least one block (got ", n_blocks, ")");
  if (n_blocks > INT32_MAX) fail("a KV block pool of ", n_blocks, " blocks is too large");
  storage_.resize(size_t(n_blocks));
  refs_.assign(size_t(n_blocks), 0);
  free_.reserve(size_t(n_blocks));
  for (int64_t b = n_blocks - 1; b >= 0; --b) free_.push_back(int32_t(b));  // block 0 first
}

KvBlockPool::~KvBlockPool() {
  if (!tracking) return;
  std::lock_guard lock(retired_mutex);
  retired.push_back(id_);
}

void KvBlockPool::track_retired() { tracking = true; }

std::vector<uint64_t> KvBlockPool::take_retired() {
  std::lock_guard lock(retired_mutex);
  return std::exchange(retired, {});
}

void KvBlockPool::mirror_block(int32_t block) {
  if (block < 0 || block >= total()) fail("KV block pool: no block ", block, " (pool of ", total(), ")");
  if (!storage_[size_t(block)]) storage_[size_t(block)].reset(new float[size_t(2 * half_floats_)]());
}

int32_t KvBlockPool::allocate() {
  if (free_.empty()) return -1;
  const int32_t b = free_.back();
  free_.pop_back();
  // Zeroed (attention never reads an unwritten position) so its pages are
  // touched here, when a sequence starts, not during its timed passes.
  if (!storage_[size_t(b)]) storage_[size_t(b)].reset(new float[size_t(2 * half_floats_)]());
  refs_[size_t(b)] = 1;
  return b;
}

void KvBlockPool::check(int32_t block, const char* what) const {
  if (block < 0 || block >= total()) fail("KV block pool: ", what, " of block ", block, " (pool of ", total(), ")");
  if (refs_[size_t(block)] <= 0) fail("KV block pool: ", what, " of free block ", block);
}

void KvBlockPool::retain(int32_t block) {
  check(block, "retain");
  ++refs_[size_t(block)];
}

void KvBlockPool::release(int32_t block) {
  check(block, "release");
  if (--refs_[size_t(block)] == 0) free_.push_back(block);
}

int32_t KvBlockPool::refs(int32_t block) const {
  if (block < 0 || block >= total()) fail("KV block pool: no block ", block, " (pool of ", total(), ")");
  return refs_[size_t(block)];
}

}  // namespace grok
