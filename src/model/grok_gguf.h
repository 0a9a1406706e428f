// What a Grok model looks like as a GGUF file written by llama.cpp: its
// tensors (names, shapes, order), the dtype each is stored in for a given
// target type, and the grok.* / general.* metadata keys. Shared by
// `grok quantize`, `grok init` and the built-in model.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "io/gguf_writer.h"
#include "model/bind_weights.h"
#include "model/config.h"

namespace grok {

struct GrokTensor {
  enum class Kind { Embed, Output, FinalNorm, Layer, Expert };
  std::string name;            // llama.cpp's GGUF name
  std::vector<int64_t> shape;  // outermost first; experts stacked [n_experts][out][in]
  Kind kind = Kind::Embed;
  int64_t layer = -1;
  LayerTensor layer_tensor = LayerTensor::AttnNorm;  // Kind::Layer
  ExpertTensor expert_tensor = ExpertTensor::W1;     // Kind::Expert
  // An int8 matrix in the released checkpoint's layout (shape [in][out],
  // experts [n][in][out]), or, with `scales`, its bf16 scales [n][B][out].
  bool input_major = false;
  bool scales = false;

  bool is_norm() const;    // 1-D scales
  bool is_router() const;  // ffn_gate_inp
  int64_t cols() const { return shape.back(); }
  int64_t rows() const;  // product of the other dimensions
};

// Every tensor of a model of config c in the order llama.cpp's converter
// writes them: token_embd, each layer's, output_norm (and output.weight
// when `untied_output`).
std::vector<GrokTensor> grok_tensors(const GrokConfig& c, bool untied_output = false);

// The dtype a tensor is stored in when the model is written as `type`:
// norms and the router stay F32 (as llama.cpp keeps them); the embedding and
// an untied output follow llama.cpp's default for a tied output (Q8_0 stays
// Q8_0, the 4- and 6-bit types become Q6_K, or Q8_0 when rows are not whole
// 256-blocks); other matrices get `type` when their rows are whole blocks of
// it, else Q8_0 (rows of 32s) or F16, with the reason in *fallback.
DType stored_dtype(const GrokTensor& t, DType type, std::string* fallback = nullptr);

// llama.cpp's general.file_type (llama_ftype) for a model written as `type`.
uint32_t llama_file_type(DType type);

// The keys llama.cpp's converter writes for Grok, from c, in its order:
// general.architecture/type/name, grok.*, general.file_type,
// general.quantization_version. Special token ids are written only where
// they differ from Grok's (pad 0, bos 1, eos 2); a vocabulary's own keys
// say them otherwise.
void set_grok_metadata(GgufWriter& w, const GrokConfig& c, const std::string& name, DType type);

// Number of tokens in tokenizer.ggml.tokens among `vocabulary`, -1 if absent.
int64_t vocabulary_size(const std::vector<std::pair<std::string, GgufValue>>& vocabulary);

}  // namespace grok
