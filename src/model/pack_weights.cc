#include "model/pack_weights.h"

#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "kernels/cpu/dot.h"
#include "kernels/packed_matrix.h"

namespace grok {
namespace {

std::vector<WeightMatrix*> packable_matrices(GrokWeights& w) {
  std::vector<WeightMatrix*> out;
  auto add = [&](WeightMatrix& m) {
    if (packable_dtype(m.dtype) && m.cols % 32 == 0 && !m.packed) out.push_back(&m);
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

PackReport pack_weights(Model& model, ThreadPool& pool) {
  PackReport report;
  const DotKernels& k = active_dot_kernels();
  if (!k.q8_0_packed || !k.q4_0_packed) {
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
  uint64_t offset = 0;
  for (WeightMatrix* m : matrices) {
    std::byte* out = storage->data() + offset;
    const int64_t groups = (m->rows + kPackedRows - 1) / kPackedRows;
    pool.parallel_for(groups, [&](int64_t b, int64_t e, int) { pack_groups(*m, b, e, out); });
    offset += packed_matrix_bytes(*m);
    m->packed = out;
    // A GGUF's tensors are pages of its read-only mapping: let them go from
    // this process (they stay in the page cache, and come back if touched).
    // Other formats may hold tensors in their own buffers, left alone.
    if (model.format == "gguf") {
      const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
      const uintptr_t begin = (reinterpret_cast<uintptr_t>(m->data) + page - 1) / page * page;
      const uintptr_t end = (reinterpret_cast<uintptr_t>(m->data) + m->row_bytes * uint64_t(m->rows)) / page * page;
      if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    }
  }
  report.matrices = int64_t(matrices.size());
  report.bytes = total;
  model.packed = std::move(storage);
  return report;
}

}  // namespace grok
