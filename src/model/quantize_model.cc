#include "model/quantize_model.h"

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "kernels/dequantize.h"

namespace grok {
namespace {

// A loaded model's weights, by GGUF tensor: matrices (an expert tensor is
// its experts' matrices one after another) or the f32 vectors decoded at load.
class ModelSource : public TensorSource {
 public:
  explicit ModelSource(const GrokWeights& w) : w_(w) {}

  void rows(const GrokTensor& t, int64_t begin, int64_t end, float* out) const override {
    const int64_t cols = t.cols();
    if (const std::vector<float>* v = vector(t)) {
      std::memcpy(out, v->data() + begin * cols, size_t((end - begin) * cols) * 4);
      return;
    }
    for (int64_t r = begin; r < end; ++r) {
      int64_t local = r;
      const WeightMatrix& m = matrix(t, local);
      dequantize_row(m.dtype, m.row(local), out + (r - begin) * cols, cols);
    }
  }

  const std::byte* stored_row(const GrokTensor& t, int64_t r, DType dtype) const override {
    if (const std::vector<float>* v = vector(t))
      return dtype == DType::F32 ? reinterpret_cast<const std::byte*>(v->data() + r * t.cols()) : nullptr;
    const WeightMatrix& m = matrix(t, r);
    return m.dtype == dtype ? m.row(r) : nullptr;
  }

 private:
  const std::vector<float>* vector(const GrokTensor& t) const {
    if (t.kind == GrokTensor::Kind::FinalNorm) return &w_.final_norm;
    if (t.kind != GrokTensor::Kind::Layer) return nullptr;
    const LayerWeights& l = w_.layers[size_t(t.layer)];
    switch (t.layer_tensor) {
      case LayerTensor::AttnNorm: return &l.attn_norm;
      case LayerTensor::AttnOutNorm: return &l.attn_out_norm;
      case LayerTensor::FfnNorm: return &l.ffn_norm;
      case LayerTensor::FfnOutNorm: return &l.ffn_out_norm;
      case LayerTensor::Router: return &l.router;
      default: return nullptr;
    }
  }

  // The matrix holding row `r` of t; r becomes the row within it.
  const WeightMatrix& matrix(const GrokTensor& t, int64_t& r) const {
    switch (t.kind) {
      case GrokTensor::Kind::Embed: return w_.embed;
      case GrokTensor::Kind::Output: return w_.output;
      case GrokTensor::Kind::Expert: {
        const int64_t per_expert = t.shape[1];
        const ExpertWeights& e = w_.layers[size_t(t.layer)].experts[size_t(r / per_expert)];
        r %= per_expert;
        return t.expert_tensor == ExpertTensor::W1 ? e.w1 : t.expert_tensor == ExpertTensor::V ? e.v : e.w2;
      }
      case GrokTensor::Kind::Layer: {
        const LayerWeights& l = w_.layers[size_t(t.layer)];
        switch (t.layer_tensor) {
          case LayerTensor::Q: return l.wq;
          case LayerTensor::K: return l.wk;
          case LayerTensor::V: return l.wv;
          case LayerTensor::O: return l.wo;
          default: break;
        }
        break;
      }
      case GrokTensor::Kind::FinalNorm: break;
    }
    fail("quantize: tensor ", t.name, " is not a matrix");
  }

  const GrokWeights& w_;
};

GgufWriter metadata(const Model& m, DType type, const std::vector<std::pair<std::string, GgufValue>>& vocabulary) {
  GgufWriter w;
  if (m.gguf) {
    for (const auto& [k, v] : m.gguf->metadata())
      if (k.rfind("split.", 0) != 0 && k != "general.alignment") w.set(k, v);
    w.set_u32("general.file_type", llama_file_type(type));
    w.set_u32("general.quantization_version", 2);
    for (const auto& [k, v] : vocabulary) w.set(k, v);
    return w;
  }
  const std::string name = std::filesystem::path(m.path).filename().string();
  set_grok_metadata(w, m.config, name.empty() ? "grok" : name, type);
  for (const auto& [k, v] : vocabulary) w.set(k, v);
  return w;
}

}  // namespace

void quantize_model(const Model& m, const std::string& path, DType type,
                    const std::vector<std::pair<std::string, GgufValue>>& vocabulary, ThreadPool& pool,
                    const std::function<void(const ExportProgress&)>& progress,
                    const std::function<void(const std::string&, const std::string&)>& note) {
  if (type == DType::I8) fail("quantize: cannot write dtype ", dtype_name(type));
  std::error_code ec;
  if (!m.path.empty() && std::filesystem::equivalent(m.path, path, ec))
    fail(path, ": the output would overwrite the input model");
  if (const int64_t n = vocabulary_size(vocabulary); n >= 0 && n != m.config.vocab_size)
    fail(path, ": the vocabulary has ", n, " tokens but the model has ", m.config.vocab_size);
  const bool untied = m.weights.output.data != m.weights.embed.data;
  std::vector<ExportTensor> tensors;
  for (GrokTensor& t : grok_tensors(m.config, untied)) {
    std::string why;
    const DType dt = stored_dtype(t, type, &why);
    if (!why.empty() && note) note(t.name, why);
    tensors.push_back({std::move(t), dt});
  }
  write_gguf_model(path, metadata(m, type, vocabulary), tensors, ModelSource(m.weights), pool, progress);
}

}  // namespace grok
