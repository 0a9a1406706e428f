#include "io/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/pickle.h"

namespace grok {
namespace {
namespace fs = std::filesystem;

// The 12 parameters of a layer in sorted key order (CHECKPOINT.md, j = 0..11).
constexpr const char* kLayerParameters[12] = {
    "moe/linear/w",
    "moe/linear_1/w",
    "moe/linear_v/w",
    "multi_head_attention/key/w",
    "multi_head_attention/linear/w",
    "multi_head_attention/query/w",
    "multi_head_attention/value/w",
    "rms_norm/scale",
    "rms_norm_1/scale",
    "rms_norm_2/scale",
    "rms_norm_3/scale",
    "router/w",
};

// Parameter path of file index i in a checkpoint of n_layers layers (files
// are ordered by the tree flattened with keys sorted as strings).
std::string checkpoint_parameter(int64_t index, int64_t n_layers) {
  if (index == 0) return "language_model/in_out_embed/embeddings";
  if (index == 1) return "language_model/rms_norm/scale";
  // Layer names sorted as strings: decoder_layer_0, _1, _10, _11, ..., _2, ...
  std::vector<std::string> layers;
  for (int64_t l = 0; l < n_layers; ++l) layers.push_back(std::to_string(l));
  std::sort(layers.begin(), layers.end());
  const int64_t k = (index - 2) / 12, j = (index - 2) % 12;
  return "transformer/decoder_layer_" + layers.at(size_t(k)) + "/" + kLayerParameters[j];
}

}  // namespace

std::shared_ptr<TensorStore> read_checkpoint(const std::string& dir, const std::string& allowed_extra,
                                             const std::function<void(int64_t, int64_t)>& progress) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a folder");
  static const std::regex file_name(R"(tensor(\d{5})_(\d{3}))");
  std::vector<std::string> files;
  std::smatch m;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == allowed_extra) continue;
    if (!std::regex_match(name, m, file_name))
      fail(dir, ": unexpected file ", quote_name(name), " (a checkpoint holds only tensorNNNNN_000 files)");
    if (m[2] != "000")
      fail(dir, "/", name, ": shard ", m[2].str(), " of a multi-host checkpoint; only single-host checkpoints "
           "(every file _000) are supported");
    files.push_back(name);
  }
  if (ec) fail(dir, ": cannot list the folder: ", ec.message());
  std::sort(files.begin(), files.end());
  const int64_t n = int64_t(files.size());
  if (n == 0) fail(dir, ": no tensorNNNNN_000 files (is this a ckpt-0 folder?)");
  for (int64_t i = 0; i < n; ++i) {
    char want[32];
    std::snprintf(want, sizeof want, "tensor%05lld_000", (long long)i);
    if (files[size_t(i)] != want) fail(dir, ": ", want, " is missing (the files must be numbered 0 to ", n - 1, ")");
  }
  if (n < 14 || (n - 2) % 12 != 0)
    fail(dir, ": ", n, " tensor files is not 2 + 12 per layer (Grok-1 has 770: 64 layers)");
  const int64_t n_layers = (n - 2) / 12;

  auto store = std::make_shared<TensorStore>();
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = dir + "/" + files[size_t(i)];
    auto file = std::make_shared<MappedFile>(path);
    const PickledTensor t = parse_checkpoint_pickle({file->data(), size_t(file->size())}, path);
    const std::string param = checkpoint_parameter(i, n_layers);
    const bool quantised_name = param.ends_with("/w") && param.find("router") == std::string::npos;
    if (quantised_name != t.scales.has_value())
      fail(path, ": ", param, quantised_name ? " should be a QuantizedWeight8bit but is a plain array"
                                               : " should be a plain array but is a QuantizedWeight8bit");
    auto add = [&](const PickledArray& a, const std::string& name) {
      TensorInfo info;
      info.name = name;
      info.dtype = a.dtype;
      info.shape = a.shape;
      info.data = file->data() + a.offset;
      info.nbytes = a.nbytes;
      info.file = path;
      store->add(std::move(info));
    };
    add(t.array, param);
    if (t.scales) add(*t.scales, param.substr(0, param.size() - 1) + "scales");
    store->keep_alive(std::move(file));
    if (progress) progress(i + 1, n);
  }
  return store;
}

}  // namespace grok
