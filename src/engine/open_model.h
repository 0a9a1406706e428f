// The one way from a model path to a model ready to run: loaded, its
// tokenizer found, its numerics chosen, its matrices repacked for this CPU's
// kernels. The CLI, the server, bench and tests all get their models here,
// so they all run the same thing.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/collectives.h"
#include "model/model.h"
#include "model/pack_weights.h"
#include "tokenizer/tokenizer.h"

namespace grok {

struct OpenOptions {
  LoadOptions load{};           // int8 rounding, load progress and notes (model/model.h)
  std::string tokenizer{};      // a tokenizer.model overriding the model's own vocabulary
  bool need_tokenizer = true;   // a model without a vocabulary is an error (else: token ids only)
  bool repack = true;           // copy Q8_0, Q4_0, Q6_K and int8 matrices into the kernels' layout
  bool activations8 = false;    // repacked Q8_0 times 8-bit activations (WeightMatrix::activations8)
  bool read_all_first = false;  // touch every page before repacking, so timed work never waits on disk
  int threads = 0;              // for repacking; 0: one per hardware thread
  // Tensor parallelism: with more than one rank, the model is split
  // (model/shard.h) and this process keeps only its rank's part.
  Collectives* comm = nullptr;
  // Bytes repacked so far, of total.
  std::function<void(uint64_t done, uint64_t total)> pack_progress{};
  // Things the user should know that do not stop the load (tokenizer
  // warnings, a repack skipped for lack of memory).
  std::function<void(const std::string&)> warn{};
};

struct ReadyModel {
  Model model;
  std::optional<Tokenizer> tokenizer;
  PackReport pack;
  double pack_seconds = 0;
  Collectives* comm = nullptr;  // OpenOptions::comm: the ranks the model is split over
};

// `path`: a GGUF file, a Hugging Face folder or a ckpt-0 folder; "" is the
// built-in default model.
ReadyModel open_model(const std::string& path, const OpenOptions& options = {});
// The same steps after loading, for a model already in memory.
ReadyModel make_ready(Model model, const OpenOptions& options = {});

// The built-in default model: the trained one compiled in from
// models/default.gguf, or, in a build without it, builtin_random_model().
Model builtin_default_model();
// The tiny random-weight smoke-test model with its built-in 412-token
// vocabulary, whose byte and control tokens are quieted so that its text is
// printable.
Model builtin_random_model();

}  // namespace grok
