// Run under mpirun by tests/dist: every rank opens its part of MODEL; rank 0
// also opens the whole model in this process and checks that the split
// model computes the same function: logits of whole prompts, with a pad
// token, split across two passes through the KV cache, several sequences
// in one batch over a shared KV pool, and greedy decoding (which gathers
// only each row's best token). With --oracle DIR, also the last position of
// each oracle prompt against the float64 reference. Prints one line per
// check and exits 1 if any fails.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "dist/mpi_cluster.h"
#include "engine/open_model.h"
#include "model/transformer.h"

namespace {

using grok::KVCache;
using grok::SequenceStep;
using grok::Transformer;

constexpr double kTolSingle = 1e-4, kTolReference = 1e-3;

int failures = 0;

void report(const std::string& name, double value, double limit = kTolSingle) {
  const bool ok = value <= limit;  // NaN fails
  if (!ok) ++failures;
  std::printf("check %-40s %.3g (limit %.0e) %s\n", name.c_str(), value, limit, ok ? "ok" : "FAIL");
}

double max_diff(const float* a, const float* b, size_t n) {
  double d = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = std::fabs(double(a[i]) - double(b[i]));
    if (!(x <= d)) d = x;  // NaN wins
  }
  return d;
}

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) grok::fail(path, ": cannot open");
  in.seekg(0, std::ios::end);
  std::vector<float> v(size_t(in.tellg()) / 4);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
  return v;
}

struct Pair {
  Transformer* exact;  // the whole model without repacking, or null when `whole` is not repacked
  Transformer& whole;
  const grok::GrokConfig& whole_cfg;
  Transformer& split;
  const grok::GrokConfig& split_cfg;
  grok::ThreadPool& pool;
  int64_t vocab;

  std::vector<float> logits(Transformer& t, const grok::GrokConfig& c, const std::vector<int32_t>& ids) {
    KVCache cache(c, int64_t(ids.size()));
    std::vector<float> out;
    t.forward(ids, cache, pool, true, out);
    return out;
  }
  // 1e-4, or where the repacked kernels round activations (16- or 8-bit
  // blocks: a rounding step, so inputs 1e-7 apart can round a step apart),
  // twice what that rounding moves one process's logits over `ids`: the
  // split may not add more than the kernels' own rounding.
  double limit(const std::vector<int32_t>& ids) {
    if (!exact) return kTolSingle;
    const std::vector<float> a = logits(whole, whole_cfg, ids), e = logits(*exact, whole_cfg, ids);
    return std::max(kTolSingle, 2 * max_diff(a.data(), e.data(), a.size()));
  }
  // Both models over `ids`; returns the split model's logits.
  std::vector<float> compare(const std::string& name, const std::vector<int32_t>& ids) {
    const std::vector<float> a = logits(whole, whole_cfg, ids), b = logits(split, split_cfg, ids);
    report(name + " vs one process", a.size() == b.size() ? max_diff(a.data(), b.data(), a.size()) : INFINITY,
           limit(ids));
    return b;
  }
};

