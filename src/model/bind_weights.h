// Checks a tensor table against what a Grok-architecture model of a given
// config needs and binds each tensor to its role. Shared by every format;
// each format only says how its tensors are named and laid out.
#pragma once

#include <functional>
#include <string>

#include "io/tensor_store.h"
#include "model/config.h"
#include "model/weights.h"

namespace grok {

enum class LayerTensor { AttnNorm, AttnOutNorm, FfnNorm, FfnOutNorm, Q, K, V, O, Router };
enum class ExpertTensor { W1, V, W2 };

struct TensorNaming {
  std::string embed;
  std::string final_norm;
  std::string output;  // an untied output projection, used when present (Grok-1 ties it)
  std::function<std::string(int64_t layer, LayerTensor)> layer;
  // Stacked: one [n_experts][out][in] tensor per kind (GGUF); otherwise one
  // [out][in] tensor per expert (Hugging Face).
  bool stacked_experts = false;
  std::function<std::string(int64_t layer, int64_t expert, ExpertTensor)> expert;
  // The name of an int8 matrix's bf16 scales. An I8 matrix is always stored
  // input-major ([in][out], experts [n][in][out]) as the released checkpoint
  // has it (kernels/weight_matrix.h), with scales [blocks][out].
  std::function<std::string(const std::string& matrix)> scales;
  // The router is stored [in][out] ([dim][n_experts]), as in the released checkpoint.
  bool input_major_router = false;
};

// llama.cpp's GGUF names (blk.N.attn_q.weight, ...), also used by the built-in model.
// An I8 matrix's scales are "<name without .weight>.scales".
TensorNaming gguf_tensor_naming();

// Every tensor must be present with the right shape and a supported dtype,
// and every tensor in the store must be used: anything else is an error
// naming the tensor and `where` (the file or folder).
GrokWeights bind_weights(const GrokConfig& cfg, const TensorStore& store, const TensorNaming& naming,
                         const std::string& where);

}  // namespace grok
