#include "model/pack_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/packed_matrix.h"

namespace grok {
namespace {

std::vector<WeightMatrix*> packable_matrices(GrokWeights& w) {
  std::vector<WeightMatrix*> out;
  auto add = [&](WeightMatrix& m) {
    if (packable(m) && !m.packed) out.push_back(&m);
  };
  add(w.output);  // the embedding itself is only looked up, row by row
  for (LayerWeights& l : w.layers) {
    for (WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) add(*m);
    for (ExpertWeights& e : l.experts)
      for (WeightMatrix* m : {&e.w1, &e.v, &e.w2}) add(*m);
  }
  return out;
}

// /proc/meminfo's MemAvailable in bytes (page cache counts: it can be
// reclaimed), or 0 when unknown.
uint64_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return 0;
}

}  // namespace

PackReport pack_weights(Model& model, ThreadPool& pool, const std::function<void(uint64_t, uint64_t)>& progress) {
  PackReport report;
  if (!packed_kernels_available()) {
    report.skipped = "this CPU's kernels use the file's layout";
    return report;
  }
  const std::vector<WeightMatrix*> matrices = packable_matrices(model.weights);
  uint64_t total = 0;
  for (const WeightMatrix* m : matrices) total += packed_matrix_bytes(*m);
  if (total == 0) return report;
  // The packed copy replaces the file's pages in memory; leave a margin
  // for everything else rather than push the system into swapping.
  if (const uint64_t avail = available_memory(); avail && total > avail / 10 * 9) {
    report.skipped = "the packed copy would not fit in available memory; using the file's layout";
    return report;
  }
  auto storage = std::make_shared<PackedStorage>(total);
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  auto release = [page](const std::byte* from, const std::byte* to) {  // whole pages inside [from, to)
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(from) + page - 1) / page * page;
    const uintptr_t end = reinterpret_cast<uintptr_t>(to) / page * page;
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  };
  // Slices of groups, each one's source pages released once it is packed,
  // so the file's pages and the copy are never both resident in full.
  constexpr int64_t kSliceGroups = 256;
  uint64_t offset = 0;
  for (WeightMatrix* m : matrices) {
    std::byte* out = storage->data() + offset;
    const int64_t groups = (m->rows + kPackedRows - 1) / kPackedRows;
    for (int64_t s0 = 0; s0 < groups; s0 += kSliceGroups) {
      const int64_t s1 = std::min(groups, s0 + kSliceGroups);
      pool.parallel_for(s1 - s0, [&](int64_t b, int64_t e, int) { pack_groups(*m, s0 + b, s0 + e, out); });
      // A GGUF's tensors are pages of its read-only mapping: let them go
      // from this process (they stay in the page cache, and come back if
      // touched). Other formats may hold tensors in buffers of their own.
      // (I8 stores inputs as rows: its slices span the whole matrix, which
      // is released at the end instead.)
      if (model.format == "gguf" && m->dtype != DType::I8)
        release(m->row(s0 * kPackedRows), m->row(std::min(m->rows, s1 * kPackedRows)));
      if (progress) progress(offset + uint64_t(s1) * packed_group_bytes(m->dtype, m->cols), total);
    }
    if (model.format == "gguf" && m->dtype == DType::I8) release(m->data, m->data + uint64_t(m->cols) * m->row_bytes);
    offset += packed_matrix_bytes(*m);
    m->packed = out;
  }
  report.matrices = int64_t(matrices.size());
  report.bytes = total;
  model.packed = std::move(storage);
  return report;
}

}  // namespace grok