int run(int argc, char** argv) {
  grok::MpiCluster& cluster = grok::MpiCluster::world();
  if (argc < 2) grok::fail("usage: dist_check MODEL [--oracle DIR]");
  const std::string model = argv[1];
  std::string oracle;
  bool repack = true, trace = false;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--oracle" && i + 1 < argc) oracle = argv[++i];
    else if (a == "--no-repack") repack = false;
    else if (a == "--trace") trace = true;  // per-tensor differences of one prompt, to find where they start
    else grok::fail("dist_check: unknown option ", a);
  }
  grok::ThreadPool pool(1);
  grok::OpenOptions o;
  o.need_tokenizer = false;
  o.threads = 1;
  o.repack = repack;
  o.comm = &cluster;
  grok::ReadyModel split = grok::open_model(model, o);
  Transformer split_tf(split.model, &cluster);
  if (!cluster.leader()) {
    split_tf.follow(pool);
    return 0;
  }
  o.comm = nullptr;
  grok::ReadyModel whole = grok::open_model(model, o);
  Transformer whole_tf(whole.model);
  const grok::GrokConfig& c = whole.model.config;
  o.repack = false;
  std::optional<grok::ReadyModel> exact;
  std::optional<Transformer> exact_tf;
  if (whole.pack.matrices > 0) {
    exact.emplace(grok::open_model(model, o));
    exact_tf.emplace(exact->model);
  }
  Pair p{exact_tf ? &*exact_tf : nullptr, whole_tf, c, split_tf, split.model.config, pool, c.vocab_size};
  std::printf("dist_check: %s over %d ranks; rank 0: %s\n", model.c_str(), cluster.size(),
              split.model.shard.describe().c_str());

  if (trace) {
    std::vector<std::pair<std::string, std::vector<float>>> seen;
    whole_tf.set_observer([&](const std::string& name, const float* d, int64_t r, int64_t cols) {
      seen.emplace_back(name, std::vector<float>(d, d + r * cols));
    });
    size_t k = 0;
    split_tf.set_observer([&](const std::string& name, const float* d, int64_t r, int64_t cols) {
      for (; k < seen.size(); ++k)
        if (seen[k].first == name) {
          std::printf("trace %-20s %.3g\n", name.c_str(), max_diff(seen[k].second.data(), d, size_t(r * cols)));
          ++k;
          break;
        }
    });
    p.compare("traced prompt", {5, 17, 300, 9, 44});
    whole_tf.set_observer(nullptr);
    split_tf.set_observer(nullptr);
  }

  std::mt19937 rng(7);
  auto random_ids = [&](int n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = int32_t(1 + rng() % uint32_t(c.vocab_size - 1));
    return ids;
  };

  // Oracle prompts (or random ones): every position, and the reference.
  std::vector<std::vector<int32_t>> prompts;
  if (!oracle.empty()) {
    std::ifstream in(oracle + "/f32/index.json");
    const nlohmann::json index = nlohmann::json::parse(in);
    for (const auto& pr : index["prompts"]) {
      const auto ids = pr["ids"].get<std::vector<int32_t>>();
      const std::vector<float> b = p.compare("prompt " + pr["id"].get<std::string>(), ids);
      const std::vector<float> ref = read_f32(oracle + "/f32/" + pr["ref_modelpy_file"].get<std::string>());
      report("prompt " + pr["id"].get<std::string>() + " last vs reference",
             max_diff(&b[(ids.size() - 1) * size_t(c.vocab_size)], ref.data(), ref.size()), kTolReference);
      prompts.push_back(ids);
    }
  } else {
    for (int n : {1, 5, 19}) {
      prompts.push_back(random_ids(n));
      p.compare("random prompt of " + std::to_string(n), prompts.back());
    }
  }

  // A pad token (id pad_id: masked as a key, no expert) inside a prompt.
  std::vector<int32_t> padded = random_ids(9);
  padded[3] = c.pad_id;
  p.compare("prompt with a pad token", padded);

  // A prompt in two passes through the same KV cache.
  {
    const std::vector<int32_t> ids = random_ids(13);
    const std::vector<float> a = p.logits(whole_tf, c, ids);
    KVCache cache(split.model.config, int64_t(ids.size()));
    std::vector<float> first, second;
    split_tf.forward(std::span(ids).first(6), cache, pool, false, first);
    split_tf.forward(std::span(ids).subspan(6), cache, pool, true, second);
    report("prompt split across two passes", max_diff(&a[6 * size_t(c.vocab_size)], second.data(), second.size()),
           p.limit(ids));
  }

  // Two sequences in one batch over a shared pool, then a decode step each.
  {
    grok::KvBlockPool shared(split.model.config, 4, 16);
    KVCache c0(split.model.config, shared, 20), c1(split.model.config, shared, 20);
    const std::vector<int32_t> s0 = random_ids(7), s1 = random_ids(11), d = random_ids(2);
    std::vector<float> out;
    std::vector<SequenceStep> steps{{s0, &c0, false}, {s1, &c1, false}};
    split_tf.forward_batch(steps, pool, out);
    steps = {{std::span(&d[0], 1), &c0, false}, {std::span(&d[1], 1), &c1, false}};
    split_tf.forward_batch(steps, pool, out);
    std::vector<int32_t> w0 = s0, w1 = s1;
    w0.push_back(d[0]);
    w1.push_back(d[1]);
    const std::vector<float> a0 = p.logits(whole_tf, c, w0), a1 = p.logits(whole_tf, c, w1);
    const size_t V = size_t(c.vocab_size);
    report("batch of two over a shared KV pool",
           std::max(max_diff(&a0[(w0.size() - 1) * V], &out[0], V), max_diff(&a1[(w1.size() - 1) * V], &out[V], V)),
           std::max(p.limit(w0), p.limit(w1)));
  }

  // Greedy decoding: the split model gathers only each row's best token.
  for (size_t k = 0; k < prompts.size(); ++k) {
    auto greedy = [&](Transformer& t, const grok::GrokConfig& cfg) {
      std::vector<int32_t> ids = prompts[k], out;
      KVCache cache(cfg, int64_t(ids.size()) + 16);
      std::vector<float> logits;
      t.forward(ids, cache, pool, false, logits);
      for (int i = 0; i < 16; ++i) {
        const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        out.push_back(next);
        t.forward(std::span(&next, 1), cache, pool, false, logits);
      }
      return out;
    };
    split_tf.set_logits_gather(grok::LogitsGather::kArgmax);
    const std::vector<int32_t> a = greedy(whole_tf, c), b = greedy(split_tf, split.model.config);
    split_tf.set_logits_gather(grok::LogitsGather::kFull);
    int differ = 0;
    for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    report("greedy 16 tokens after prompt " + std::to_string(k) + ": tokens differing", differ, 0);
  }

  split_tf.stop_followers(false);
  std::printf("dist_check: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  int status = 1;
  try {
    status = run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_check: rank %d: %s\n", grok::MpiCluster::world().rank(), e.what());
    grok::MpiCluster::world().abort_job(1);
  }
  grok::MpiCluster::world().finish();
  return status;
}
