#include "model/quantize_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/mapped_file.h"
#include "kernels/dequantize.h"

namespace grok {
namespace {

// A loaded model's weights, by GGUF tensor: matrices (an expert tensor is
// its experts' matrices one after another) or the f32 vectors decoded at
// load. An input-major int8 tensor's rows are its stored rows.
class ModelSource : public TensorSource {
 public:
  // release: the matrices are file mappings whose pages may be dropped once written.
  ModelSource(const GrokWeights& w, bool release) : w_(w), release_(release) {}

  void rows(const GrokTensor& t, int64_t begin, int64_t end, float* out) const override {
    const int64_t cols = t.cols();
    if (const std::vector<float>* v = vector(t)) {
      std::memcpy(out, v->data() + begin * cols, size_t((end - begin) * cols) * 4);
      return;
    }
    if (t.input_major || t.scales) fail("convert: tensor ", t.name, " can only be copied as stored");
    // One run per matrix (an expert tensor's rows span several).
    for (int64_t r = begin; r < end;) {
      int64_t local = r;
      const WeightMatrix& m = matrix(t, local);
      const int64_t n = std::min(end - r, m.rows - local);
      dequantize_rows(m, local, local + n, out + (r - begin) * cols);
      r += n;
    }
  }

  const std::byte* stored_row(const GrokTensor& t, int64_t r, DType dtype) const override {
    if (const std::vector<float>* v = vector(t))
      return dtype == DType::F32 ? reinterpret_cast<const std::byte*>(v->data() + r * t.cols()) : nullptr;
    if (t.input_major || t.scales) {
      // r counts the stored rows of the stacked [n][in or B][out] tensor.
      const int64_t per = t.shape[t.shape.size() - 2];
      int64_t expert_row = (r / per) * matrix_rows(t);
      const WeightMatrix& m = matrix(t, expert_row);
      if (m.dtype != DType::I8 || dtype != (t.scales ? DType::BF16 : DType::I8)) return nullptr;
      return t.scales ? reinterpret_cast<const std::byte*>(m.scales + (r % per) * m.rows) : m.data + (r % per) * m.row_bytes;
    }
    const WeightMatrix& m = matrix(t, r);
    return m.dtype == dtype && m.dtype != DType::I8 ? m.row(r) : nullptr;
  }

  // Drops each matrix's mapped pages once all its rows are written, so a
  // conversion's footprint stays near one matrix whatever the model size.
  void written(const GrokTensor& t, int64_t end) const override {
    if (!release_ || vector(t) || t.scales) return;
    const int64_t per = t.input_major ? t.shape[t.shape.size() - 2] : matrix_rows(t);
    const int64_t done = end / per;  // whole matrices written so far
    for (int64_t k = 0; k < done; ++k) {
      int64_t row = k * matrix_rows(t);
      const WeightMatrix& m = matrix(t, row);
      release_mapped_pages(m.data, uint64_t(m.dtype == DType::I8 ? m.cols : m.rows) * m.row_bytes);
    }
    // A row-major matrix's written rows are not read again (an int8 one's
    // rows are columns of what is stored: all of it is read until the end).
    if (end % per == 0 || t.input_major) return;
    int64_t local = end;
    const WeightMatrix& m = matrix(t, local);
    if (m.dtype != DType::I8) release_mapped_pages(m.data, uint64_t(local) * m.row_bytes);
  }

 private:
  // Rows of one matrix of t ([out] rows, whatever t's stored shape).
  int64_t matrix_rows(const GrokTensor& t) const {
    int64_t r = 0;
    return matrix(t, r).rows;
  }

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

