#include "engine/open_model.h"

#include <chrono>

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

}  // namespace

Model builtin_default_model() {
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
  if (options.read_all_first && model.store) {
    volatile uint64_t sink = read_every_page(*model.store);
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
