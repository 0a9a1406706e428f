#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"
#include "dist/mpi_cluster.h"

namespace grok::cli {

void add_model_options(CLI::App* cmd, ModelArgs& args) {
  cmd->add_option("-m,--model", args.model,
                  "GGUF file, Hugging Face folder (config.json + *.safetensors) or xAI's ckpt-0 folder; "
                  "default: the built-in tiny random model");
  cmd->add_option("--tokenizer", args.tokenizer,
                  "SentencePiece tokenizer.model to use instead of the model's own vocabulary");
  cmd->add_option("-t,--threads", args.threads, "worker threads (default: one per hardware thread)")
      ->check(thread_count());
  cmd->add_option("--int8-rounding", args.int8_rounding,
                  "int8 weights (ckpt-0, int8 GGUF): 'exact' uses int8·scale as it is (default), 'bf16' rounds "
                  "each weight to bf16 first, as xAI's reference does")
      ->check(CLI::IsMember({"exact", "bf16"}));
  cmd->add_flag("--no-repack", args.no_repack,
                "use Q8_0, Q4_0, Q6_K and int8 weights in the file's layout instead of a faster copy in memory "
                "(about their size; results differ only by rounding)");
  cmd->add_option("--activation-bits", args.activation_bits,
                  "Q8_0 weights: activations rounded to 16-bit blocks (default; products within ~1e-3 of exact) "
                  "or 8-bit ones, as llama.cpp does and this engine always does for Q4_0: half the integer "
                  "work, so a batch of several sequences runs faster, for a coarser rounding (needs the "
                  "repacked weights and AVX-512; elsewhere 16)")
      ->check(CLI::IsMember({16, 8}));
}

std::function<void(int64_t, int64_t)> progress_printer(const std::string& what) {
  const bool tty = ::isatty(2) == 1;
  auto last = std::make_shared<std::chrono::steady_clock::time_point>();
  return [tty, last, what](int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - *last < (tty ? std::chrono::milliseconds(100) : std::chrono::seconds(5))) return;
    *last = now;
    constexpr int kWidth = 30;
    const int filled = total ? int(kWidth * done / total) : kWidth;
    const std::string bar = std::string(size_t(filled), '#') + std::string(size_t(kWidth - filled), '.');
    std::fprintf(stderr, tty ? "\r[%s] %s: %lld/%lld" : "[%s] %s: %lld/%lld\n", bar.c_str(), what.c_str(),
                 (long long)done, (long long)total);
    if (tty && done == total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
}

LoadOptions load_options(const std::string& int8_rounding) {
  LoadOptions o;
  o.int8_round_to_bf16 = int8_rounding == "bf16";
  if (!MpiCluster::world().leader()) return o;  // under mpirun the leader speaks for all
  o.progress = progress_printer("checking checkpoint files");
  o.note = [](const std::string& note) { std::fprintf(stderr, "grok: note: %s\n", note.c_str()); };
  return o;
}

bool follow_leader(Engine& engine) {
  if (MpiCluster::world().leader()) return false;
  if (engine.follow()) gather_rank_reports(MpiCluster::world(), weight_bytes(engine.model().weights));
  return true;
}

void finish_job(Engine& engine) {
  engine.stop_followers(/*report=*/false);
}

std::string rank_report_table(const std::vector<RankReport>& reports) {
  std::string out = "rank  host              weights MiB  peak resident MiB  all-reduce s  sent MiB\n";
  for (const RankReport& r : reports) {
    char line[200];
    std::snprintf(line, sizeof line, "%4d  %-16s  %11.1f  %17.1f  %12.3f  %8.1f\n", r.rank, r.host,
                  double(r.weight_bytes) / 1048576.0, double(r.peak_rss) / 1048576.0, r.comm.allreduce_seconds,
                  double(r.comm.bytes_sent) / 1048576.0);
    out += line;
  }
  return out;
}

ReadyModel open_model_for(const ModelArgs& args, bool need_tokenizer, bool read_all_first) {
  OpenOptions o;
  o.load = load_options(args.int8_rounding);
  o.tokenizer = args.tokenizer;
  o.need_tokenizer = need_tokenizer;
  o.repack = !args.no_repack;
  o.activations8 = args.activation_bits == 8;
  o.read_all_first = read_all_first;
  o.threads = args.threads;
  o.comm = &MpiCluster::world();
  const bool leader = o.comm->leader();
  uint64_t shown = 0;
  o.pack_progress = [&shown, leader, printer = progress_printer("repacking weights for the CPU kernels (MiB)")](
                        uint64_t done, uint64_t total) {
    // Only models big enough to take a while get a progress bar.
    if (leader && total >= (uint64_t(1) << 30) && (done == total || done - shown >= (uint64_t(64) << 20))) {
      shown = done;
      printer(int64_t(done >> 20), int64_t(total >> 20));
    }
  };
  o.warn = [leader](const std::string& w) {
    if (leader) std::fprintf(stderr, "grok: warning: %s\n", w.c_str());
  };
  ReadyModel r = open_model(args.model, o);
  if (leader && r.pack.bytes >= (uint64_t(1) << 30))
    std::fprintf(stderr, "grok: repacked %.1f GiB of weights in %.1f s\n", double(r.pack.bytes) / double(uint64_t(1) << 30),
                 r.pack_seconds);
  return r;
}

std::unique_ptr<Engine> open_engine(const ModelArgs& args, bool need_tokenizer) {
  return std::make_unique<Engine>(open_model_for(args, need_tokenizer), args.threads);
}

std::vector<int32_t> parse_id_list(const std::string& text) {
  std::vector<int32_t> ids;
  std::string item;
  auto flush = [&] {
    if (item.empty()) return;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < INT32_MIN || v > INT32_MAX) fail("'", item, "' is not a token id");
    ids.push_back(int32_t(v));
    item.clear();
  };
  for (char ch : text) {
    if (ch == ',' || ch == '[' || ch == ']' || std::isspace(static_cast<unsigned char>(ch)))
      flush();
    else
      item += ch;
  }
  flush();
  return ids;
}

std::string json_escape(const std::string& s) {
  // Invalid UTF-8 cannot reach here (the decoder emits only whole characters),
  // but replace rather than throw if it ever does.
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace grok::cli
