// Grok models in GGUF, as llama.cpp's converter writes them (arch "grok").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <vector>

#include "core/error.h"
#include "model/bind_weights.h"
#include "model/model.h"

namespace grok {
namespace {

// `tensors` holds every part's tensors when the model is split.
GrokConfig config_from_gguf(const GgufFile& g, const TensorStore& tensors) {
  const std::string& p = g.path();
  const auto arch = g.get_string("general.architecture");
  if (!arch) fail(p, ": metadata key 'general.architecture' is missing");
  if (*arch != "grok") fail(p, ": architecture '", *arch, "' is not supported (expected 'grok')");

  auto need_int = [&](const char* key) {
    const auto v = g.get_int(key);
    if (!v) fail(p, ": metadata key '", key, "' is missing");
    return *v;
  };
  GrokConfig c;
  c.n_layers = need_int("grok.block_count");
  c.dim = need_int("grok.embedding_length");
  c.ffn_dim = need_int("grok.feed_forward_length");
  c.n_heads = need_int("grok.attention.head_count");
  c.n_kv_heads = g.get_int("grok.attention.head_count_kv").value_or(c.n_heads);
  c.n_experts = need_int("grok.expert_count");
  c.n_experts_used = need_int("grok.expert_used_count");
  if (c.n_heads <= 0) fail(p, ": grok.attention.head_count must be positive");
  c.head_dim = g.get_int("grok.attention.key_length").value_or(c.dim / c.n_heads);
  c.context_length = g.get_int("grok.context_length").value_or(c.context_length);
  c.rope_base = float(g.get_float("grok.rope.freq_base").value_or(c.rope_base));
  c.rms_eps = float(g.get_float("grok.attention.layer_norm_rms_epsilon").value_or(c.rms_eps));
  c.attn_cap = float(g.get_float("grok.attn_logit_softcapping").value_or(c.attn_cap));
  // Converters that predate these keys hard-coded Grok-1's values.
  c.attn_scale = float(g.get_float("grok.attention.output_scale").value_or(1.0 / std::sqrt(double(c.head_dim))));
  c.embed_scale = float(g.get_float("grok.embedding_scale").value_or(c.embed_scale));
  c.logit_scale = float(g.get_float("grok.logit_scale").value_or(c.logit_scale));
  // grok.router_logit_softcapping is deliberately ignored: Grok-1 has no router cap.
  c.pad_id = int32_t(g.get_int("tokenizer.ggml.padding_token_id").value_or(c.pad_id));
  c.bos_id = int32_t(g.get_int("tokenizer.ggml.bos_token_id").value_or(c.bos_id));
  c.eos_id = int32_t(g.get_int("tokenizer.ggml.eos_token_id").value_or(c.eos_id));

  const TensorInfo* embd = tensors.find("token_embd.weight");
  if (!embd) fail(p, ": tensor 'token_embd.weight' is missing");
  if (embd->shape.size() != 2) fail(p, ": tensor 'token_embd.weight' has shape ", embd->shape_str(), ", expected 2-D");
  c.vocab_size = embd->shape[0];
  if (const auto* tokens = g.get_string_array("tokenizer.ggml.tokens"); tokens && int64_t(tokens->size()) != c.vocab_size)
    fail(p, ": tokenizer.ggml.tokens has ", tokens->size(), " entries but token_embd.weight has ", c.vocab_size, " rows");
  c.validate(p);
  return c;
}

// llama.cpp's gguf-split writes PREFIX-00001-of-0000N.gguf ... with the
// metadata in the first part, tensors spread over all of them, and
// split.no / split.count in each. Returns the tensors of all parts.
std::shared_ptr<const TensorStore> gather_split_parts(const GgufFile& first) {
  const int64_t count = first.get_int("split.count").value_or(1);
  if (count <= 1) return first.share_tensors();
  const std::string& path = first.path();
  if (first.get_int("split.no").value_or(0) != 0)
    fail(path, ": this is part ", *first.get_int("split.no") + 1, " of a split model; pass the first part");
  std::smatch m;
  static const std::regex pattern(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
  if (!std::regex_match(path, m, pattern) || std::stoll(m[3]) != count)
    fail(path, ": split.count is ", count, " but the name is not PREFIX-00001-of-", count, ".gguf");
  auto all = std::make_shared<TensorStore>();
  auto add_part = [&](const GgufFile& part) {
    for (const TensorInfo& t : part.tensors().tensors()) all->add(t);
    all->keep_alive(part.share_tensors());
  };
  add_part(first);
  for (int64_t i = 1; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "-%05lld-of-%05lld.gguf", (long long)(i + 1), (long long)count);
    const GgufFile part = GgufFile::open(m[1].str() + name);
    if (part.get_int("split.no").value_or(-1) != i || part.get_int("split.count").value_or(-1) != count)
      fail(part.path(), ": split.no/split.count do not say part ", i + 1, " of ", count);
    add_part(part);
  }
  if (const auto n = first.get_int("split.tensors.count"); n && *n != int64_t(all->tensors().size()))
    fail(path, ": split.tensors.count is ", *n, " but the parts hold ", all->tensors().size(), " tensors");
  return all;
}

}  // namespace

TensorNaming gguf_tensor_naming() {
  TensorNaming n;
  n.embed = "token_embd.weight";
  n.final_norm = "output_norm.weight";
  n.output = "output.weight";
  n.layer = [](int64_t i, LayerTensor t) {
    const std::string b = "blk." + std::to_string(i) + ".";
    switch (t) {
      case LayerTensor::AttnNorm: return b + "attn_norm.weight";
      case LayerTensor::AttnOutNorm: return b + "attn_output_norm.weight";
      case LayerTensor::FfnNorm: return b + "ffn_norm.weight";
      case LayerTensor::FfnOutNorm: return b + "layer_output_norm.weight";
      case LayerTensor::Q: return b + "attn_q.weight";
      case LayerTensor::K: return b + "attn_k.weight";
      case LayerTensor::V: return b + "attn_v.weight";
      case LayerTensor::O: return b + "attn_output.weight";
      case LayerTensor::Router: return b + "ffn_gate_inp.weight";
    }
    return b;
  };
  n.stacked_experts = true;
  n.scales = [](const std::string& m) {
    return (m.ends_with(".weight") ? m.substr(0, m.size() - 7) : m) + ".scales";
  };
  n.expert = [](int64_t i, int64_t, ExpertTensor t) {
    const std::string b = "blk." + std::to_string(i) + ".";
    switch (t) {
      case ExpertTensor::W1: return b + "ffn_gate_exps.weight";
      case ExpertTensor::V: return b + "ffn_up_exps.weight";
      case ExpertTensor::W2: return b + "ffn_down_exps.weight";
    }
    return b;
  };
  return n;
}

Model load_gguf_model(const std::string& path) {
  return gguf_model(std::make_shared<const GgufFile>(GgufFile::open(path)), path);
}

Model gguf_model(std::shared_ptr<const GgufFile> g, const std::string& path) {
  Model m;
  m.store = gather_split_parts(*g);
  m.config = config_from_gguf(*g, *m.store);
  m.weights = bind_weights(m.config, *m.store, gguf_tensor_naming(), g->path());
  m.path = path;
  m.format = "gguf";
  m.gguf = std::move(g);
  return m;
}

namespace {

// A file name from a folder listing as the error shows it: as it is unless
// it has control bytes, which would break the one-line message.
std::string shown_name(const std::string& name) {
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return quote_name(name);
  return name;
}

std::string join(const std::vector<std::string>& items, size_t max, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < max; ++i) out += (i ? sep : "") + items[i];
  if (items.size() > max) out += cat(sep, "... (", items.size(), " in all)");
  return out;
}

// A folder that is none of the formats: what was looked for, then what is
// there, phrased as the likeliest fix (a GGUF inside it, a missing
// config.json, an incomplete ckpt-0/), or else its first few names.
[[noreturn]] void fail_not_a_model_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> ggufs, names;
  size_t safetensors = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = shown_name(it->path().filename().string());
    std::error_code type_ec;
    const bool is_dir = it->is_directory(type_ec);
    names.push_back(is_dir ? name + "/" : name);
    if (!is_dir && it->path().extension() == ".gguf") ggufs.push_back((fs::path(dir) / name).string());
    if (!is_dir && it->path().extension() == ".safetensors") ++safetensors;
  }
  std::sort(ggufs.begin(), ggufs.end());
  std::sort(names.begin(), names.end());
  std::string found;
  if (ec)
    found = cat("cannot list it: ", ec.message());
  else if (!ggufs.empty())
    found = cat("did you mean ", join(ggufs, 3, " or "), "?");
  else if (safetensors)
    found = cat("it has ", safetensors, " *.safetensors file", safetensors == 1 ? "" : "s", " but no config.json");
  else if (fs::is_directory(fs::path(dir) / "ckpt-0", ec))
    found = cat("its ckpt-0/ holds no tensor00000_000 (is the download complete?)");
  else if (names.empty())
    found = "it is empty";
  else
    found = cat("it holds ", join(names, 5, ", "));
  fail(dir,
       ": not a model folder: expected a GGUF file, a Hugging Face folder (config.json + *.safetensors) "
       "or xAI's ckpt-0/ folder (tensor00000_000 ...); ",
       found);
}

}  // namespace

