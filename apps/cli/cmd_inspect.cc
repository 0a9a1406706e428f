// grok inspect: what a model file holds.
#include <algorithm>
#include <cstdio>
#include <map>

#include "apps/cli/commands.h"
#include "core/error.h"

namespace grok::cli {
namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

// Tensor parallelism's split (model/shard.h): what each rank keeps.
void print_ranks(const Model& m, int ranks) {
  const GrokConfig& c = m.config;
  std::printf("\ntensor parallelism over %d ranks (mpirun -np %d): memory per rank\n", ranks, ranks);
  std::printf("rank  KV heads  ffn rows       vocabulary rows    weights     KV cache per token\n");
  for (int r = 0; r < ranks; ++r) {
    const Shard s = plan_shard(c, m.weights, r, ranks);
    const uint64_t kv = uint64_t(2 * c.n_layers * (s.kv_end - s.kv_begin) * c.head_dim * 4);
    std::printf("%4d  %8lld  %-13s  %-17s  %-10s  %s\n", r, (long long)(s.kv_end - s.kv_begin),
                cat(s.ffn_begin, "-", s.ffn_end - 1).c_str(), cat(s.vocab_begin, "-", s.vocab_end - 1).c_str(),
                human_bytes(double(shard_weight_bytes(c, m.weights, s))).c_str(), human_bytes(double(kv)).c_str());
  }
  std::printf("(one process: %s of weights; every rank keeps the embedding, norms and router whole)\n",
              human_bytes(double(weight_bytes(m.weights))).c_str());
}

void run(const std::string& path, bool show_tensors, int ranks) {
  MpiCluster& cluster = MpiCluster::world();
  if (!cluster.leader()) return;  // under mpirun the leader prints the table for every rank
  if (cluster.distributed()) ranks = cluster.size();
  const Model m = path.empty() ? builtin_default_model() : load_model(path, load_options());
  std::printf("model: %s\nformat: %s\narchitecture: grok\n", path.empty() ? "(built-in)" : path.c_str(),
              m.format.c_str());
  std::printf("%s", m.config.describe().c_str());

  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype -> (elements, bytes)
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const TensorInfo& t : m.store->tensors()) {
    auto& d = by_dtype[std::string(dtype_name(t.dtype))];
    d.first += t.numel();
    d.second += t.nbytes;
    params += t.numel();
    bytes += t.nbytes;
  }
  std::printf("tensors: %zu, %lld parameters, %s\n", m.store->tensors().size(), (long long)params,
              human_bytes(double(bytes)).c_str());
  for (const auto& [name, d] : by_dtype)
    std::printf("  %-5s %14lld parameters  %s\n", name.c_str(), (long long)d.first, human_bytes(double(d.second)).c_str());
  if (m.gguf) {
    if (const auto* tokens = m.gguf->get_string_array("tokenizer.ggml.tokens"))
      std::printf("vocabulary: %zu tokens (%s)\n", tokens->size(),
                  m.gguf->get_string("tokenizer.ggml.model").value_or("?").c_str());
  }
  if (ranks > 1) print_ranks(m, ranks);
  if (show_tensors) {
    int width = 6;  // the longest name (a checkpoint's parameter paths are long)
    for (const TensorInfo& t : m.store->tensors()) width = std::max(width, int(t.name.size()));
    std::printf("\n%-*s %-5s %-22s %s\n", width, "tensor", "dtype", "shape", "bytes");
    for (const TensorInfo& t : m.store->tensors())
      std::printf("%-*s %-5s %-22s %llu\n", width, t.name.c_str(), std::string(dtype_name(t.dtype)).c_str(),
                  t.shape_str().c_str(), (unsigned long long)t.nbytes);
  }
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto brief = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("inspect", "Show a model's architecture, sizes, dtypes and tensor table");
  cmd->add_option("model", *path, "GGUF file, Hugging Face folder or ckpt-0 folder (default: the built-in model)");
  cmd->add_flag("--brief", *brief, "leave out the tensor table");
  auto ranks = std::make_shared<int>(1);
  cmd->add_option("--ranks", *ranks,
                  "also show what each of N ranks keeps under tensor parallelism (mpirun -np N: N by default)")
      ->check(CLI::Range(1, 64));
  cmd->callback([path, brief, ranks] { run(*path, !*brief, *ranks); });
}

}  // namespace grok::cli
