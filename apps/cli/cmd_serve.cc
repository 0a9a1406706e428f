// grok serve: an OpenAI-compatible HTTP server over one model (src/server).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>

#include "apps/cli/commands.h"
#include "apps/cli/option_checks.h"
#include "core/error.h"
#include "server/server.h"

namespace grok::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  server::ServerOptions server;
  std::string chat_template;
  double shutdown_grace_seconds = 10;
  double request_timeout_seconds = 30;
  bool no_prefix_cache = false;
};

// The name /v1/models reports: the model file or folder's name.
std::string model_id(const std::string& path) {
  if (path.empty()) return "grok-builtin-tiny";
  std::filesystem::path p = std::filesystem::path(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

void run(ServeArgs& a) {
  if (!a.chat_template.empty()) a.server.service.chat_template = server::ChatTemplate::from_json_file(a.chat_template);
  a.server.service.model_id = model_id(a.model.model);
  a.server.scheduler.prefix_cache = !a.no_prefix_cache;
  a.server.http.request_timeout = std::chrono::milliseconds(int64_t(a.request_timeout_seconds * 1000));

  // SIGTERM and SIGINT are taken by sigwait below; blocked before any thread
  // starts, so every thread inherits the mask and none is interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto engine = open_engine(a.model);
  MpiCluster& cluster = MpiCluster::world();
  if (!cluster.leader()) {
    // Under mpirun: this rank runs its part of the leader's passes; mpirun's
    // SIGTERM ends it (the default action, so unblocked again).
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
    follow_leader(*engine);
    return;
  }
  server::Server srv(*engine, a.server);
  const int port = srv.start();
  std::fprintf(stderr, "grok: serving %s on http://%s:%d (OpenAI API under /v1; Ctrl-C or SIGTERM stops)\n",
               a.server.service.model_id.c_str(), a.server.http.host.c_str(), port);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (cluster.distributed()) {
    // mpirun sends SIGTERM to every rank at once (when asked to stop, or
    // when a rank died): the others are going, so no pass can finish and
    // waiting for them would hang. Requests still running are answered now.
    cluster.abandon();
    std::fprintf(stderr, "grok: %s: stopping; the other ranks are stopping too\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  } else {
    std::fprintf(stderr, "grok: %s: stopping (running requests get up to %.0f s to finish)\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", a.shutdown_grace_seconds);
  }
  const int64_t cut = srv.scheduler().in_flight();
  srv.shutdown(std::chrono::milliseconds(int64_t(a.shutdown_grace_seconds * 1000)));
  const std::string failure = srv.scheduler().failure();
  if (!failure.empty())
    fail("stopped with ", cut, " request", cut == 1 ? "" : "s", " waiting or running: ", failure,
         " (mpirun's message above names the rank that ended)");
  std::fprintf(stderr, "grok: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the model over HTTP with OpenAI's API (completions and chat)");
  add_model_options(cmd, a->model);
  server::HttpOptions& http = a->server.http;
  server::SchedulerOptions& sched = a->server.scheduler;
  server::ServiceOptions& svc = a->server.service;
  cmd->add_option("--host", http.host, "address to listen on (0.0.0.0 for every interface)")->capture_default_str();
  cmd->add_option("--port", http.port, "port to listen on (0: any free port, printed on stderr)")->capture_default_str()->check(whole_number(0, 65535));
  cmd->add_option("--api-key", http.api_key,
                  "require 'Authorization: Bearer KEY' on /v1/* (default: GROK_API_KEY, else no key)")
      ->envname("GROK_API_KEY");
  cmd->add_option("--max-batch", sched.max_batch, "sequences generated together in one forward pass")
      ->capture_default_str()->check(whole_number(1, 1024));
  cmd->add_option("--max-queue", sched.max_queue, "sequences that may wait for a place in the batch; more get 429")
      ->capture_default_str()->check(whole_number(0, 100000));
  cmd->add_option("--kv-budget-tokens", sched.kv_budget_tokens,
                  "KV memory over all requests, in tokens (0: max-batch x the context, at most half the free memory)")
      ->capture_default_str()->check(whole_number(0));
  cmd->add_option("--kv-block-tokens", sched.kv_block_tokens, "tokens per KV memory block (the unit of prefix reuse)")
      ->capture_default_str()->check(whole_number(1, 1 << 20));
  cmd->add_flag("--no-prefix-cache", a->no_prefix_cache,
                "compute every prompt in full (by default a prompt that starts like an earlier one reuses its keys and values)");
  cmd->add_option("--max-body-bytes", http.max_body_bytes, "largest request body; larger gets 413")
      ->capture_default_str()->check(whole_number(1024, int64_t(1) << 30));
  cmd->add_option("--max-prompt-tokens", svc.max_prompt_tokens, "longest prompt accepted (default: the context)")
      ->check(whole_number(0));
  cmd->add_option("--max-tokens-limit", svc.max_tokens_limit,
                  "largest max_tokens a request may ask for (default: the context)")
      ->check(whole_number(0));
  cmd->add_option("--chat-template", a->chat_template,
                  "JSON file with the chat prompt format (fields system, user, assistant, generation_prompt, stop; "
                  "see README)");
  cmd->add_option("--request-timeout", a->request_timeout_seconds,
                  "seconds a request (headers and body) may take to arrive; slower ones get 408")
      ->capture_default_str()->check(real_number(0.1, 3600));
  cmd->add_option("--shutdown-grace", a->shutdown_grace_seconds,
                  "seconds running requests get to finish after SIGTERM before they are cancelled")
      ->capture_default_str()->check(real_number(0, 3600));
  cmd->callback([a] { run(*a); });
}

}  // namespace grok::cli
