// grok bench: prompt and generation speed, and weight bandwidth against the machine's.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"
#include "engine/bench.h"

namespace grok::cli {
namespace {

struct BenchArgs {
  ModelArgs model;
  BenchOptions bench;
  bool json = false;
  int64_t allreduce_values = 0;  // --allreduce N: time the all-reduce algorithms alone
};

// Under mpirun: every all-reduce algorithm over N floats, no model.
void run_allreduce(const BenchArgs& a) {
  MpiCluster& cluster = MpiCluster::world();
  if (!cluster.distributed()) fail("--allreduce measures communication between ranks: run it under mpirun -np 2 or more");
  const std::vector<AllreduceTiming> t = measure_allreduce(cluster, a.allreduce_values);
  if (!cluster.leader()) return;
  if (a.json) {
    nlohmann::json j = {{"ranks", cluster.size()}, {"values", a.allreduce_values}, {"algorithms", nlohmann::json::array()}};
    for (const AllreduceTiming& x : t)
      j["algorithms"].push_back({{"algorithm", allreduce_algorithm_name(x.algorithm)},
                                 {"seconds_per_call", x.seconds_per_call},
                                 {"bytes_sent_per_call", x.bytes_sent_per_call}});
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("all-reduce of %lld floats over %d ranks (median of 9 rounds of 50 calls)\n",
              (long long)a.allreduce_values, cluster.size());
  for (const AllreduceTiming& x : t)
    std::printf("  %-10s %8.1f us per call, %8.1f KiB sent by rank 0\n", allreduce_algorithm_name(x.algorithm),
                1e6 * x.seconds_per_call, x.bytes_sent_per_call / 1024);
}

void run(const BenchArgs& a) {
  if (a.allreduce_values > 0) return run_allreduce(a);
  const ReadyModel ready = open_model_for(a.model, /*need_tokenizer=*/false, /*read_all_first=*/true);
  auto progress = [&](const std::string& line) {
    if (!a.json) std::fprintf(stderr, "  %s\n", line.c_str());
  };
  if (ready.pack.bytes)
    progress(cat("repacked ", ready.pack.bytes >> 20, " MiB of weights for the CPU kernels in ", ready.pack_seconds,
                 " s"));
  ThreadPool pool(a.model.threads);
  MpiCluster& cluster = MpiCluster::world();
  if (!cluster.leader()) {  // the leader runs the bench; this rank runs its part of each pass
    Transformer tf(ready.model, ready.comm);
    if (tf.follow(pool)) gather_rank_reports(cluster, weight_bytes(ready.model.weights));
    return;
  }
  const BenchResult r = run_bench(ready.model, pool, a.bench, progress, ready.comm);
  std::vector<RankReport> ranks =
      cluster.distributed() ? gather_rank_reports(cluster, weight_bytes(ready.model.weights)) : std::vector<RankReport>{};
  // Rank 0's own peak as measured before the bandwidth probe's buffer.
  if (!ranks.empty()) ranks[0].peak_rss = uint64_t(r.peak_rss_mib * 1048576.0);
  const double bw_share = r.memory_read_gbps > 0 ? r.weight_gbps / r.memory_read_gbps : 0;
  if (a.json) {
    nlohmann::json j = {{"model", a.model.model.empty() ? "(built-in)" : a.model.model},
                        {"threads", pool.size()},
                        {"isa", r.isa},
                        {"activation_bits", a.model.activation_bits},
                        {"prompt_tokens", a.bench.prompt_tokens},
                        {"gen_tokens", a.bench.gen_tokens},
                        {"batch", a.bench.batch},
                        {"repetitions", a.bench.repetitions},
                        {"prompt_tokens_per_s", r.prompt_tps},
                        {"gen_tokens_per_s", r.gen_tps},
                        {"prompt_tokens_per_s_median", r.prompt_tps_median},
                        {"gen_tokens_per_s_median", r.gen_tps_median},
                        {"weight_bytes_per_token", r.weight_bytes_per_token},
                        {"memory_read_gb_per_s", r.memory_read_gbps},
                        {"peak_rss_mib", r.peak_rss_mib},
                        {"repacked_bytes", ready.pack.bytes}};
    // A batch reads more experts per step than one token does: no per-token figure.
    j["weight_gb_per_s"] = a.bench.batch == 1 ? nlohmann::json(r.weight_gbps) : nlohmann::json();
    j["weight_bandwidth_share"] = a.bench.batch == 1 ? nlohmann::json(bw_share) : nlohmann::json();
    j["ranks"] = r.ranks;
    j["allreduce_algorithm"] = allreduce_algorithm_name(cluster.algorithm());
    j["comm_seconds_per_token"] = r.comm_seconds_per_token;
    j["allreduce_seconds_per_token"] = r.allreduce_seconds_per_token;
    j["allreduces_per_token"] = r.allreduces_per_token;
    j["comm_bytes_per_token"] = r.comm_bytes_per_token;
    nlohmann::json per_rank = nlohmann::json::array();
    for (const RankReport& rr : ranks)
      per_rank.push_back({{"rank", rr.rank},
                          {"host", rr.host},
                          {"weight_bytes", rr.weight_bytes},
                          {"peak_rss_bytes", rr.peak_rss},
                          {"allreduce_seconds", rr.comm.allreduce_seconds},
                          {"bytes_sent", rr.comm.bytes_sent}});
    j["per_rank"] = per_rank;
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("model: %s  threads: %d  isa: %s%s\n", a.model.model.empty() ? "(built-in)" : a.model.model.c_str(),
              pool.size(), r.isa.c_str(), a.model.activation_bits == 8 ? "  Q8_0 activations: 8-bit" : "");
  std::printf("pp%lld: %.2f tokens/s (median of %d)\n", (long long)a.bench.prompt_tokens, r.prompt_tps_median,
              a.bench.repetitions);
  if (cluster.distributed()) {
    std::printf("ranks: %d, all-reduce: %s; per generated token: %.0f all-reduces, %.3f ms communicating "
                "(%.3f ms in all-reduces), %.1f KiB sent by rank 0\n",
                r.ranks, allreduce_algorithm_name(cluster.algorithm()), r.allreduces_per_token,
                1e3 * r.comm_seconds_per_token, 1e3 * r.allreduce_seconds_per_token, r.comm_bytes_per_token / 1024);
    std::printf("%s", rank_report_table(ranks).c_str());
  }
  if (a.bench.batch > 1) {
    std::printf("tg%lld x %lld sequences: %.2f tokens/s in all (median of %d)\n", (long long)a.bench.gen_tokens,
                (long long)a.bench.batch, r.gen_tps_median, a.bench.repetitions);
    std::printf("peak resident memory: %.0f MiB\n", r.peak_rss_mib);
    return;
  }
  std::printf("tg%lld: %.2f tokens/s (median of %d)\n", (long long)a.bench.gen_tokens, r.gen_tps_median,
              a.bench.repetitions);
  std::printf("weights per generated token: %.1f MiB -> %.2f GB/s, %.0f%% of measured memory read %.2f GB/s\n",
              double(r.weight_bytes_per_token) / 1048576.0, r.weight_gbps, 100 * bw_share, r.memory_read_gbps);
  std::printf("peak resident memory: %.0f MiB\n", r.peak_rss_mib);
}

}  // namespace

void register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prompt and generation speed and weight bandwidth");
  add_model_options(cmd, a->model);
  cmd->add_option("--allreduce", a->allreduce_values,
                  "under mpirun: time each all-reduce algorithm over this many floats instead (a model's dim)")
      ->check(whole_number(1, 1 << 26));
  cmd->add_option("-p,--prompt-tokens", a->bench.prompt_tokens, "prompt length (pp)")->capture_default_str()->check(whole_number(0));
  cmd->add_option("-n,--gen-tokens", a->bench.gen_tokens, "generated tokens (tg)")->capture_default_str()->check(whole_number(0));
  cmd->add_option("-b,--batch", a->bench.batch,
                  "sequences generating together (one forward pass per step); tg is then their tokens/s in all")
      ->capture_default_str()
      ->check(whole_number(1, 4096));
  cmd->add_option("-r,--repetitions", a->bench.repetitions, "repetitions; medians are reported")
      ->capture_default_str()->check(whole_number(1, 1000000));
  cmd->add_option_function<uint64_t>(
         "--probe-mib", [a](uint64_t mib) { a->bench.probe_bytes = mib << 20; },
         "size of the memory-bandwidth probe buffer in MiB (default 1024)")
      ->check(whole_number(1, int64_t(1) << 20));
  cmd->add_flag("--json", a->json, "print the results as JSON");
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
