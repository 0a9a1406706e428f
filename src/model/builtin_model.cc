// The built-in smoke-test model: Grok's architecture at the "tiny" preset's
// size with random weights from a fixed seed, so `grok generate` works with
// no file. Its output is gibberish by design; it checks the machinery, not
// the model. Weights come from the same generator as `grok init`.
#include <memory>

#include "model/bind_weights.h"
#include "model/model.h"
#include "model/random_model.h"

namespace grok {

Model builtin_model(int64_t vocab_size, uint64_t seed, std::span<const int32_t> quiet_ids) {
  GrokConfig c = preset_config("tiny");
  c.vocab_size = vocab_size;
  c.context_length = 2048;
  c.validate("built-in model");

  const RandomSource source(c, seed);
  auto store = std::make_shared<TensorStore>();
  for (const GrokTensor& t : grok_tensors(c)) {
    auto buf = std::make_shared<std::vector<float>>(size_t(t.rows() * t.cols()));
    source.rows(t, 0, t.rows(), buf->data());
    if (t.kind == GrokTensor::Kind::Embed)
      for (int32_t id : quiet_ids)
        if (id >= 0 && id < c.vocab_size)
          for (int64_t d = 0; d < c.dim; ++d) (*buf)[size_t(id * c.dim + d)] *= 0.01f;
    TensorInfo info;
    info.name = t.name;
    info.dtype = DType::F32;
    info.shape = t.shape;
    info.data = reinterpret_cast<const std::byte*>(buf->data());
    info.nbytes = buf->size() * 4;
    info.file = "built-in model";
    store->add(std::move(info));
    store->keep_alive(buf);
  }
  Model m;
  m.config = c;
  m.weights = bind_weights(c, *store, gguf_tensor_naming(), "built-in model");
  m.store = std::move(store);
  m.format = "builtin";
  return m;
}

}  // namespace grok
