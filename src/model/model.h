// A loaded model: its configuration, its weights bound to roles, and the
// mapped files those weights live in.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "io/gguf.h"
#include "io/tensor_store.h"
#include "kernels/packed_matrix.h"
#include "model/config.h"
#include "model/shard.h"
#include "model/weights.h"

namespace grok {

struct Model {
  GrokConfig config;
  GrokWeights weights;
  std::shared_ptr<const TensorStore> store;  // keeps the bytes `weights` points into
  std::string path;                          // file or folder; "" for the built-in model
  std::string format;                        // "gguf", "safetensors" or "builtin"
  std::shared_ptr<const GgufFile> gguf;      // GGUF only: its metadata and vocabulary
  std::shared_ptr<const PackedStorage> packed;  // matrices repacked for the CPU kernels (pack_weights.h)
  // Tensor parallelism: this process's part (whole by default) and the
  // slices that had to be copied out of the file (model/shard.h).
  Shard shard;
  std::shared_ptr<const ShardCopies> shard_copies;
};

struct LoadOptions {
  // Int8 weights (the released checkpoint's) as the reference rounds them,
  // bf16(q·s) per weight, instead of the exact product (WeightMatrix).
  bool int8_round_to_bf16 = false;
  // Files mapped and checked so far, of total (checkpoint folders).
  std::function<void(int64_t done, int64_t total)> progress;
  // Told when the path given is not the model itself but holds one (the
  // release's grok-1/ folder, whose ckpt-0/ is loaded); null: silent.
  std::function<void(const std::string&)> note;
};

// A GGUF file, a Hugging Face folder (config.json + *.safetensors) or the
// released checkpoint's ckpt-0 folder (or the folder holding it, with a
// note). Any other folder is an error naming what it holds.
Model load_model(const std::string& path, const LoadOptions& options = {});
Model load_gguf_model(const std::string& path);
// A GGUF already parsed (e.g. from memory); `path` is what Model::path says.
Model gguf_model(std::shared_ptr<const GgufFile> g, const std::string& path);
Model load_hf_model(const std::string& dir);

// xAI's ckpt-0 folder (CHECKPOINT.md). Sizes come from the tensors' shapes
// and the file count; the rest is Grok-1's unless a `grok-config.json` in
// the folder or beside it says otherwise (keys as GrokConfig's fields:
// vocab_size, dim, n_layers, n_heads, n_kv_heads, head_dim, n_experts,
// n_experts_used, ffn_dim, context_length, rope_base, rms_eps, attn_scale,
// attn_cap, embed_scale, logit_scale, pad_id, bos_id, eos_id).
Model load_checkpoint_model(const std::string& dir, const LoadOptions& options = {});
bool is_checkpoint_folder(const std::string& dir);  // holds tensor00000_000

void set_int8_rounding(GrokWeights& w, bool round_to_bf16);
// Q8_0 matrices multiplied with 8-bit activations once repacked
// (WeightMatrix::activations8), or with 16-bit ones (the default). Before
// repacking: changing it on packed matrices throws.
void set_q8_0_activations8(GrokWeights& w, bool on);

// A Hugging Face config.json's text (`path` names it in errors).
GrokConfig parse_hf_config(std::string_view text, const std::string& path);

// The tiny random-weight smoke-test model built in memory from `seed`.
// `quiet_ids` (e.g. byte and control tokens) get near-zero embeddings, so
// their logits stay near 0 and sampling mostly picks printable pieces.
// The trained default model compiled into the binary (models/default.gguf
// at build time, see scripts/train-default): its bytes, empty when the
// build had none.
std::span<const std::byte> embedded_default_model();

Model builtin_model(int64_t vocab_size, uint64_t seed = 1234, std::span<const int32_t> quiet_ids = {});

}  // namespace grok
