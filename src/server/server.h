// grok serve as one object: metrics, the scheduler driving continuous
// batching, the completion service and the HTTP transport, wired together
// and stopped in the right order. The CLI command and the tests both use it.
#pragma once

#include <chrono>
#include <memory>

#include "server/completions.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace grok::server {

struct ServerOptions {
  HttpOptions http;
  SchedulerOptions scheduler;
  ServiceOptions service;
};

class Server {
 public:
  // Checks the options against the engine (throws grok::Error naming the bad
  // one); the engine must outlive the server and have a tokenizer.
  Server(Engine& engine, ServerOptions options);
  ~Server();  // shutdown(0)

  // Binds and starts answering; returns the port.
  int start();
  // Refuses new requests (503), lets running ones finish for up to `grace`,
  // cancels what is left (their clients get an error), closes the listening
  // socket and waits for every answering thread. Idempotent.
  void shutdown(std::chrono::milliseconds grace);

  Scheduler& scheduler() { return *scheduler_; }
  Metrics& metrics() { return metrics_; }

 private:
  Metrics metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<CompletionService> service_;
  std::unique_ptr<HttpServer> http_;
  bool shut_down_ = false;
};

}  // namespace grok::server
