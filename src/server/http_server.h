// grok serve's HTTP transport (cpp-httplib): routes, the API key, body
// limits, error objects for every 4xx/5xx, streaming through chunked
// responses, and a graceful stop. What the endpoints compute lives in
// completions.h, openai_api.h and metrics.h.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <memory>
#include <string>
#include <thread>

#include "server/completions.h"
#include "server/http_connection.h"
#include "server/metrics.h"
#include "server/scheduler.h"

namespace grok::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (tests)
  std::string api_key;           // empty: no authentication
  size_t max_body_bytes = 1 << 20;
  int retry_after_seconds = 1;   // the Retry-After of a 429
  // A request (line, headers, body) must arrive within this from its first
  // byte, else 408: a client trickling its body cannot hold a thread forever.
  std::chrono::milliseconds request_timeout{30000};
};

// Compares without an early exit, so the time taken does not tell an
// attacker how much of the key they guessed.
bool constant_time_equal(const std::string& presented, const std::string& expected);

class HttpServer {
 public:
  HttpServer(CompletionService& service, Scheduler& scheduler, Metrics& metrics, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts answering on a thread of its own; returns the port.
  // Throws grok::Error when the address cannot be bound.
  int start();
  // Refuses new completions (503) and reports /health 503; requests
  // running go on. Idempotent.
  void begin_drain();
  // Once the scheduler has finished or cancelled every request: waits up to
  // `timeout` for their responses to be written out, then closes the
  // listening socket and joins the answering threads. (Closing first would
  // let the library drop responses it had not started writing.)
  void finish(std::chrono::milliseconds timeout);

 private:
  void routes();
  void join();

  CompletionService& service_;
  Scheduler& scheduler_;
  Metrics& metrics_;
  HttpOptions options_;
  std::unique_ptr<ConnectionServer> http_;
  std::thread listener_;
  std::atomic<bool> listening_done_{false};
  std::atomic<bool> draining_{false};
  // Completion responses accepted and not yet written out.
  std::mutex responses_mu_;
  std::condition_variable responses_cv_;
  int64_t responses_ = 0;
  int64_t created_ = 0;  // when the server started: the model's "created"
};

}  // namespace grok::server
