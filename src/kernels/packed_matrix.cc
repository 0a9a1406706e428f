#include "kernels/packed_matrix.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/quant.h"
#include "kernels/cpu/dot.h"  // kQ4_0LaneOrder, the packed kernels

namespace grok {

bool packable_dtype(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q6_K || t == DType::I8;
}

bool packed_kernels_available() {
  const DotKernels& k = active_dot_kernels();
  return k.q8_0_packed && k.q4_0_packed && k.q8_0_packed8 && k.q6_k_packed && k.i8_packed;
}

bool packable(const WeightMatrix& w) {
  if (!packable_dtype(w.dtype) || w.cols % packed_block_elems(w.dtype) != 0) return false;
  if (w.dtype != DType::I8) return true;
  return !w.round_to_bf16 && w.scales && w.scale_blocks >= 1 && w.cols % w.scale_blocks == 0 &&
         w.scale_block_cols() % 32 == 0;
}

int64_t packed_block_elems(DType t) { return t == DType::Q6_K ? 256 : 32; }

uint64_t packed_quant_bytes(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::I8: return 512;
    case DType::Q4_0: return 256;
    case DType::Q6_K: return 4096 + 256;
    default: fail("packed matrices: ", dtype_name(t), " has no packed layout");
  }
}

uint64_t packed_group_bytes(DType t, int64_t cols) {
  const uint64_t blocks = uint64_t(cols / packed_block_elems(t));
  const uint64_t bytes = blocks * (packed_quant_bytes(t) + 2 * kPackedRows);
  return (bytes + 63) / 64 * 64;
}

uint64_t packed_matrix_bytes(const WeightMatrix& w) {
  if (w.cols % packed_block_elems(w.dtype) != 0)
    fail("packed matrices: ", w.cols, " inputs are not whole blocks of ", packed_block_elems(w.dtype));
  return uint64_t((w.rows + kPackedRows - 1) / kPackedRows) * packed_group_bytes(w.dtype, w.cols);
}

namespace {

// Row r's block at src into its group's packed block q; returns its scale d.
// Plain loops over the source bytes in order, with no division: packing
// streams the whole model once at load.
uint16_t pack_q8_0_row(const uint8_t* src, int r, uint8_t* q) {
  for (int j = 0; j < 16; ++j) std::memcpy(q + 32 * j + 2 * r, src + 2 + 2 * j, 2);
  return uint16_t(src[0] | src[1] << 8);
}

uint16_t pack_q8_0_act8_row(const uint8_t* src, int r, uint8_t* q) {
  for (int j = 0; j < 8; ++j)
    for (int k = 0; k < 4; ++k)
      q[64 * j + 4 * r + k] = uint8_t(src[2 + 8 * (j / 2) + kQ4_0LaneOrder[4 * (j % 2) + k]] ^ 0x80);
  return uint16_t(src[0] | src[1] << 8);
}

uint16_t pack_q4_0_row(const uint8_t* src, int r, uint8_t* q) {
  const uint8_t* qs = src + 2;  // element k < 16 in qs[k]'s low nibble, k + 16 in its high nibble
  for (int c = 0; c < 4; ++c) {
    const uint8_t* from = qs + 8 * (c % 2);
    const int shift = 4 * (c / 2);
    for (int h = 0; h < 2; ++h) {
      uint16_t word = 0;
      for (int i = 0; i < 4; ++i) word = uint16_t(word | ((from[2 * i + h] >> shift) & 0x0F) << (4 * i));
      std::memcpy(q + 64 * c + 2 * (2 * r + h), &word, 2);
    }
  }
  return uint16_t(src[0] | src[1] << 8);
}

uint16_t pack_q6_k_row(const uint8_t* src, int r, uint8_t* q) {
  const uint8_t* ql = src + offsetof(BlockQ6_K, ql);
  const uint8_t* qh = src + offsetof(BlockQ6_K, qh);
  for (int h = 0; h < 2; ++h)
    for (int g = 0; g < 4; ++g)
      for (int l = 0; l < 32; ++l) {
        const int e = 128 * h + 32 * g + l;
        const uint8_t low = ql[64 * h + l + 32 * (g & 1)];
        const int level = ((g < 2 ? low : low >> 4) & 0x0F) | ((qh[32 * h + l] >> (2 * g)) & 3) << 4;
        q[(e >> 1) * 32 + 2 * r + (e & 1)] = uint8_t(int8_t(level - 32));
      }
  for (int j = 0; j < 16; ++j) q[4096 + j * kPackedRows + r] = src[offsetof(BlockQ6_K, scales) + uint64_t(j)];
  const uint8_t* d = src + offsetof(BlockQ6_K, d);
  return uint16_t(d[0] | d[1] << 8);
}

// I8 stores input i's weights for every output in row i: a group's block
// reads 32 stored rows, 16 consecutive bytes from each.
void pack_i8_groups(const WeightMatrix& w, int64_t g_begin, int64_t g_end, std::byte* out) {
  const int64_t nb = w.cols / 32, block_cols = w.scale_block_cols();
  const uint64_t group_bytes = packed_group_bytes(DType::I8, w.cols);
  for (int64_t g = g_begin; g < g_end; ++g) {
    auto* group = reinterpret_cast<uint8_t*>(out + uint64_t(g) * group_bytes);
    uint8_t* scales = group + uint64_t(nb) * 512;
    const int rows = int(std::min<int64_t>(kPackedRows, w.rows - g * kPackedRows));
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* q = group + uint64_t(b) * 512;
      for (int k = 0; k < 32; ++k) {
        const auto* src = reinterpret_cast<const uint8_t*>(w.data) + uint64_t(32 * b + k) * w.row_bytes + g * kPackedRows;
        for (int r = 0; r < rows; ++r) q[(k / 2) * 32 + 2 * r + k % 2] = src[r];
      }
      const uint16_t* s = w.scales + (32 * b / block_cols) * w.rows + g * kPackedRows;
      std::memcpy(scales + uint64_t(b) * kPackedRows * 2, s, size_t(rows) * 2);
    }
  }
}

}  // namespace

void pack_groups(const WeightMatrix& w, int64_t g_begin, int64_t g_end, std::byte* out) {
  const int64_t nb = w.cols / packed_block_elems(w.dtype);
  const uint64_t quant_bytes = packed_quant_bytes(w.dtype), group_bytes = packed_group_bytes(w.dtype, w.cols);
  if (w.dtype == DType::I8) return pack_i8_groups(w, g_begin, g_end, out);
  const uint64_t block_bytes = uint64_t(dtype_block_bytes(w.dtype));
  auto* pack_row = w.dtype == DType::Q8_0   ? (w.activations8 ? pack_q8_0_act8_row : pack_q8_0_row)
                   : w.dtype == DType::Q4_0 ? pack_q4_0_row
                                            : pack_q6_k_row;
  for (int64_t g = g_begin; g < g_end; ++g) {
    auto* group = reinterpret_cast<uint8_t*>(out + uint64_t(g) * group_bytes);
    uint8_t* scales = group + uint64_t(nb) * quant_bytes;
    for (int r = 0; r < kPackedRows && g * kPackedRows + r < w.rows; ++r) {
      const auto* row = reinterpret_cast<const uint8_t*>(w.row(g * kPackedRows + r));
      for (int64_t b = 0; b < nb; ++b) {
        const uint16_t d = pack_row(row + uint64_t(b) * block_bytes, r, group + uint64_t(b) * quant_bytes);
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
