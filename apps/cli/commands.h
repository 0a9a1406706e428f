// The `grok` subcommands. Each registers itself on the CLI11 app; the work is
// done by the engine, these files only parse and print.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "dist/mpi_cluster.h"
#include "engine/engine.h"

namespace grok::cli {

// Options shared by every command that runs a model.
struct ModelArgs {
  std::string model;      // GGUF file or Hugging Face folder; empty: the built-in model
  std::string tokenizer;  // tokenizer.model overriding the model's vocabulary
  int threads = 0;        // 0: one per hardware thread
  std::string int8_rounding = "exact";  // int8 weights: "exact" q·s, or "bf16" as the reference rounds
  bool no_repack = false;  // Q8_0, Q4_0, Q6_K and int8 weights in the file's layout (no copy in memory)
  int activation_bits = 16;  // repacked Q8_0 weights' activations: 16-bit blocks, or 8 (WeightMatrix::activations8)
};
void add_model_options(CLI::App* cmd, ModelArgs& args);
// "[###...] WHAT: 312/770" on stderr (a redrawn bar on a terminal, a line
// every 5 s otherwise).
std::function<void(int64_t, int64_t)> progress_printer(const std::string& what);
// Loading as every command does it: progress of a checkpoint's files and
// notes on stderr; int8 weights rounded "exact" or "bf16" (--int8-rounding).
LoadOptions load_options(const std::string& int8_rounding = "exact");
// open_model (engine/open_model.h) for the command's options: the built-in
// model when -m is not given; progress bars and warnings on stderr. Without
// need_tokenizer, a model with no vocabulary is accepted.
ReadyModel open_model_for(const ModelArgs& args, bool need_tokenizer = true, bool read_all_first = false);
std::unique_ptr<Engine> open_engine(const ModelArgs& args, bool need_tokenizer = true);

// Under mpirun (tensor parallelism): every rank opens its part of the model
// (open_model_for); ranks other than the leader then run the leader's passes
// here and return true, their part of the command done. The leader returns
// false, runs the command and calls finish_job when it is done.
bool follow_leader(Engine& engine);
void finish_job(Engine& engine);
// One line per rank: weights, peak resident memory, communication.
std::string rank_report_table(const std::vector<RankReport>& reports);

// "1,2,3" or "[1, 2, 3]" -> ids; throws grok::Error naming the bad item.
std::vector<int32_t> parse_id_list(const std::string& text);
std::string json_escape(const std::string& s);

void register_generate(CLI::App& app);
void register_logits(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_inspect(CLI::App& app);
void register_bench(CLI::App& app);
void register_kl(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_quantize(CLI::App& app);
void register_convert(CLI::App& app);
void register_init(CLI::App& app);
void register_serve(CLI::App& app);
void register_train(CLI::App& app);

}  // namespace grok::cli
