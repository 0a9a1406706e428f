// A weight matrix as the kernels see it: [rows = outputs][cols = inputs],
// row-major, each row `row_bytes` long in `dtype` (Q8_0 rows are blocks of 32).
// GGUF and Hugging Face both store linear weights this way ([out, in]).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace grok {

struct WeightMatrix {
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const std::byte* data = nullptr;
  uint64_t row_bytes = 0;

  const std::byte* row(int64_t r) const { return data + uint64_t(r) * row_bytes; }
};

}  // namespace grok
