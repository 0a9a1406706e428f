// The tensors of a Grok-architecture model, bound to their roles. Matrices
// point into the mapped model file; small vectors (norm scales, router) are
// decoded to fp32 once at load.
#pragma once

#include <vector>

#include "kernels/weight_matrix.h"

namespace grok {

struct ExpertWeights {
  WeightMatrix w1;  // (ffn, dim)  moe/linear, the gelu branch
  WeightMatrix v;   // (ffn, dim)  moe/linear_v, the linear branch
  WeightMatrix w2;  // (dim, ffn)  moe/linear_1, down projection
};

struct LayerWeights {
  std::vector<float> attn_norm;      // (dim) rms_norm: before attention
  std::vector<float> attn_out_norm;  // (dim) rms_norm_1: after attention
  std::vector<float> ffn_norm;       // (dim) rms_norm_2: before the MoE
  std::vector<float> ffn_out_norm;   // (dim) rms_norm_3: after the MoE
  WeightMatrix wq;                   // (n_heads*head_dim, dim)
  WeightMatrix wk;                   // (n_kv_heads*head_dim, dim)
  WeightMatrix wv;                   // (n_kv_heads*head_dim, dim)
  WeightMatrix wo;                   // (dim, n_heads*head_dim)
  std::vector<float> router;         // (n_experts, dim)
  std::vector<ExpertWeights> experts;
};

struct GrokWeights {
  WeightMatrix embed;              // (vocab, dim): input embedding
  WeightMatrix output;             // (vocab, dim): output projection; = embed (tied) unless the file has its own
  std::vector<float> final_norm;   // (dim)
  std::vector<LayerWeights> layers;
};

}  // namespace grok
