#include "engine/batch_generator.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "core/error.h"
#include "kernels/packed_matrix.h"

namespace grok {
namespace {

// /proc/meminfo's MemAvailable in bytes, or 0 when unknown.
uint64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  uint64_t kib = 0;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

int64_t default_budget_tokens(const GrokConfig& c, int max_batch) {
  const int64_t bytes_per_token = 2 * c.n_layers * c.n_kv_heads * c.head_dim * 4;
  int64_t tokens = int64_t(max_batch) * c.context_length;
  if (const uint64_t avail = available_memory(); avail)
    tokens = std::min(tokens, int64_t(avail / 2 / uint64_t(bytes_per_token)));
  return std::max(tokens, c.context_length);  // whatever fits the model must be able to run
}

// Whether every matrix gives a token the same result whatever else is in
// its pass: all but checkpoint int8 on the row kernel (kernels/matmul.cc,
// matmul_i8, which splits the work differently for up to 4 tokens).
bool rows_independent(const GrokWeights& w) {
  const bool packed_i8 = packed_kernels_available();
  auto ok = [&](const WeightMatrix& m) { return m.dtype != DType::I8 || (m.packed && packed_i8); };
  if (!ok(w.output)) return false;
  for (const LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo})
      if (!ok(*m)) return false;
    for (const ExpertWeights& e : l.experts)
      if (!ok(e.w1) || !ok(e.v) || !ok(e.w2)) return false;
  }
  return true;
}

BatchOptions with_max_batch(int max_batch) {
  BatchOptions o;
  o.max_batch = max_batch;
  return o;
}

int checked_block_tokens(const GrokConfig& c, const BatchOptions& o) {
  if (o.kv_block_tokens < 1 || o.kv_block_tokens > c.context_length)
    fail("KV block size ", o.kv_block_tokens, " is outside 1..", c.context_length, " (the model's context)");
  return o.kv_block_tokens;
}

int64_t pool_blocks(const GrokConfig& c, const BatchOptions& o) {
  if (o.max_batch < 1) fail("batch size ", o.max_batch, " must be at least 1");
  const int bt = checked_block_tokens(c, o);
  if (o.kv_budget_tokens < 0) fail("KV budget of ", o.kv_budget_tokens, " tokens must not be negative");
  const int64_t budget = o.kv_budget_tokens ? o.kv_budget_tokens : default_budget_tokens(c, o.max_batch);
  if (budget < bt) fail("KV budget of ", budget, " tokens is less than one block of ", bt);
  return budget / bt;
}

}  // namespace

BatchGenerator::BatchGenerator(Engine& engine, int max_batch) : BatchGenerator(engine, with_max_batch(max_batch)) {}

BatchGenerator::BatchGenerator(Engine& engine, BatchOptions options)
    : engine_(engine),
      transformer_(engine.model(), engine.comm()),
      max_batch_(options.max_batch),
      pool_(engine.model().config, checked_block_tokens(engine.model().config, options),
            pool_blocks(engine.model().config, options)) {
  if (options.prefix_cache && rows_independent(engine.model().weights)) prefix_ = std::make_unique<PrefixCache>(pool_);
}

BatchGenerator::~BatchGenerator() = default;

int64_t BatchGenerator::blocks_for(int64_t positions) const {
  return (positions + pool_.block_tokens() - 1) / pool_.block_tokens();
}

int64_t BatchGenerator::submit(BatchRequest request) {
  // Checked now so a request that cannot run is refused at once; its KV
  // blocks are taken only when it starts.
  auto g = std::make_unique<Generation>(engine_.model().config, engine_.tokenizer(), request.prompt, request.options,
                                        /*own_cache=*/false);
  if (const int64_t need = blocks_for(g->capacity()); need > pool_.total())
    fail("the prompt (", g->prompt().size(), " tokens) plus up to ", request.options.max_tokens,
         " generated tokens needs ", need, " KV blocks of ", pool_.block_tokens(), " positions, but the KV budget is ",
         pool_.total(), " blocks (", pool_.total() * pool_.block_tokens(), " tokens)");
  const int64_t id = next_id_++;
  waiting_.push_back(Entry{id, std::move(request), std::move(g)});
  return id;
}

