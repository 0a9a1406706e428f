// Random-weight Grok models: the named shapes `grok init` offers, the one
// definition of how each tensor is initialised (also used by the built-in
// model), and a generator that makes any row of any tensor on its own, so a
// model of any size is written one chunk at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/thread_pool.h"
#include "io/gguf.h"
#include "model/config.h"
#include "model/gguf_export.h"
#include "model/grok_gguf.h"

namespace grok {

// "tiny" (2 layers, dim 64, the oracle's shape), "bench" (8 layers, dim
// 1024) and "grok-1" (SPEC.md's dimensions), all with Grok-1's vocabulary
// size and constants. Throws grok::Error listing the names for another.
GrokConfig preset_config(const std::string& name);
const std::vector<std::string>& preset_names();

// Each tensor is Gaussian with this mean and standard deviation, chosen so
// activations are neither flat nor saturated (the oracle's knobs): embedding
// rms 0.5 after the embedding scale, q/k std 1.7/sqrt(dim), router and gate
// 1.2/sqrt(dim), other matrices 1/sqrt(fan-in), norm scales 1 ± 0.1, and the
// final norm set so that logits have a standard deviation of about 4.
struct TensorInit {
  float mean = 0;
  float stddev = 0;
};
TensorInit tensor_init(const GrokConfig& c, const GrokTensor& t);

// Deterministic in (seed, tensor name, row): the same rows come out whatever
// the order, the chunking or the number of threads.
class RandomSource : public TensorSource {
 public:
  RandomSource(const GrokConfig& c, uint64_t seed) : c_(c), seed_(seed) {}
  void rows(const GrokTensor& t, int64_t begin, int64_t end, float* out) const override;

 private:
  GrokConfig c_;
  uint64_t seed_;
};

struct RandomModelOptions {
  DType type = DType::F32;  // matrices; norms and router stay F32 (see stored_dtype)
  uint64_t seed = 0;
  std::string name = "grok-random";
  // tokenizer.ggml.* keys to write (empty: the file has no vocabulary).
  std::vector<std::pair<std::string, GgufValue>> vocabulary;
};

// Writes a random model of config c as GGUF at path. note(tensor, message)
// reports each tensor stored in another dtype than o.type, and why.
void write_random_model(const std::string& path, const GrokConfig& c, const RandomModelOptions& o,
                        ThreadPool& pool, const std::function<void(const ExportProgress&)>& progress,
                        const std::function<void(const std::string&, const std::string&)>& note);

}  // namespace grok
