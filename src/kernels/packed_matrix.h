// Q8_0, Q4_0, Q6_K and int8 matrices repacked for lane-per-row kernels: rows in groups
// of 16, each block of 32 inputs interleaved so that one 32-bit lane of a
// 512-bit register holds two consecutive weights of one row. One int16 dot
// instruction (VNNI dpwssd) with a broadcast pair of activations then
// advances 16 rows at once, and each row's block sum is exact in its lane:
// no horizontal sums, no per-row scale broadcasts, and an activation block
// is read once per 16 rows instead of once per row. Neither GGUF's row-major
// blocks nor the checkpoint's input-major int8 allow this in place, so the
// matrices are copied once at load
// (model/pack_weights.h); the copy is the same size as the original (Q6_K:
// see below).
//
// Layout of group g (rows 16g .. 16g + 15; rows past the matrix are zero):
//   quants: nb blocks (of 32, Q6_K 256), packed_quant_bytes(dtype) each, then
//   scales: nb × 16 f16 (I8: bf16), the block's scale d for each row,
// and the group padded to a multiple of 64 bytes (packed_group_bytes).
// Q8_0 block: 16 chunks of 32 bytes; chunk j, bytes 2r and 2r + 1 = row r's
//   weights 2j and 2j + 1 (sign-extended to int16 when loaded).
// Q8_0 block for 8-bit activations (WeightMatrix::activations8, which must
//   be set before packing): 8 chunks of 64 bytes; chunk j, bytes 4r .. 4r + 3
//   = row r's weights 8⌊j/2⌋ + kQ4_0LaneOrder[4(j mod 2) + k] as q + 128
//   (the unsigned bytes VNNI's dpbusd takes; Q4_0's activation order).
// Q4_0 block: 4 chunks of 64 bytes = 32 little-endian 16-bit words; chunk c,
//   word 2r + h, nibble i (bits 4i..4i+3) = row r's weight 8c + 2i + h as
//   the unsigned nibble q (the value is d·(q − 8)).
// I8 (the released checkpoint's int8, stored input-major): as Q8_0, with
//   each row's bf16 scale of the block's scale block in place of d.
// Q6_K super-block: its 256 levels q − 32 as int8 in Q8_0's chunks (4096
//   bytes; sub-block j is chunks 8j .. 8j + 7), then the 16 sub-block scales
//   as int8 [sub-block][row] (256 bytes). The value is d·scale·(q − 32).
//   Unlike the others this copy is larger than the file's (8 bits a weight
//   instead of 6.56): unpacking 6-bit levels cost more than the extra bytes
//   (the two cost about the same in a 6-bit lane-per-row layout as in the
//   row kernel; at 8 bits the products become memory-bound).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/weight_matrix.h"

namespace grok {

constexpr int kPackedRows = 16;

// Whether the active ISA's kernels multiply packed Q8_0, Q4_0, Q6_K and I8
// matrices (AVX-512 VNNI); elsewhere matrices stay in the file's layout.
bool packed_kernels_available();
bool packable_dtype(DType t);  // Q8_0, Q4_0, Q6_K and I8
// Whether w can be packed: a packable dtype in whole blocks; I8 also needs
// scale blocks of whole blocks of 32 and the exact product q·s (its bf16
// rounding, round_to_bf16, is per weight and stays on the row kernels).
bool packable(const WeightMatrix& w);
int64_t packed_block_elems(DType t);   // 32, or Q6_K's 256
uint64_t packed_quant_bytes(DType t);  // one block of one group: 512, 256 or 4352
uint64_t packed_group_bytes(DType t, int64_t cols);
uint64_t packed_matrix_bytes(const WeightMatrix& w);
// Packs groups [g_begin, g_end) of w into out (out = the whole matrix's
// packed bytes, zero-filled as a fresh PackedStorage is: rows past the
// matrix are not written; groups land at g · packed_group_bytes).
void pack_groups(const WeightMatrix& w, int64_t g_begin, int64_t g_end, std::byte* out);

// Page-aligned anonymous memory for packed matrices, asking the kernel for
// transparent huge pages (decode streams gigabytes through the TLB).
class PackedStorage {
 public:
  explicit PackedStorage(uint64_t bytes);  // throws grok::Error when out of memory
  ~PackedStorage();
  PackedStorage(const PackedStorage&) = delete;
  PackedStorage& operator=(const PackedStorage&) = delete;
  std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace grok