  // The matrix holding row `r` of t (rows as [out], experts one after
  // another); r becomes the row within it.
  const WeightMatrix& matrix(const GrokTensor& t, int64_t& r) const {
    switch (t.kind) {
      case GrokTensor::Kind::Embed: return w_.embed;
      case GrokTensor::Kind::Output: return w_.output;
      case GrokTensor::Kind::Expert: {
        const ExpertWeights& e0 = w_.layers[size_t(t.layer)].experts[0];
        const int64_t per_expert = t.expert_tensor == ExpertTensor::W2 ? e0.w2.rows : e0.w1.rows;
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
    fail("convert: tensor ", t.name, " is not a matrix");
  }

  const GrokWeights& w_;
  bool release_;
};

// The released checkpoint's int8 kept as it is: each int8 matrix becomes
// an input-major I8 tensor plus a BF16 "<name>.scales" tensor; the rest
// keeps its stored dtype.
std::vector<ExportTensor> int8_tensors(const Model& m, bool untied) {
  std::vector<ExportTensor> out;
  for (GrokTensor& t : grok_tensors(m.config, untied)) {
    if (t.is_norm() || t.is_router()) {
      out.push_back({std::move(t), DType::F32});
      continue;
    }
    if (t.kind == GrokTensor::Kind::Embed || t.kind == GrokTensor::Kind::Output) {
      const DType dt = (t.kind == GrokTensor::Kind::Embed ? m.weights.embed : m.weights.output).dtype;
      out.push_back({std::move(t), dt});
      continue;
    }
    const LayerWeights& l = m.weights.layers[size_t(t.layer)];
    const WeightMatrix& w = t.kind == GrokTensor::Kind::Expert
                                ? (t.expert_tensor == ExpertTensor::W1 ? l.experts[0].w1
                                   : t.expert_tensor == ExpertTensor::V ? l.experts[0].v
                                                                        : l.experts[0].w2)
                                : (t.layer_tensor == LayerTensor::Q   ? l.wq
                                   : t.layer_tensor == LayerTensor::K ? l.wk
                                   : t.layer_tensor == LayerTensor::V ? l.wv
                                                                      : l.wo);
    if (w.dtype != DType::I8)
      fail("convert: --type int8 keeps a model's int8 weights as they are, but ", t.name, " is ",
           dtype_name(w.dtype), " (int8 sources: a ckpt-0 folder or an int8 GGUF)");
    const bool stacked = t.kind == GrokTensor::Kind::Expert;
    GrokTensor scales = t;
    std::swap(t.shape[t.shape.size() - 1], t.shape[t.shape.size() - 2]);  // [.., out, in] -> [.., in, out]
    t.input_major = true;
    scales.name = t.name.substr(0, t.name.size() - 7) + ".scales";
    scales.shape = stacked ? std::vector<int64_t>{m.config.n_experts, w.scale_blocks, w.rows}
                           : std::vector<int64_t>{w.scale_blocks, w.rows};
    scales.scales = true;
    out.push_back({std::move(t), DType::I8});
    out.push_back({std::move(scales), DType::BF16});
  }
  return out;
}

GgufWriter metadata(const Model& m, DType type, const std::vector<std::pair<std::string, GgufValue>>& vocabulary) {
  GgufWriter w;
  if (m.gguf) {
    for (const auto& [k, v] : m.gguf->metadata())
      if (k.rfind("split.", 0) != 0 && k != "general.alignment") w.set(k, v);
    if (type != DType::I8) w.set_u32("general.file_type", llama_file_type(type));
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
  std::error_code ec;
  if (!m.path.empty() && std::filesystem::equivalent(m.path, path, ec))
    fail(path, ": the output would overwrite the input model");
  if (const int64_t n = vocabulary_size(vocabulary); n >= 0 && n != m.config.vocab_size)
    fail(path, ": the vocabulary has ", n, " tokens but the model has ", m.config.vocab_size);
  const bool untied = m.weights.output.data != m.weights.embed.data;
  std::vector<ExportTensor> tensors;
  if (type == DType::I8) {
    tensors = int8_tensors(m, untied);
  } else {
    for (GrokTensor& t : grok_tensors(m.config, untied)) {
      std::string why;
      const DType dt = stored_dtype(t, type, &why);
      if (!why.empty() && note) note(t.name, why);
      tensors.push_back({std::move(t), dt});
    }
  }
  const bool mapped = m.format == "gguf" || m.format == "checkpoint";
  write_gguf_model(path, metadata(m, type, vocabulary), tensors, ModelSource(m.weights, mapped), pool, progress);
}

}  // namespace grok
