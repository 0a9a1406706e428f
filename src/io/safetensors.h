// Reader for Hugging Face safetensors: one file, or a folder of shards with
// model.safetensors.index.json. Tensor bytes stay in the mapped files.
#pragma once

#include <memory>
#include <string>

#include "io/tensor_store.h"

namespace grok {

// Adds every tensor of one .safetensors file to `store` (keeps the map alive).
void read_safetensors_file(const std::string& path, TensorStore& store);
// Same from bytes kept alive by `owner` (used by the fuzz target).
void parse_safetensors(std::shared_ptr<const void> owner, const std::byte* data, uint64_t size,
                       const std::string& name, TensorStore& store);
// A Hugging Face folder: model.safetensors.index.json when present (every
// tensor it names must be in the shard it names), else every *.safetensors.
void read_safetensors_folder(const std::string& dir, TensorStore& store);

}  // namespace grok
