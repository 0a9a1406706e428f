// Where each tensor of a Grok model lives in training's one flat parameter
// array (and, at the same offsets, the gradient and AdamW's moments): the
// GGUF tensors of grok_tensors(config), in that order, fp32, laid out as
// the GGUF stores them (docs/training.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/grok_gguf.h"

namespace grok {

struct ParamTensor {
  GrokTensor tensor;
  int64_t offset = 0;
  int64_t size = 0;
  bool decay = false;  // AdamW's weight decay: matrices only, not norm scales
};

struct LayerParamOffsets {
  int64_t attn_norm = 0, wq = 0, wk = 0, wv = 0, wo = 0, attn_out_norm = 0;
  int64_t ffn_norm = 0, router = 0, w1 = 0, v = 0, w2 = 0, ffn_out_norm = 0;
};

class ParamLayout {
 public:
  explicit ParamLayout(const GrokConfig& c);
  const GrokConfig& config() const { return config_; }
  const std::vector<ParamTensor>& tensors() const { return tensors_; }
  int64_t total() const { return total_; }
  const ParamTensor* find(const std::string& name) const;

  int64_t embed = 0, final_norm = 0;
  std::vector<LayerParamOffsets> layers;

 private:
  GrokConfig config_;
  std::vector<ParamTensor> tensors_;
  int64_t total_ = 0;
};

// splitmix64's finaliser: a well-mixed 64-bit hash of x (seeds, streams).
uint64_t mix64(uint64_t x);

// A standard normal number that depends only on (seed, stream, index):
// counter-based, so any element can be drawn alone, in any order, by any thread.
double gaussian(uint64_t seed, uint64_t stream, uint64_t index);

// Initial values for training from scratch, deterministic in `seed`: the
// embedding N(0, 1/dim) (unit-variance rows after the embedding scale),
// matrices N(0, 1/fan-in), the router 10× smaller (routing starts near
// uniform), norm scales 1.
template <class S>
void init_parameters(const ParamLayout& layout, uint64_t seed, S* params);

}  // namespace grok
