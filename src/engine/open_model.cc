#include "engine/open_model.h"

#include <chrono>

#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "engine/engine.h"

namespace grok {
namespace {

// Touches every page of the model's tensors once, so later timed work does
// not pay for reading the file from disk.
uint64_t read_every_page(const TensorStore& store) {
  uint64_t sum = 0;
  for (const TensorInfo& t : store.tensors())
    for (uint64_t off = 0; off < t.nbytes; off += 4096) sum += uint8_t(t.data[off]);
  return sum;
}

// The same for the matrices of a split model: only this rank's slices.
// Touching a page maps its neighbours too (the kernel's fault-around), so a
// column slice would map the other ranks' columns as well: with
// `file_pages` (a GGUF's read-only mapping) each matrix's pages are let go
// once read. They stay in the page cache, which is the point.
uint64_t read_every_page(const GrokWeights& w, bool file_pages) {
  uint64_t sum = 0;
  auto touch = [&](const WeightMatrix& m) {
    if (!m.data) return;
    const bool input_major = m.dtype == DType::I8;
    const int64_t n = input_major ? m.cols : m.rows;
    const uint64_t len = input_major ? uint64_t(m.rows) : dtype_bytes(m.dtype, m.cols);
    for (int64_t r = 0; r < n; ++r)
      for (uint64_t off = 0; off < len; off += 4096) sum += uint8_t(m.data[uint64_t(r) * m.row_bytes + off]);
    if (file_pages && n > 0) release_mapped_pages(m.data, uint64_t(n - 1) * m.row_bytes + len);
  };
  touch(w.output);
  for (const LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) touch(*m);
    for (const ExpertWeights& e : l.experts)
      for (const WeightMatrix* m : {&e.w1, &e.v, &e.w2}) touch(*m);
  }
  return sum;
}

}  // namespace

Model builtin_default_model() {
  if (const std::span<const std::byte> bytes = embedded_default_model(); !bytes.empty()) {
    auto g = std::make_shared<const GgufFile>(GgufFile::parse(nullptr, bytes.data(), bytes.size(), "built-in model"));
    return gguf_model(std::move(g), "");
  }
  return builtin_random_model();
}

Model builtin_random_model() {
  const Tokenizer tok = Tokenizer::builtin();
  std::vector<int32_t> quiet;
  for (int32_t id = 0; id < tok.vocab_size(); ++id)
    if (tok.is_byte(id) || tok.is_control(id)) quiet.push_back(id);
  return builtin_model(tok.vocab_size(), 1234, quiet);
}

ReadyModel open_model(const std::string& path, const OpenOptions& options) {
  if (path.empty()) return make_ready(builtin_default_model(), options);
  return make_ready(load_model(path, options.load), options);
}

ReadyModel make_ready(Model model, const OpenOptions& options) {
  ReadyModel r;
  r.tokenizer = options.need_tokenizer ? std::optional<Tokenizer>(tokenizer_for(model, options.tokenizer))
                                       : find_tokenizer(model, options.tokenizer);
  if (r.tokenizer && options.warn)
    for (const std::string& w : r.tokenizer->warnings()) options.warn(w);
  set_q8_0_activations8(model.weights, options.activations8);
  if (options.comm && options.comm->distributed()) {
    auto copies = std::make_shared<ShardCopies>();
    model.shard = plan_shard(model.config, model.weights, options.comm->rank(), options.comm->size());
    apply_shard(model.config, model.weights, model.shard, copies.get());
    model.shard_copies = std::move(copies);
  }
  r.comm = options.comm;
  if (options.read_all_first && model.store) {
    volatile uint64_t sink = model.shard.whole() ? read_every_page(*model.store)
                                                 : read_every_page(model.weights, model.format == "gguf");
    (void)sink;
  }
  if (options.repack) {
    const auto start = std::chrono::steady_clock::now();
    ThreadPool pool(options.threads);
    r.pack = pack_weights(model, pool, options.pack_progress);
    r.pack_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // "this CPU's kernels use the file's layout" is expected, not news.
    if (r.pack.skipped && options.warn && std::string_view(r.pack.skipped).find("memory") != std::string_view::npos)
      options.warn(r.pack.skipped);
  }
  r.model = std::move(model);
  return r;
}

}  // namespace grok
