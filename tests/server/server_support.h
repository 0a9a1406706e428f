// A grok::server::Server on the built-in tiny model and an ephemeral port,
// with the helpers the server tests share.
#pragma once

#include <httplib.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "server/server.h"

namespace grok::test {

using nlohmann::json;

// The engine the server runs, and a second one on the same weights for the
// expected outputs (so computing them never races the server's thread).
Engine builtin_engine();

struct Reply {
  int status = 0;
  json body;        // parsed when the body is JSON, else null
  std::string raw;  // the body as sent
  httplib::Headers headers;
  std::string header(const std::string& key) const {
    auto it = headers.find(key);
    return it == headers.end() ? "" : it->second;
  }
};

class ServerHarness {
 public:
  explicit ServerHarness(server::ServerOptions options = {});
  ~ServerHarness();

  server::Server& server() { return *server_; }
  int port() const { return port_; }
  std::unique_ptr<httplib::Client> client() const;

  Reply post(const std::string& path, const std::string& body, const httplib::Headers& headers = {}) const;
  Reply post(const std::string& path, const json& body) const { return post(path, body.dump()); }
  Reply get(const std::string& path) const;

  // Waits (bounded) until the scheduler holds `n` sequences; false on timeout.
  bool wait_in_flight(int64_t n) const;
  // Waits (bounded) until `n` sequences wait in the batch's queue, accepted
  // by the scheduler's thread (so a paused scheduler holds them); false on timeout.
  bool wait_queued(int64_t n) const;

 private:
  Engine engine_;
  std::unique_ptr<server::Server> server_;
  int port_ = 0;
};

// The data payloads of a server-sent-events body, in order.
std::vector<std::string> sse_payloads(const std::string& body);

// What Engine::generate gives alone (on a separate engine with the same weights).
GenerateResult reference(const std::vector<int32_t>& prompt, const GenerateOptions& options);
GenerateResult reference(const std::string& prompt, const GenerateOptions& options);
GenerateOptions gen_options(int64_t max_tokens, float temperature, uint64_t seed, float top_p = 0.95f);

}  // namespace grok::test
