// xAI's released checkpoint folder (`ckpt-0/`, CHECKPOINT.md) as a table of
// named tensors: one pickle per parameter, files mapped and their arrays
// used in place. Names are the reference's parameter paths; a quantised
// weight `.../w` (int8, [in, out]) comes with `.../scales` (bf16).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "io/tensor_store.h"

namespace grok {

// Reads every `tensorNNNNN_000` file of dir; anything else in the folder is
// an error, except `allowed_extra` (a config file). progress(done, total) is
// called as files are mapped and checked.
std::shared_ptr<TensorStore> read_checkpoint(const std::string& dir, const std::string& allowed_extra,
                                             const std::function<void(int64_t, int64_t)>& progress);

}  // namespace grok
