// `grok perplexity`: a model's perplexity on a text, measured as llama.cpp's
// llama-perplexity measures it. The ids are split into consecutive chunks of
// n_ctx tokens (a shorter remainder is left out); each chunk is evaluated
// from an empty KV cache, and only the second half of its positions is
// scored: the token at position p+1 under the logits of position p, for
// p from n_ctx/2 to n_ctx-2 (n_ctx-1-n_ctx/2 tokens a chunk; the first half
// is context only). No token is replaced by BOS (the reference prepends none).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"

namespace grok {

class Engine;

struct PerplexityOptions {
  int64_t n_ctx = 0;  // tokens per chunk; 0: default_perplexity_context
  // Tokens per forward pass: below n_ctx, a chunk is evaluated in passes of
  // this many tokens over its KV cache; from n_ctx up, batch / n_ctx whole
  // chunks (rounded down) go through one pass together. 0: n_ctx.
  int64_t batch = 0;
};

struct PerplexityChunk {
  int64_t index = 0;   // 0-based
  int64_t start = 0;   // position of its first token in the ids
  int64_t tokens = 0;  // its length
  int64_t scored = 0;  // tokens scored in it
  double nll_sum = 0;  // Σ −log p over its scored tokens (nats)
  double mean_nll = 0; // nll_sum / scored
  double perplexity = 0;          // exp(mean_nll): this chunk alone
  double running_perplexity = 0;  // exp(mean NLL over chunks 0..index): llama.cpp's "[i]x" figure
  double seconds = 0;             // wall time of the pass(es) that evaluated it
};

struct PerplexityResult {
  int64_t tokens = 0;         // ids given
  int64_t n_ctx = 0;          // tokens per chunk actually used
  int64_t chunks = 0;
  int64_t scored_tokens = 0;  // Σ scored over the chunks
  double mean_nll = 0;        // mean −log p over the scored tokens, nats
  double perplexity = 0;      // exp(mean_nll)
  // llama.cpp's uncertainty: perplexity · sqrt((mean(nll²) − mean(nll)²) / (scored − 1));
  // NaN with a single scored token.
  double perplexity_stderr = 0;
  std::vector<PerplexityChunk> per_chunk;
};

// Called after each chunk is scored, with the number of chunks in all.
using PerplexityProgress = std::function<void(const PerplexityChunk&, int64_t chunks)>;

// min(512, the model's context length).
int64_t default_perplexity_context(const GrokConfig& config);

// How compute_perplexity splits `n_tokens` ids, options checked (it throws
// grok::Error where compute_perplexity would).
struct PerplexityPlan {
  int64_t n_ctx = 0;             // tokens per chunk
  int64_t chunks = 0;
  int64_t left_out = 0;          // the remainder after the last whole chunk, not evaluated
  int64_t first = 0;             // a chunk's positions before this one are context only
  int64_t scored_per_chunk = 0;  // n_ctx − 1 − first
  int64_t chunks_per_pass = 1;   // chunks evaluated together
  int64_t pass_tokens = 0;       // tokens of each such chunk one pass takes
};
PerplexityPlan plan_perplexity(const GrokConfig& config, int64_t n_tokens, const PerplexityOptions& options);

// −log softmax(logits)[target] in nats: the maximum subtracted in fp32,
// exp in fp32, the sum of the exponentials in double.
double token_nll(std::span<const float> logits, int32_t target);

// The scoring as described at the top. Ids shorter than n_ctx make one chunk
// of them all; with fewer than 2 ids, or an n_ctx below 2 or above the
// model's context, it throws grok::Error. A chunk of n tokens scores those
// after its first min(n/2, n−2) positions, so that a chunk of 2 scores one.
// The model must be whole (not one rank's part of a split model).
PerplexityResult compute_perplexity(const Model& model, std::span<const int32_t> ids,
                                    const PerplexityOptions& options, ThreadPool& pool,
                                    const PerplexityProgress& progress = {});
// The same over an engine's model and thread pool.
PerplexityResult compute_perplexity(Engine& engine, std::span<const int32_t> ids,
                                    const PerplexityOptions& options, const PerplexityProgress& progress = {});

}  // namespace grok
