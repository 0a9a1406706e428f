#include "engine/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "engine/engine.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

namespace grok {

int64_t default_perplexity_context(const GrokConfig& config) { return std::min<int64_t>(512, config.context_length); }

PerplexityPlan plan_perplexity(const GrokConfig& config, int64_t n_tokens, const PerplexityOptions& options) {
  if (n_tokens < 2) fail("perplexity needs at least 2 tokens; the text has ", n_tokens);
  if (options.n_ctx < 0 || options.n_ctx == 1)
    fail("the perplexity context must be at least 2 tokens (got ", options.n_ctx, ")");
  if (options.batch < 0) fail("the batch size must be positive (got ", options.batch, ")");
  PerplexityPlan p;
  p.n_ctx = options.n_ctx > 0 ? options.n_ctx : default_perplexity_context(config);
  if (p.n_ctx > config.context_length)
    fail("a context of ", p.n_ctx, " tokens exceeds the model's context of ", config.context_length);
  p.n_ctx = std::min(p.n_ctx, n_tokens);  // a text shorter than a chunk is one chunk
  p.chunks = n_tokens / p.n_ctx;
  p.left_out = n_tokens - p.chunks * p.n_ctx;
  p.first = std::min(p.n_ctx / 2, p.n_ctx - 2);
  p.scored_per_chunk = p.n_ctx - 1 - p.first;
  const int64_t batch = options.batch > 0 ? options.batch : p.n_ctx;
  p.chunks_per_pass = std::min(p.chunks, std::max<int64_t>(1, batch / p.n_ctx));
  p.pass_tokens = std::min(batch, p.n_ctx);
  return p;
}

double token_nll(std::span<const float> logits, int32_t target) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float v : logits) sum += double(std::exp(v - mx));
  return std::log(sum) - double(logits[size_t(target)] - mx);
}

PerplexityResult compute_perplexity(const Model& model, std::span<const int32_t> ids,
                                    const PerplexityOptions& options, ThreadPool& pool,
                                    const PerplexityProgress& progress) {
  using Clock = std::chrono::steady_clock;
  const GrokConfig& cfg = model.config;
  if (!model.shard.whole()) fail("perplexity runs on a whole model, not one rank's part of a split one");
  const int64_t n_total = int64_t(ids.size());
  const PerplexityPlan plan = plan_perplexity(cfg, n_total, options);
  const int64_t n_ctx = plan.n_ctx, n_chunks = plan.chunks, first = plan.first;
  const int64_t scored_per_chunk = plan.scored_per_chunk, n_seq = plan.chunks_per_pass, step = plan.pass_tokens;
  const size_t vocab = size_t(cfg.vocab_size);

  PerplexityResult r;
  r.tokens = n_total;
  r.n_ctx = n_ctx;
  r.chunks = n_chunks;
  Transformer transformer(model);
  std::vector<KVCache> caches;
  for (int64_t s = 0; s < std::min(n_seq, n_chunks); ++s) caches.emplace_back(cfg, n_ctx);
  std::vector<float> logits;
  std::vector<double> nll;  // the scored tokens' −log p of the chunks in flight, chunk by chunk
  double sum = 0, sum_sq = 0;
  int64_t count = 0;

  for (int64_t c0 = 0; c0 < n_chunks; c0 += n_seq) {
    const int64_t group = std::min(n_seq, n_chunks - c0);
    const auto t0 = Clock::now();
    for (KVCache& cache : caches) cache.clear();
    nll.assign(size_t(group * scored_per_chunk), 0.0);
    for (int64_t b0 = 0; b0 < n_ctx; b0 += step) {
      const int64_t len = std::min(step, n_ctx - b0);
      // Rows at positions first .. n_ctx-2 predict the next token; a pass
      // with none of them needs only its last row.
      const int64_t lo = std::max(b0, first), hi = std::min(b0 + len, n_ctx - 1);
      const bool scores = lo < hi;
      std::vector<SequenceStep> steps;
      for (int64_t s = 0; s < group; ++s)
        steps.push_back({ids.subspan(size_t((c0 + s) * n_ctx + b0), size_t(len)), &caches[size_t(s)], scores});
      transformer.forward_batch(steps, pool, logits);
      if (!scores) continue;
      // Row (s, p) holds position b0+p of chunk c0+s; each row's −log p goes
      // to its own slot, so the sums below do not depend on the threads.
      const int64_t rows_scored = hi - lo;
      pool.parallel_for(group * rows_scored, [&](int64_t begin, int64_t end, int) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t s = k / rows_scored, pos = lo + k % rows_scored;
          const std::span<const float> row(&logits[size_t(s * len + (pos - b0)) * vocab], vocab);
          const int32_t target = ids[size_t((c0 + s) * n_ctx + pos + 1)];
          nll[size_t(s * scored_per_chunk + (pos - first))] = token_nll(row, target);
        }
      });
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count() / double(group);
    for (int64_t s = 0; s < group; ++s) {
      PerplexityChunk ch;
      ch.index = c0 + s;
      ch.start = (c0 + s) * n_ctx;
      ch.tokens = n_ctx;
      ch.scored = scored_per_chunk;
      for (int64_t i = 0; i < scored_per_chunk; ++i) {
        const double v = nll[size_t(s * scored_per_chunk + i)];
        ch.nll_sum += v;
        sum_sq += v * v;
      }
      sum += ch.nll_sum;
      count += ch.scored;
      ch.mean_nll = ch.nll_sum / double(ch.scored);
      ch.perplexity = std::exp(ch.mean_nll);
      ch.running_perplexity = std::exp(sum / double(count));
      ch.seconds = seconds;
      r.per_chunk.push_back(ch);
      if (progress) progress(r.per_chunk.back(), n_chunks);
    }
  }

  r.scored_tokens = count;
  r.mean_nll = sum / double(count);
  r.perplexity = std::exp(r.mean_nll);
  if (count > 1) {
    const double var = std::max(0.0, sum_sq / double(count) - r.mean_nll * r.mean_nll);
    r.perplexity_stderr = r.perplexity * std::sqrt(var / double(count - 1));
  } else {
    r.perplexity_stderr = std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

PerplexityResult compute_perplexity(Engine& engine, std::span<const int32_t> ids, const PerplexityOptions& options,
                                    const PerplexityProgress& progress) {
  return compute_perplexity(engine.model(), ids, options, engine.pool(), progress);
}

}  // namespace grok
