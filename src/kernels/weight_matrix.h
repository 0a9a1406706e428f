// A weight matrix as the kernels see it: W [rows = outputs][cols = inputs].
// Most formats store it row-major, each row `row_bytes` long in `dtype`
// (Q8_0 rows are blocks of 32); GGUF and Hugging Face both store linear
// weights this way ([out, in]).
//
// DType::I8 is the released checkpoint's layout instead (CHECKPOINT.md): the
// int8 values are stored input-major, [cols][rows] (the reference computes
// x @ W with W [in, out]), so stored row i holds input i's weight for every
// output and `row_bytes` (= rows) is the stride between those stored rows.
// `scales` is bf16 [scale_blocks][rows]: input i belongs to block
// i / (cols / scale_blocks), and W[r][i] = q[i][r] · scales[block(i)][r].
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
  // DType::I8 only (see above).
  const uint16_t* scales = nullptr;
  int64_t scale_blocks = 1;
  // DType::I8 only: use the reference's weights bf16(q·s), rounded to bf16
  // once per weight, instead of the exact product q·s (which is what an
  // integer dot product scaled afterwards computes, and the default).
  bool round_to_bf16 = false;
  // Q8_0, Q4_0, Q6_K, I8: the same matrix repacked for lane-per-row kernels
  // (kernels/packed_matrix.h), 64-byte aligned, or nullptr. `data` stays
  // valid: ISAs without packed kernels use it.
  const std::byte* packed = nullptr;
  // Packed Q8_0 only: multiply with activations quantised to 8 bits (as
  // packed Q4_0's are) instead of 16, where the ISA has the kernel. Half
  // the multiply-adds, so batches stay memory-bound, for a coarser
  // activation rounding (~0.4% of a block's largest value, not ~0.002%).
  // Set it before packing: the packed layout follows it.
  bool activations8 = false;

  const std::byte* row(int64_t r) const { return data + uint64_t(r) * row_bytes; }
  int64_t scale_block_cols() const { return cols / scale_blocks; }
};

}  // namespace grok
