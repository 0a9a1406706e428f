// The two blocks of a Grok layer. Kept apart from the layer loop so each
// reads like its section of SPEC.md.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace grok {

struct AttentionScratch {
  std::vector<float> q, k, v;  // (T, n_heads*head_dim), (T, kv_dim), (T, kv_dim)
  std::vector<float> context;  // (T, n_heads*head_dim), heads concatenated
  std::vector<float> scores;   // per thread: (positions)
  std::vector<int32_t> seg_of; // (T) each row's segment
};

// Rows [first, first + count) of a batch: one sequence's new tokens, at
// positions pos0.. of its own cache.
struct AttentionSegment {
  int64_t first, count, pos0;
  KVCache* cache;
};

// out (T, dim) = Attention(a) for the T tokens of the segments (which cover
// rows 0..T-1 in order). Projections run over the whole batch; each token
// attends within its own sequence, whose cache gets its k and v.
void attention_block(const GrokConfig& c, const LayerWeights& l, int64_t layer, const float* a, int64_t T,
                     std::span<const AttentionSegment> segments, ThreadPool& pool, AttentionScratch& s, float* out);

struct MoeScratch {
  std::vector<float> router_probs;       // (T, n_experts)
  std::vector<int32_t> chosen;           // (T, n_experts_used) expert ids
  std::vector<float> gates;              // (T, n_experts_used)
  std::vector<int32_t> order;            // (n_experts) experts of one token by probability
  std::vector<int64_t> rows;             // tokens routed to the current expert
  std::vector<float> row_gates;          // their gates
  std::vector<float> x, h1, hv, y;       // per expert: gathered rows and branch outputs
};

// out (T, dim) = MoE(m): each token through only its top n_experts_used
// experts, weighted by their (not renormalised) router probabilities.
void moe_block(const GrokConfig& c, const LayerWeights& l, const float* m, const uint8_t* valid, int64_t T,
               ThreadPool& pool, MoeScratch& s, float* out);

}  // namespace grok