bool BatchGenerator::try_admit(Entry& e) {
  Generation& g = *e.generation;
  const int64_t bt = pool_.block_tokens();
  // At most the blocks before the last prompt token: that one is computed for its logits.
  // Prompt logprobs need every prompt position's logits: nothing reused.
  std::vector<int32_t> prefix;
  if (prefix_ && !e.request.options.prompt_logprobs)
    prefix = prefix_->match(g.prompt(), (int64_t(g.prompt().size()) - 1) / bt);
  const int64_t fresh = blocks_for(g.capacity()) - int64_t(prefix.size());
  // Held while room is made, so making room cannot evict them.
  for (int32_t b : prefix) pool_.retain(b);
  bool fits = pool_.free() >= fresh;
  try {
    if (!fits && prefix_ && pool_.free() + prefix_->evictable() >= fresh) fits = prefix_->make_free(fresh);
    if (fits) {
      const std::span<const int32_t> computed(g.prompt().data(), prefix.size() * size_t(bt));
      g.attach_cache(std::make_unique<KVCache>(engine_.model().config, pool_, g.capacity(), prefix, computed));
      if (!prefix.empty()) {
        ++prefix_hits_;
        prefix_hit_tokens_ += int64_t(computed.size());
      }
    }
  } catch (...) {
    for (int32_t b : prefix) pool_.release(b);
    throw;
  }
  for (int32_t b : prefix) pool_.release(b);
  return fits;
}

void BatchGenerator::publish(Entry& e) {
  Generation& g = *e.generation;
  if (!prefix_ || !g.has_cache()) return;
  KVCache& cache = g.cache();
  const int64_t n_full = cache.length() / pool_.block_tokens();
  cache.freeze(n_full * pool_.block_tokens());  // shared from now on: never rewritten
  prefix_->insert(g.cached_tokens(), cache.blocks(), n_full);
}

void BatchGenerator::retire(Entry& e, const char* reason_override) {
  publish(e);
  e.generation->release_cache();  // its blocks go back before on_done can submit more
  GenerateResult& r = e.generation->result();
  if (reason_override) r.finish_reason = reason_override;
  if (e.request.on_done) e.request.on_done(r);
  e.generation.reset();
}

void BatchGenerator::cancel(int64_t id) {
  auto same = [&](const Entry& e) { return e.id == id; };
  if (auto it = std::find_if(running_.begin(), running_.end(), same); it != running_.end()) {
    retire(*it, "cancelled");
    running_.erase(it);
  } else if (auto wt = std::find_if(waiting_.begin(), waiting_.end(), same); wt != waiting_.end()) {
    retire(*wt, "cancelled");
    waiting_.erase(wt);
  }
}

bool BatchGenerator::step() {
  // In order: a request that does not fit yet holds back those after it, so
  // a large one is not starved by a stream of small ones.
  const size_t before = running_.size();
  while (int(running_.size()) < max_batch_ && !waiting_.empty() && try_admit(waiting_.front())) {
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  if (running_.empty()) {
    // Cannot happen (submit refuses what could never fit, and with nothing
    // running every block is free or evictable); an error beats a silent stall.
    if (!waiting_.empty())
      fail("batch: the next request needs more KV blocks than the ", pool_.total(), " of the budget");
    return false;
  }

  steps_.clear();
  for (Entry& e : running_)
    steps_.push_back({e.generation->pending(), &e.generation->cache(), e.generation->needs_all_positions()});
  transformer_.forward_batch(steps_, engine_.pool(), logits_);
  // The prompts just computed are reusable by requests admitted from now on.
  for (size_t i = before; i < running_.size(); ++i) publish(running_[i]);

  // Each step's logits rows: all its positions', or its last one's.
  const size_t V = size_t(engine_.model().config.vocab_size);
  std::vector<Entry> still;
  size_t row = 0;
  for (size_t i = 0; i < running_.size(); ++i) {
    Entry& e = running_[i];
    const size_t rows = steps_[i].all_positions ? steps_[i].tokens.size() : 1;
    const std::span<const float> logits(&logits_[row * V], rows * V);
    row += rows;
    if (e.generation->advance(logits, e.request.on_token))
      still.push_back(std::move(e));
    else
      retire(e, nullptr);
  }
  running_ = std::move(still);
  return !running_.empty() || !waiting_.empty();
}

KvMemoryStats BatchGenerator::kv_stats() const {
  KvMemoryStats s;
  s.block_tokens = pool_.block_tokens();
  s.blocks_total = pool_.total();
  s.blocks_free = pool_.free();
  s.blocks_cached = prefix_ ? prefix_->evictable() : 0;
  s.blocks_used = s.blocks_total - s.blocks_free - s.blocks_cached;
  s.prefix_hits = prefix_hits_;
  s.prefix_hit_tokens = prefix_hit_tokens_;
  return s;
}

}  // namespace grok
