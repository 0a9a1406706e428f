// Rewrites a loaded model (GGUF or Hugging Face folder) as a GGUF of another
// type, in llama.cpp's names and keys, streaming tensor by tensor.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "io/gguf.h"
#include "model/gguf_export.h"
#include "model/model.h"

namespace grok {

// Writes m at path with its matrices in `type` (see stored_dtype for what
// stays F32 and what falls back). Metadata: a GGUF input's own keys (its
// vocabulary included; split.* and general.alignment dropped,
// general.file_type updated), otherwise the keys from m's config; then
// `vocabulary`'s keys on top. A matrix already stored in its target dtype is copied as it
// is. note(tensor, message) reports each fallback.
void quantize_model(const Model& m, const std::string& path, DType type,
                    const std::vector<std::pair<std::string, GgufValue>>& vocabulary, ThreadPool& pool,
                    const std::function<void(const ExportProgress&)>& progress,
                    const std::function<void(const std::string&, const std::string&)>& note);

}  // namespace grok
