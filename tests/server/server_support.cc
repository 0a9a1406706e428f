#include "server/server_support.h"

#include <mutex>

#include "model/model.h"

namespace grok::test {

Engine builtin_engine() { return Engine(make_ready(builtin_model(Tokenizer::builtin().vocab_size(), 77)), 2); }

ServerHarness::ServerHarness(server::ServerOptions options) : engine_(builtin_engine()) {
  options.http.host = "127.0.0.1";
  options.http.port = 0;
  server_ = std::make_unique<server::Server>(engine_, std::move(options));
  port_ = server_->start();
}

ServerHarness::~ServerHarness() { server_->shutdown(std::chrono::milliseconds(0)); }

std::unique_ptr<httplib::Client> ServerHarness::client() const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
  c->set_read_timeout(120, 0);  // a bound for a broken server, not a synchronisation
  return c;
}

namespace {
Reply to_reply(const httplib::Result& r) {
  Reply out;
  if (!r) {
    out.status = -1;
    out.raw = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.raw = r->body;
  out.headers = r->headers;
  out.body = json::parse(r->body, nullptr, false);
  if (out.body.is_discarded()) out.body = nullptr;
  return out;
}
}  // namespace

Reply ServerHarness::post(const std::string& path, const std::string& body, const httplib::Headers& headers) const {
  return to_reply(client()->Post(path.c_str(), headers, body, "application/json"));
}

Reply ServerHarness::get(const std::string& path) const { return to_reply(client()->Get(path.c_str())); }

bool ServerHarness::wait_in_flight(int64_t n) const {
  // Polls a counter with a generous bound; the test fails, not hangs, if it never gets there.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (server_->scheduler().in_flight() == n) return true;
    std::this_thread::yield();
  }
  return false;
}

bool ServerHarness::wait_queued(int64_t n) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (server_->metrics().queue_depth() == n) return true;
    std::this_thread::yield();
  }
  return false;
}

std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < body.size()) {
    const size_t end = body.find("\n\n", at);
    const std::string event = body.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (event.rfind("data: ", 0) == 0) out.push_back(event.substr(6));
    if (end == std::string::npos) break;
    at = end + 2;
  }
  return out;
}

GenerateResult reference(const std::vector<int32_t>& prompt, const GenerateOptions& options) {
  static Engine engine = builtin_engine();
  static std::mutex mu;
  std::lock_guard lock(mu);
  return engine.generate(prompt, options, nullptr);
}

GenerateResult reference(const std::string& prompt, const GenerateOptions& options) {
  static const Tokenizer tok = Tokenizer::builtin();
  return reference(tok.encode(prompt), options);
}

GenerateOptions gen_options(int64_t max_tokens, float temperature, uint64_t seed, float top_p) {
  GenerateOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = temperature;
  o.sampling.seed = seed;
  o.sampling.top_p = top_p;
  return o;
}

}  // namespace grok::test
