#include "model/gguf_export.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/quant.h"

namespace grok {

namespace {

std::string format_bytes(uint64_t n) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f GiB", double(n) / double(1ull << 30));
  return s;
}

// f32 rows produced per chunk: big enough to keep every thread busy, small
// enough that the chunk (and its converted bytes) costs little memory.
constexpr uint64_t kChunkF32Bytes = uint64_t(32) << 20;
}  // namespace

void write_gguf_model(const std::string& path, GgufWriter meta, const std::vector<ExportTensor>& tensors,
                      const TensorSource& source, ThreadPool& pool,
                      const std::function<void(const ExportProgress&)>& progress) {
  for (const ExportTensor& e : tensors) meta.declare_tensor(e.tensor.name, e.dtype, e.tensor.shape);
  ExportProgress p;
  p.count = tensors.size();
  p.bytes_total = meta.file_size();
  // Refuse before writing rather than fail hours in with a full disk.
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  const std::filesystem::space_info space = std::filesystem::space(dir, ec);
  if (!ec && space.available < p.bytes_total)
    fail(path, ": needs ", format_bytes(p.bytes_total), " but ", dir.string(), " has only ",
         format_bytes(space.available), " free");
  GgufStream out = meta.begin(path);
  std::vector<float> f32;
  std::vector<std::byte> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GrokTensor& t = tensors[i].tensor;
    const DType dt = tensors[i].dtype;
    const int64_t rows = t.rows(), cols = t.cols();
    const uint64_t row_bytes = dtype_bytes(dt, cols);
    const int64_t chunk = std::max<int64_t>(1, int64_t(kChunkF32Bytes / (uint64_t(cols) * 4)));
    p.index = i;
    p.name = &t.name;
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t n = std::min(chunk, rows - r0);
      bytes.resize(size_t(uint64_t(n) * row_bytes));
      // Rows already in the target dtype are copied (an expert tensor's
      // experts could differ, so every row is asked).
      bool stored = true;
      for (int64_t r = 0; r < n && stored; ++r) stored = source.stored_row(t, r0 + r, dt) != nullptr;
      if (stored) {
        for (int64_t r = 0; r < n; ++r)
          std::memcpy(bytes.data() + r * row_bytes, source.stored_row(t, r0 + r, dt), row_bytes);
      } else {
        f32.resize(size_t(n * cols));
        pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
          source.rows(t, r0 + b, r0 + e, f32.data() + b * cols);
          for (int64_t r = b; r < e; ++r) quantize(dt, f32.data() + r * cols, cols, bytes.data() + r * row_bytes);
        });
      }
      out.write(bytes);
      source.written(t, r0 + n);
      p.bytes_done = out.bytes_written();
      if (progress) progress(p);
    }
  }
  out.finish();
  p.bytes_done = p.bytes_total;
  if (progress) progress(p);
}

}  // namespace grok
