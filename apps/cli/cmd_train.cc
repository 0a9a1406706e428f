// grok train: train a Grok-architecture model on text (docs/training.md).
// The work is in src/train; this parses options, prepares the vocabulary
// and the token streams, and prints progress.
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "model/random_model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_trainer.h"
#include "train/trainer.h"

namespace grok::cli {
namespace {

using nlohmann::json;

struct TrainArgs {
  std::string preset, config_file, init, tokenizer, resume, out, log;
  int64_t vocab_size = 0, layers = 0;
  std::vector<std::string> data, eval_data;
  TrainOptions o;
  std::string checkpointing = "auto";
  int threads = 0;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<int32_t> tokenize_files(const Tokenizer& tok, const std::vector<std::string>& files) {
  std::vector<int32_t> ids;
  for (const std::string& f : files) {
    const std::string text = read_text(f);
    try {
      const std::vector<int32_t> part = tok.encode(text);
      ids.insert(ids.end(), part.begin(), part.end());
    } catch (const Error& e) {
      fail(f, ": ", e.what());
    }
  }
  return ids;
}

std::string seconds_str(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const long t = long(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

// The options a run can be resumed with, stored in its optimizer state.
json run_info(const TrainArgs& a, const GrokConfig& c) {
  const TrainOptions& o = a.o;
  return json{{"data", a.data},
              {"eval_data", a.eval_data},
              {"config",
               {{"vocab_size", c.vocab_size}, {"dim", c.dim}, {"n_layers", c.n_layers}, {"n_heads", c.n_heads},
                {"n_kv_heads", c.n_kv_heads}, {"head_dim", c.head_dim}, {"n_experts", c.n_experts},
                {"n_experts_used", c.n_experts_used}, {"ffn_dim", c.ffn_dim}, {"context_length", c.context_length},
                {"rope_base", c.rope_base}, {"rms_eps", c.rms_eps}, {"attn_scale", c.attn_scale},
                {"attn_cap", c.attn_cap}, {"embed_scale", c.embed_scale}, {"logit_scale", c.logit_scale},
                {"pad_id", c.pad_id}, {"bos_id", c.bos_id}, {"eos_id", c.eos_id}}},
              {"steps", o.steps}, {"batch", o.batch}, {"seq", o.seq}, {"lr", o.adam.lr},
              {"min_lr", o.adam.min_lr}, {"warmup", o.adam.warmup}, {"beta1", o.adam.beta1},
              {"beta2", o.adam.beta2}, {"eps", o.adam.eps}, {"weight_decay", o.adam.weight_decay},
              {"clip", o.adam.clip}, {"lb_coef", o.lb_coef}, {"router_noise", o.router_noise},
              {"checkpointing", o.checkpointing}, {"seed", o.seed}, {"eval_every", o.eval_every},
              {"save_every", o.save_every}, {"eval_windows", o.eval_windows}, {"name", o.name}};
}

void restore(TrainArgs& a, const json& j) {
  TrainOptions& o = a.o;
  a.data = j.at("data").get<std::vector<std::string>>();
  a.eval_data = j.at("eval_data").get<std::vector<std::string>>();
  o.batch = j.at("batch");
  o.seq = j.at("seq");
  o.adam.lr = j.at("lr");
  o.adam.min_lr = j.at("min_lr");
  o.adam.warmup = j.at("warmup");
  o.adam.beta1 = j.at("beta1");
  o.adam.beta2 = j.at("beta2");
  o.adam.eps = j.at("eps");
  o.adam.weight_decay = j.at("weight_decay");
  o.adam.clip = j.at("clip");
  o.lb_coef = j.at("lb_coef");
  o.router_noise = j.at("router_noise");
  o.checkpointing = j.at("checkpointing");
  o.seed = j.at("seed");
  o.eval_every = j.at("eval_every");
  o.save_every = j.at("save_every");
  o.eval_windows = j.at("eval_windows");
  o.name = j.at("name");
}

void run(TrainArgs a, bool steps_given) {
  GrokConfig c;
  Tokenizer tok = Tokenizer::builtin();
  bool have_tok = false;
  if (!a.resume.empty()) {
    // Everything but --steps, --out and --threads comes from the run being resumed.
    const std::string opt_path = a.resume + ".adamw";
    const GgufFile state = GgufFile::open(opt_path);
    const auto info = state.get_string("train.options");
    if (!info) fail(opt_path, ": no train.options (not written by grok train)");
    const json j = json::parse(*info);
    const int64_t original_steps = j.at("steps");
    restore(a, j);
    if (!steps_given) a.o.steps = original_steps;
    apply_config_json(c, j.at("config").dump(), opt_path);
    tok = Tokenizer::from_gguf(GgufFile::open(a.resume));
    have_tok = true;
    if (a.out.empty()) a.out = a.resume;
  } else {
    if (a.data.empty()) fail("train: give the training text with --data FILE (or --resume CHECKPOINT)");
    if (a.out.empty()) fail("train: give the output model with --out FILE.gguf");
    if (!a.preset.empty() && !a.config_file.empty()) fail("train: give --preset or --config, not both");
    c = preset_config(a.preset.empty() ? "tiny" : a.preset);  // --config overrides tiny's fields
    if (!a.config_file.empty()) apply_config_json(c, read_text(a.config_file), a.config_file);
    if (a.layers > 0) c.n_layers = a.layers;
  }
  check_output_path(a.out);
  for (const auto* files : {&a.data, &a.eval_data})
    for (const std::string& f : *files)
      if (!std::ifstream(f, std::ios::binary)) fail(f, ": cannot open");

  if (!have_tok) {
    if (!a.tokenizer.empty() && a.vocab_size > 0) fail("train: give --tokenizer or --vocab-size, not both");
    if (!a.tokenizer.empty()) {
      tok = a.tokenizer.ends_with(".gguf") ? Tokenizer::from_gguf(GgufFile::open(a.tokenizer))
                                           : Tokenizer::from_model_file(a.tokenizer);
    } else if (!a.init.empty()) {
      tok = Tokenizer::from_gguf(GgufFile::open(a.init));
    } else if (a.vocab_size > 0) {
      std::fprintf(stderr, "training a %lld-piece BPE vocabulary on %zu file(s) with SentencePiece...\n",
                   (long long)a.vocab_size, a.data.size());
      VocabTrainOptions vo;
      vo.vocab_size = int32_t(a.vocab_size);
      tok = Tokenizer::from_serialized(train_vocabulary(a.data, vo));
    } else {
      fail("train: give a vocabulary: --tokenizer FILE (tokenizer.model or a GGUF), or --vocab-size N to train one "
           "on the data");
    }
    c.vocab_size = tok.vocab_size();
    if (tok.pad_id() >= 0) c.pad_id = tok.pad_id();
    if (tok.bos_id() >= 0) c.bos_id = tok.bos_id();
    if (tok.eos_id() >= 0) c.eos_id = tok.eos_id();
  }
  c.validate("train");
  if (a.checkpointing == "on")
    a.o.checkpointing = true;
  else if (a.checkpointing == "off")
    a.o.checkpointing = false;
  else if (a.resume.empty())
    a.o.checkpointing = a.o.seq >= 1024;  // activations grow with seq²: recompute for long contexts

  std::fprintf(stderr, "tokenizing %zu file(s)...\n", a.data.size());
  std::vector<int32_t> train = tokenize_files(tok, a.data);
  std::vector<int32_t> eval;
  std::string eval_from;
  if (!a.eval_data.empty()) {
    eval = tokenize_files(tok, a.eval_data);
    eval_from = "--eval-data";
  } else {
    // Hold out the text's last 5% (at least one window), never trained on.
    const int64_t keep = std::max<int64_t>(a.o.seq + 1, int64_t(train.size()) / 20);
    if (int64_t(train.size()) - keep < a.o.seq + 1)
      fail("train: the text has ", train.size(), " tokens: too few for --seq ", a.o.seq,
           " and a held-out part (give --eval-data, or a shorter --seq)");
    eval.assign(train.end() - keep, train.end());
    train.resize(train.size() - size_t(keep));
    eval_from = "the last 5% of --data";
  }
  a.o.out = a.out;
  a.o.run_info = run_info(a, c).dump();

  // Every step allocates and frees the same large buffers: keep them in the
  // heap (no mmap, no trimming) rather than fault fresh zeroed pages in each
  // time (a tenth of a step otherwise).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  ThreadPool pool(a.threads);
  std::fprintf(stderr,
               "model: %lld layers, dim %lld, %lld heads (%lld kv) of %lld, %lld experts (top %lld) of ffn %lld, "
               "vocab %lld: %.2f M parameters\n",
               (long long)c.n_layers, (long long)c.dim, (long long)c.n_heads, (long long)c.n_kv_heads,
               (long long)c.head_dim, (long long)c.n_experts, (long long)c.n_experts_used, (long long)c.ffn_dim,
               (long long)c.vocab_size, double(c.parameter_count()) / 1e6);
  std::fprintf(stderr, "data: %zu training tokens, %zu held-out tokens (%s)\n", train.size(), eval.size(),
               eval_from.c_str());
  Trainer trainer(c, a.o, std::move(train), std::move(eval), tok.gguf_vocabulary(), pool);
  if (!a.resume.empty()) {
    trainer.load(a.resume, true);
    std::fprintf(stderr, "resumed %s at step %lld\n", a.resume.c_str(), (long long)trainer.step());
  } else if (!a.init.empty()) {
    trainer.load(a.init, false);
    std::fprintf(stderr, "starting from the weights of %s\n", a.init.c_str());
  } else {
    trainer.init_random();
  }
  if (trainer.step() >= a.o.steps)
    fail("train: the checkpoint is at step ", trainer.step(), "; give a larger --steps to go on");
  std::fprintf(stderr,
               "training: %lld steps of %lld × %lld tokens, lr %g (warm-up %lld, cosine to %g), lb_coef %g, "
               "router noise %g, checkpointing %s, %d threads, seed %llu\n",
               (long long)a.o.steps, (long long)a.o.batch, (long long)a.o.seq, a.o.adam.lr,
               (long long)a.o.adam.warmup, a.o.adam.min_lr, a.o.lb_coef, a.o.router_noise,
               a.o.checkpointing ? "on" : "off", pool.size(), (unsigned long long)a.o.seed);

  std::FILE* log = nullptr;
  if (!a.log.empty()) {
    log = std::fopen(a.log.c_str(), trainer.step() > 0 ? "a" : "w");
    if (!log) fail(a.log, ": cannot open for writing");
  }
  const bool tty = isatty(2);
  std::deque<double> recent;  // the last steps' seconds, for tokens/s and the ETA
  double recent_sum = 0;
  auto last_line = std::chrono::steady_clock::now();
  const int64_t tokens_per_step = a.o.batch * a.o.seq;
  auto on_step = [&](const StepReport& s) {
    recent.push_back(s.seconds);
    recent_sum += s.seconds;
    if (recent.size() > 20) recent_sum -= recent.front(), recent.pop_front();
    const double per_step = recent_sum / double(recent.size());
    const double tps = double(tokens_per_step) / per_step;
    const double eta = per_step * double(s.steps - s.step);
    if (log)
      std::fprintf(log,
                   "{\"step\":%lld,\"loss\":%.6f,\"ce\":%.6f,\"lb\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6g,"
                   "\"seconds\":%.4f}\n",
                   (long long)s.step, s.loss, s.ce, s.lb, s.lr, s.grad_norm, s.seconds);
    const auto now = std::chrono::steady_clock::now();
    if (!tty && now - last_line < std::chrono::seconds(30) && s.step != s.steps) return;
    last_line = now;
    const int width = 24;
    const int filled = int(double(width) * double(s.step) / double(s.steps));
    std::fprintf(stderr, "%s[%s%s] step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s%s", tty ? "\r\033[K" : "",
                 std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), '.').c_str(),
                 (long long)s.step, (long long)s.steps, s.loss, s.lr, tps, seconds_str(eta).c_str(),
                 tty ? "" : "\n");
    std::fflush(stderr);
  };
  auto on_eval = [&](const EvalReport& e) {
    if (tty) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "step %lld: held-out loss %.4f (perplexity %.2f) over %lld tokens\n", (long long)e.step,
                 e.loss, std::exp(e.loss), (long long)e.tokens);
    std::string dead;
    for (int64_t l = 0; l < e.layers; ++l) {
      int64_t total = 0;
      for (int64_t x = 0; x < e.experts; ++x) total += e.expert_tokens[size_t(l * e.experts + x)];
      std::fprintf(stderr, "  layer %lld expert load %%:", (long long)l);
      for (int64_t x = 0; x < e.experts; ++x)
        std::fprintf(stderr, " %4.1f",
                     total ? 100.0 * double(e.expert_tokens[size_t(l * e.experts + x)]) / double(total) : 0.0);
      std::fprintf(stderr, "\n");
    }
    for (auto [l, x] : e.dead)
      dead += (dead.empty() ? "" : ", ") + ("layer " + std::to_string(l) + " expert " + std::to_string(x));
    std::fprintf(stderr, "  dead experts (under 1%% of a layer's tokens): %s\n", dead.empty() ? "none" : dead.c_str());
    if (log) {
      json j{{"step", e.step}, {"heldout_loss", e.loss}, {"heldout_tokens", e.tokens},
             {"expert_tokens", e.expert_tokens}, {"dead", json::array()}};
      for (auto [l, x] : e.dead) j["dead"].push_back({l, x});
      std::fprintf(log, "%s\n", j.dump().c_str());
      std::fflush(log);
    }
  };
  auto on_save = [&](const std::string& path) {
    std::fprintf(stderr, "%ssaved %s (and %s.adamw) at step %lld\n", tty ? "\r\033[K" : "", path.c_str(),
                 path.c_str(), (long long)trainer.step());
  };
  trainer.run(on_step, on_eval, on_save);
  if (log) std::fclose(log);
}

}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "Train a Grok-architecture model on text (writes GGUF)");
  cmd->add_option("--preset", a->preset, "model shape: tiny (default), bench or grok-1");
  cmd->add_option("--config", a->config_file,
                  "JSON of GrokConfig fields (dim, n_layers, n_heads, n_kv_heads, head_dim, n_experts, "
                  "n_experts_used, ffn_dim, context_length, ...) over the tiny preset");
  cmd->add_option("--layers", a->layers, "number of layers (default: the preset's or config's)")
      ->check(whole_number(1, 1024));
  cmd->add_option("--init", a->init, "start from this fp32 GGUF's weights (fine-tuning) instead of random ones");
  cmd->add_option("--data", a->data, "training text file(s)")->expected(1, -1);
  cmd->add_option("--eval-data", a->eval_data, "held-out text file(s) (default: the last 5% of --data)")
      ->expected(1, -1);
  cmd->add_option("--tokenizer", a->tokenizer, "vocabulary: a tokenizer.model or a GGUF that has one");
  cmd->add_option("--vocab-size", a->vocab_size, "train a BPE vocabulary of this many pieces on --data")
      ->check(whole_number(300, 1 << 20));
  cmd->add_option("--out,-o", a->out, "model to write (GGUF, fp32); its optimizer state goes to OUT.adamw");
  cmd->add_option("--resume", a->resume,
                  "go on from this checkpoint (and CHECKPOINT.adamw) with the options it was started with");
  auto* steps = cmd->add_option("--steps", a->o.steps, "optimizer steps")->capture_default_str()->check(whole_number(1));
  cmd->add_option("--batch", a->o.batch, "sequences per step")->capture_default_str()->check(whole_number(1, 1 << 16));
  cmd->add_option("--seq", a->o.seq, "tokens per sequence")->capture_default_str()->check(whole_number(1, 1 << 20));
  cmd->add_option("--lr", a->o.adam.lr, "peak learning rate")->capture_default_str()->check(real_number(0, 10));
  cmd->add_option("--min-lr", a->o.adam.min_lr, "learning rate at the last step (cosine decay)")
      ->capture_default_str()->check(real_number(0, 10));
  cmd->add_option("--warmup", a->o.adam.warmup, "steps of linear warm-up")->capture_default_str()->check(whole_number(0));
  cmd->add_option("--weight-decay", a->o.adam.weight_decay, "AdamW's decoupled weight decay (matrices only)")
      ->capture_default_str()->check(real_number(0, 1));
  cmd->add_option("--beta1", a->o.adam.beta1, "AdamW β1")->capture_default_str()->check(real_number(0, 0.999999));
  cmd->add_option("--beta2", a->o.adam.beta2, "AdamW β2")->capture_default_str()->check(real_number(0, 0.999999));
  cmd->add_option("--clip", a->o.adam.clip, "clip the gradient's global norm to this (0: off)")
      ->capture_default_str()->check(real_number(0));
  cmd->add_option("--lb-coef", a->o.lb_coef, "load-balancing loss coefficient (0: off)")
      ->capture_default_str()->check(real_number(0, 100));
  cmd->add_option("--router-noise", a->o.router_noise,
                  "std of Gaussian noise on the router logits in training (0: off)")
      ->capture_default_str()->check(real_number(0, 100));
  cmd->add_option("--checkpointing", a->checkpointing,
                  "recompute each layer in the backward pass: on, off, or auto (on from --seq 1024)")
      ->capture_default_str()->check(CLI::IsMember({"auto", "on", "off"}));
  cmd->add_option("--seed", a->o.seed, "seed of the initial weights, the batches and the router noise")
      ->capture_default_str()->check(unsigned_number());
  cmd->add_option("--eval-every", a->o.eval_every, "held-out loss and expert load every N steps (0: at the end)")
      ->capture_default_str()->check(whole_number(0));
  cmd->add_option("--save-every", a->o.save_every, "checkpoint every N steps (0: at every evaluation)")
      ->capture_default_str()->check(whole_number(0));
  cmd->add_option("--eval-windows", a->o.eval_windows, "held-out windows of --seq tokens evaluated (at most)")
      ->capture_default_str()->check(whole_number(1));
  cmd->add_option("--name", a->o.name, "general.name of the written model")->capture_default_str();
  cmd->add_option("--log", a->log, "append one JSON line per step and per evaluation to this file");
  cmd->add_option("-t,--threads", a->threads, "worker threads (default: one per hardware thread)")
      ->check(thread_count());
  cmd->callback([a, cmd, steps] {
    if (!a->resume.empty())
      for (const char* o : {"--preset", "--config", "--layers", "--init", "--data", "--eval-data", "--tokenizer",
                            "--vocab-size"})
        if (cmd->count(o) > 0) fail("train: ", o, " cannot be changed when resuming (it comes from the checkpoint)");
    run(*a, steps->count() > 0);
  });
}

}  // namespace grok::cli