Model load_model(const std::string& path, const LoadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  Model m;
  if (fs::is_directory(path, ec)) {
    // The release as downloaded: grok-1/ holding ckpt-0/ and tokenizer.model.
    // Loading ckpt-0 is what was meant, and the tokenizer beside it is still
    // found (tokenizer_file_beside looks in the checkpoint's parent).
    const std::string inner = (fs::path(path) / "ckpt-0").string();
    if (is_checkpoint_folder(path))
      m = load_checkpoint_model(path, options);
    else if (fs::exists(fs::path(path) / "config.json", ec))
      m = load_hf_model(path);
    else if (is_checkpoint_folder(inner)) {
      if (options.note) options.note(cat(path, " is not itself a model; loading the checkpoint in ", inner));
      m = load_checkpoint_model(inner, options);
    } else
      fail_not_a_model_folder(path);
  } else if (!fs::exists(path, ec))
    fail(path, ": no such file or directory");
  else
    m = load_gguf_model(path);
  set_int8_rounding(m.weights, options.int8_round_to_bf16);
  return m;
}

namespace {
template <typename Fn>
void for_each_matrix(GrokWeights& w, Fn fn) {
  fn(w.embed);
  fn(w.output);
  for (LayerWeights& l : w.layers) {
    for (WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo}) fn(*m);
    for (ExpertWeights& e : l.experts)
      for (WeightMatrix* m : {&e.w1, &e.v, &e.w2}) fn(*m);
  }
}
}  // namespace

void set_int8_rounding(GrokWeights& w, bool round_to_bf16) {
  for_each_matrix(w, [&](WeightMatrix& m) { m.round_to_bf16 = m.dtype == DType::I8 && round_to_bf16; });
}

void set_q8_0_activations8(GrokWeights& w, bool on) {
  for_each_matrix(w, [&](WeightMatrix& m) {
    const bool a8 = m.dtype == DType::Q8_0 && on;
    // The packed layout follows the flag (kernels/packed_matrix.h).
    if (m.packed && a8 != m.activations8)
      fail("8-bit activations must be chosen before the weights are repacked for the CPU kernels");
    m.activations8 = a8;
  });
}

}  // namespace grok
