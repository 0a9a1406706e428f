#include "engine/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>

#include "core/error.h"
#include "kernels/cpu/isa.h"
#include "model/transformer.h"

namespace grok {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

uint64_t matrix_bytes(const WeightMatrix& w) {
  // An int8 matrix is stored [cols][rows] and reads its bf16 scales too.
  if (w.dtype == DType::I8) return uint64_t(w.cols) * w.row_bytes + uint64_t(w.scale_blocks * w.rows) * 2;
  return uint64_t(w.rows) * w.row_bytes;
}

}  // namespace

uint64_t weight_bytes_per_token(const Model& m) {
  const GrokConfig& c = m.config;
  uint64_t bytes = matrix_bytes(m.weights.output) + uint64_t(c.dim) * 4;
  for (const LayerWeights& l : m.weights.layers) {
    bytes += matrix_bytes(l.wq) + matrix_bytes(l.wk) + matrix_bytes(l.wv) + matrix_bytes(l.wo);
    bytes += uint64_t(c.n_experts * c.dim) * 4 + 4 * uint64_t(c.dim) * 4;  // router and norms (fp32)
    uint64_t experts = 0;
    for (const ExpertWeights& e : l.experts) experts += matrix_bytes(e.w1) + matrix_bytes(e.v) + matrix_bytes(e.w2);
    bytes += experts / uint64_t(c.n_experts) * uint64_t(c.n_experts_used);
  }
  return bytes;
}

double measure_read_bandwidth(ThreadPool& pool, uint64_t bytes, int repetitions) {
  const size_t n = bytes / sizeof(uint64_t);
  std::unique_ptr<uint64_t[]> buf(new uint64_t[n]);
  pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) buf[size_t(i)] = uint64_t(i);  // fault every page in
  });
  std::vector<double> gbps;
  std::vector<uint64_t> sums(size_t(pool.size()));
  for (int r = 0; r < repetitions; ++r) {
    const auto t0 = Clock::now();
    pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int thread) {
      // Eight independent sums keep the loads in flight; the compiler vectorises it.
      uint64_t s[8] = {};
      int64_t i = b;
      for (; i + 8 <= e; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += buf[size_t(i + k)];
      for (; i < e; ++i) s[0] += buf[size_t(i)];
      sums[size_t(thread)] += s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    });
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    gbps.push_back(double(bytes) / sec / 1e9);
  }
  volatile uint64_t sink = sums[0];
  (void)sink;
  return median(gbps);
}

BenchResult run_bench(const Model& m, ThreadPool& pool, const BenchOptions& opt,
                      const std::function<void(const std::string&)>& progress, Collectives* comm) {
  const GrokConfig& c = m.config;
  if (opt.prompt_tokens < 0 || opt.gen_tokens < 0 || opt.repetitions < 1 || opt.batch < 1)
    fail("bench: invalid sizes");
  if (std::max(opt.prompt_tokens, opt.gen_tokens) > c.context_length)
    fail("bench: ", std::max(opt.prompt_tokens, opt.gen_tokens), " tokens exceed the model's context of ",
         c.context_length);
  BenchResult r;
  r.isa = std::string(isa_name(active_isa()));

  std::mt19937 rng(uint32_t(opt.seed));
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& id : ids) id = int32_t(1 + rng() % uint32_t(c.vocab_size - 1));
    return ids;
  };
  Transformer tf(m, comm);
  r.ranks = comm ? comm->size() : 1;
  CommStats comm_used;  // over the timed generation runs
  auto comm_now = [&] { return comm ? comm->stats() : CommStats{}; };
  std::vector<float> logits;
  // One untimed pass of each kind first: page faults, buffer growth.
  const int64_t cap = std::max<int64_t>({opt.prompt_tokens, opt.gen_tokens, 1});
  {
    KVCache warm(c, cap);
    const auto ids = random_tokens(std::min<int64_t>(cap, 16));
    tf.forward(ids, warm, pool, false, logits);
  }
  for (int rep = 0; rep < opt.repetitions; ++rep) {
    if (opt.prompt_tokens > 0) {
      KVCache cache(c, opt.prompt_tokens);
      const auto ids = random_tokens(opt.prompt_tokens);
      const auto t0 = Clock::now();
      tf.forward(ids, cache, pool, false, logits);
      const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
      r.prompt_tps.push_back(double(opt.prompt_tokens) / sec);
      progress(cat("pp", opt.prompt_tokens, " #", rep + 1, ": ", r.prompt_tps.back(), " tokens/s"));
    }
    if (opt.gen_tokens > 0) {
      // batch sequences, each with its own cache and tokens, one forward per step.
      std::vector<KVCache> caches;
      std::vector<std::vector<int32_t>> ids;
      for (int64_t g = 0; g < opt.batch; ++g) {
        caches.emplace_back(c, opt.gen_tokens);
        ids.push_back(random_tokens(opt.gen_tokens));
      }
      std::vector<SequenceStep> steps(size_t(opt.batch));
      const CommStats before = comm_now();
      const auto t0 = Clock::now();
      for (int64_t i = 0; i < opt.gen_tokens; ++i) {
        for (int64_t g = 0; g < opt.batch; ++g) steps[size_t(g)] = {std::span(&ids[size_t(g)][size_t(i)], 1), &caches[size_t(g)]};
        tf.forward_batch(steps, pool, logits);
      }
      const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
      const CommStats after = comm_now();
      comm_used.allreduces += after.allreduces - before.allreduces;
      comm_used.allreduce_seconds += after.allreduce_seconds - before.allreduce_seconds;
      comm_used.other_seconds += after.other_seconds - before.other_seconds;
      comm_used.bytes_sent += after.bytes_sent - before.bytes_sent;
      r.gen_tps.push_back(double(opt.gen_tokens * opt.batch) / sec);
      progress(cat("tg", opt.gen_tokens, opt.batch > 1 ? cat(" x ", opt.batch, " sequences") : "", " #", rep + 1, ": ",
                   r.gen_tps.back(), " tokens/s"));
    }
  }
  tf.stop_followers(/*report=*/true);
  if (const double tokens = double(opt.gen_tokens * opt.batch * opt.repetitions); tokens > 0) {
    r.comm_seconds_per_token = (comm_used.allreduce_seconds + comm_used.other_seconds) / tokens;
    r.allreduce_seconds_per_token = comm_used.allreduce_seconds / tokens;
    r.allreduces_per_token = double(comm_used.allreduces) / tokens;
    r.comm_bytes_per_token = double(comm_used.bytes_sent) / tokens;
  }
  r.prompt_tps_median = median(r.prompt_tps);
  r.gen_tps_median = median(r.gen_tps);
  r.weight_bytes_per_token = weight_bytes_per_token(m);
  if (opt.batch == 1) r.weight_gbps = double(r.weight_bytes_per_token) * r.gen_tps_median / 1e9;
  // Before the bandwidth probe, whose buffer would count as resident too.
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  r.peak_rss_mib = double(ru.ru_maxrss) / 1024.0;
  r.memory_read_gbps = measure_read_bandwidth(pool, opt.probe_bytes);
  progress(cat("memory read: ", r.memory_read_gbps, " GB/s"));
  return r;
}

}  // namespace grok
