#include "train/param_layout.h"

#include <cmath>

namespace grok {

ParamLayout::ParamLayout(const GrokConfig& c) : config_(c) {
  layers.resize(size_t(c.n_layers));
  for (const GrokTensor& t : grok_tensors(c)) {
    ParamTensor p;
    p.tensor = t;
    p.offset = total_;
    p.size = t.rows() * t.cols();
    p.decay = !t.is_norm();
    total_ += p.size;
    switch (t.kind) {
      case GrokTensor::Kind::Embed: embed = p.offset; break;
      case GrokTensor::Kind::FinalNorm: final_norm = p.offset; break;
      case GrokTensor::Kind::Output: break;  // never: training ties the output to the embedding
      case GrokTensor::Kind::Expert: {
        LayerParamOffsets& l = layers[size_t(t.layer)];
        (t.expert_tensor == ExpertTensor::W1 ? l.w1 : t.expert_tensor == ExpertTensor::V ? l.v : l.w2) = p.offset;
        break;
      }
      case GrokTensor::Kind::Layer: {
        LayerParamOffsets& l = layers[size_t(t.layer)];
        switch (t.layer_tensor) {
          case LayerTensor::AttnNorm: l.attn_norm = p.offset; break;
          case LayerTensor::Q: l.wq = p.offset; break;
          case LayerTensor::K: l.wk = p.offset; break;
          case LayerTensor::V: l.wv = p.offset; break;
          case LayerTensor::O: l.wo = p.offset; break;
          case LayerTensor::AttnOutNorm: l.attn_out_norm = p.offset; break;
          case LayerTensor::FfnNorm: l.ffn_norm = p.offset; break;
          case LayerTensor::Router: l.router = p.offset; break;
          case LayerTensor::FfnOutNorm: l.ffn_out_norm = p.offset; break;
        }
        break;
      }
    }
    tensors_.push_back(std::move(p));
  }
}

const ParamTensor* ParamLayout::find(const std::string& name) const {
  for (const ParamTensor& p : tensors_)
    if (p.tensor.name == name) return &p;
  return nullptr;
}

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double gaussian(uint64_t seed, uint64_t stream, uint64_t index) {
  const uint64_t h = mix64(mix64(seed ^ mix64(stream)) ^ index);
  const uint64_t h2 = mix64(h);
  // Box-Muller on two uniforms in (0, 1].
  const double u1 = (double(h >> 11) + 1.0) * 0x1.0p-53;
  const double u2 = double(h2 >> 11) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

template <class S>
void init_parameters(const ParamLayout& layout, uint64_t seed, S* params) {
  uint64_t stream = 0;
  for (const ParamTensor& p : layout.tensors()) {
    ++stream;
    S* out = params + p.offset;
    const GrokTensor& t = p.tensor;
    if (t.is_norm()) {
      for (int64_t i = 0; i < p.size; ++i) out[i] = S(1);
      continue;
    }
    double std = 1.0 / std::sqrt(double(t.cols()));  // fan-in: matrices are [out][in]
    if (t.is_router()) std *= 0.1;
    for (int64_t i = 0; i < p.size; ++i) out[i] = S(std * gaussian(seed, stream, uint64_t(i)));
  }
}

template void init_parameters<float>(const ParamLayout&, uint64_t, float*);
template void init_parameters<double>(const ParamLayout&, uint64_t, double*);

}  // namespace grok
