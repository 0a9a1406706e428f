// Writes a Grok model as GGUF one piece at a time: each tensor's rows are
// produced as f32 by a TensorSource (a loaded model, a random generator),
// converted to the tensor's stored dtype on the thread pool and streamed to
// disk in chunks of a few MiB, so neither the model nor a whole tensor is
// ever held in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/gguf_writer.h"
#include "model/grok_gguf.h"

namespace grok {

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  // Rows [begin, end) of t, seen as [t.rows()][t.cols()], as f32 into out.
  // Called from several threads at once on disjoint row ranges.
  virtual void rows(const GrokTensor& t, int64_t begin, int64_t end, float* out) const = 0;
  // Row r of t as stored bytes when the source already holds t in `dtype`
  // (copied verbatim, no requantisation), else nullptr.
  virtual const std::byte* stored_row(const GrokTensor&, int64_t, DType) const { return nullptr; }
  // Rows [0, end) of t have been written (a source may drop what it no longer needs).
  virtual void written(const GrokTensor&, int64_t /*end*/) const {}
};

struct ExportTensor {
  GrokTensor tensor;
  DType dtype;  // as stored in the file
};

struct ExportProgress {
  size_t index = 0;  // tensor being written, 0-based
  size_t count = 0;
  const std::string* name = nullptr;
  uint64_t bytes_done = 0;  // of the file
  uint64_t bytes_total = 0;
};

// Writes `meta`'s keys and the tensors, in order, to path (through
// path.tmp, renamed at the end). progress (may be empty) is called after
// every chunk.
void write_gguf_model(const std::string& path, GgufWriter meta, const std::vector<ExportTensor>& tensors,
                      const TensorSource& source, ThreadPool& pool,
                      const std::function<void(const ExportProgress&)>& progress);

}  // namespace grok
