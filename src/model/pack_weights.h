// Repacking a model's Q8_0 / Q4_0 / Q6_K matrices for the CPU's lane-per-row
// kernels (kernels/packed_matrix.h), once at load.
#pragma once

#include <cstdint>
#include <functional>

#include "core/thread_pool.h"
#include "model/model.h"

namespace grok {

struct PackReport {
  int64_t matrices = 0;
  uint64_t bytes = 0;
  const char* skipped = nullptr;  // why nothing was packed, when nothing was
};

// Packs every Q8_0 / Q4_0 / Q6_K matrix of the model into one PackedStorage that
// the model keeps (model.packed), when the active ISA has packed kernels and
// the copies fit in the memory the system has available. Results do not
// change; only speed does.
// `progress` gets bytes packed so far and the total.
PackReport pack_weights(Model& model, ThreadPool& pool,
                        const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace grok
