#include "kernels/packed_matrix.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/quant.h"

namespace grok {

bool packable_dtype(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

uint64_t packed_quant_bytes(DType t) {
  if (!packable_dtype(t)) fail("packed matrices: ", dtype_name(t), " has no packed layout");
  return t == DType::Q8_0 ? 512 : 256;
}

uint64_t packed_group_bytes(DType t, int64_t cols) {
  const uint64_t nb = uint64_t(cols / 32);
  const uint64_t bytes = nb * (packed_quant_bytes(t) + 2 * kPackedRows);
  return (bytes + 63) / 64 * 64;
}

uint64_t packed_matrix_bytes(const WeightMatrix& w) {
  if (w.cols % 32 != 0) fail("packed matrices: ", w.cols, " inputs are not whole blocks of 32");
  return uint64_t((w.rows + kPackedRows - 1) / kPackedRows) * packed_group_bytes(w.dtype, w.cols);
}

void pack_groups(const WeightMatrix& w, int64_t g_begin, int64_t g_end, std::byte* out) {
  const int64_t nb = w.cols / 32;
  const uint64_t quant_bytes = packed_quant_bytes(w.dtype), group_bytes = packed_group_bytes(w.dtype, w.cols);
  for (int64_t g = g_begin; g < g_end; ++g) {
    auto* group = reinterpret_cast<uint8_t*>(out + uint64_t(g) * group_bytes);
    std::memset(group, 0, group_bytes);
    uint8_t* scales = group + uint64_t(nb) * quant_bytes;
    for (int r = 0; r < kPackedRows && g * kPackedRows + r < w.rows; ++r) {
      const std::byte* row = w.row(g * kPackedRows + r);
      for (int64_t b = 0; b < nb; ++b) {
        uint8_t* q = group + uint64_t(b) * quant_bytes;
        uint16_t d;
        if (w.dtype == DType::Q8_0) {
          BlockQ8_0 blk;
          std::memcpy(&blk, row + b * sizeof(BlockQ8_0), sizeof blk);
          d = blk.d;
          for (int k = 0; k < 32; ++k) q[(k / 2) * 32 + 2 * r + k % 2] = uint8_t(blk.q[k]);
        } else {
          BlockQ4_0 blk;
          std::memcpy(&blk, row + b * sizeof(BlockQ4_0), sizeof blk);
          d = blk.d;
          for (int k = 0; k < 32; ++k) {
            const uint8_t nibble = k < 16 ? blk.qs[k] & 0x0F : blk.qs[k - 16] >> 4;
            const int chunk = k / 8, i = (k % 8) / 2, h = k % 2;
            // Word 2r + h of the chunk, nibble i: byte i / 2 of the word, high half if i is odd.
            q[chunk * 64 + (2 * r + h) * 2 + i / 2] |= uint8_t(nibble << (4 * (i % 2)));
          }
        }
        std::memcpy(scales + (uint64_t(b) * kPackedRows + r) * 2, &d, 2);
      }
    }
  }
}

PackedStorage::PackedStorage(uint64_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("cannot allocate ", bytes >> 20, " MiB for packed weights: ", std::strerror(errno));
  madvise(p, bytes, MADV_HUGEPAGE);  // a hint; no harm if refused
  data_ = static_cast<std::byte*>(p);
}

PackedStorage::~PackedStorage() {
  if (data_) munmap(data_, size_);
}

}  // namespace grok
