// A loaded model: its configuration, its weights bound to roles, and the
// mapped files those weights live in.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "io/gguf.h"
#include "io/tensor_store.h"
#include "model/config.h"
#include "model/weights.h"

namespace grok {

struct Model {
  GrokConfig config;
  GrokWeights weights;
  std::shared_ptr<const TensorStore> store;  // keeps the bytes `weights` points into
  std::string path;                          // file or folder; "" for the built-in model
  std::string format;                        // "gguf", "safetensors" or "builtin"
  std::shared_ptr<const GgufFile> gguf;      // GGUF only: its metadata and vocabulary
};

// A GGUF file or a Hugging Face folder (config.json + *.safetensors).
Model load_model(const std::string& path);
Model load_gguf_model(const std::string& path);
Model load_hf_model(const std::string& dir);

// A Hugging Face config.json's text (`path` names it in errors).
GrokConfig parse_hf_config(std::string_view text, const std::string& path);

// The tiny random-weight smoke-test model built in memory from `seed`.
// `quiet_ids` (e.g. byte and control tokens) get near-zero embeddings, so
// their logits stay near 0 and sampling mostly picks printable pieces.
Model builtin_model(int64_t vocab_size, uint64_t seed = 1234, std::span<const int32_t> quiet_ids = {});

}  // namespace grok
