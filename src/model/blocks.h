// The two blocks of a Grok layer. Kept apart from the layer loop so each
// reads like its section of SPEC.md.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace grok {

struct AttentionScratch {
  std::vector<float> q, k, v;  // (T, n_heads*head_dim), (T, kv_dim), (T, kv_dim)
  std::vector<float> context;  // (T, n_heads*head_dim), heads concatenated
  std::vector<float> scores;   // per thread: (positions)
  std::vector<int32_t> seg_of; // (T) each row's segment
  // (T, head_dim) each row's rotary cos and sin, and the position they are
  // for: computed by the first layer, reused by the others.
  std::vector<float> rope;
  std::vector<int64_t> rope_pos;
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
  // Per expert: the tokens routed to it and their gates, its inputs prepared
  // for w1 (up), v (gate) and w2 (down), the two branch outputs (n_e, ffn)
  // and the expert's output (n_e, dim).
  std::vector<std::vector<int64_t>> rows;
  std::vector<std::vector<float>> row_gates;
  std::vector<MatmulInput> up_in, gate_in, down_in;
  std::vector<std::vector<float>> h1, hv, y_experts;
  std::vector<float> x, y;               // the one-expert-at-a-time path's gathered rows and output
};

// out (T, dim) = MoE(m): each token through only its top n_experts_used
// experts, weighted by their (not renormalised) router probabilities.
void moe_block(const GrokConfig& c, const LayerWeights& l, const float* m, const uint8_t* valid, int64_t T,
               ThreadPool& pool, MoeScratch& s, float* out);

}  // namespace grok
