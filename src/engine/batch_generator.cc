#include "engine/batch_generator.h"

#include <algorithm>

#include "core/error.h"

namespace grok {

BatchGenerator::BatchGenerator(Engine& engine, int max_batch)
    : engine_(engine), transformer_(engine.model()), max_batch_(max_batch) {
  if (max_batch < 1) fail("batch size ", max_batch, " must be at least 1");
}

int64_t BatchGenerator::submit(BatchRequest request) {
  // Built now so a request that cannot run is refused at once; its cache is
  // allocated here too, which bounds memory by what the caller admits.
  auto g = std::make_unique<Generation>(engine_.model().config, engine_.tokenizer(), request.prompt, request.options);
  const int64_t id = next_id_++;
  waiting_.push_back(Entry{id, std::move(request), std::move(g)});
  return id;
}

void BatchGenerator::retire(Entry& e, const char* reason_override) {
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
  while (int(running_.size()) < max_batch_ && !waiting_.empty()) {
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  if (running_.empty()) return false;

  steps_.clear();
  for (Entry& e : running_) steps_.push_back({e.generation->pending(), &e.generation->cache(), false});
  transformer_.forward_batch(steps_, engine_.pool(), logits_);

  const int64_t V = engine_.model().config.vocab_size;
  std::vector<Entry> still;
  for (size_t i = 0; i < running_.size(); ++i) {
    Entry& e = running_[i];
    const std::span<const float> row(&logits_[i * size_t(V)], size_t(V));
    if (e.generation->advance(row, e.request.on_token))
      still.push_back(std::move(e));
    else
      retire(e, nullptr);
  }
  running_ = std::move(still);
  return !running_.empty() || !waiting_.empty();
}

}  // namespace grok
