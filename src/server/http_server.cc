#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "core/error.h"
#include "server/web_page.h"

namespace grok::server {
namespace {

// Labels for grok_requests_total: known endpoints only, so that arbitrary
// paths cannot grow the metrics without bound.
std::string endpoint_label(const std::string& path) {
  for (const char* known : {"/", "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions"})
    if (path == known) return known;
  return "other";
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(error_object(e)), "application/json");
}

ConnectionLimits limits_of(const HttpOptions& o) {
  ConnectionLimits l;
  l.request_timeout = o.request_timeout;
  l.max_request_bytes = uint64_t(o.max_body_bytes) + (64 << 10);  // room for headers and chunk framing
  return l;
}

// Whether the declared body length exceeds the limit. A malformed value is
// left to the library (which answers 400).
bool declares_too_much(const httplib::Request& req, size_t max_body_bytes) {
  const std::string v = req.get_header_value("Content-Length");
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return false;
  const size_t digits = v.size() - std::min(v.find_first_not_of('0'), v.size());
  return digits > 19 || std::stoull(v) > max_body_bytes;
}

ApiError too_large(size_t max_body_bytes) {
  return ApiError(413, cat("the request body is too large (this server accepts at most ", max_body_bytes, " bytes)"),
                  "", "invalid_request_error", "request_too_large");
}

}  // namespace

bool constant_time_equal(const std::string& presented, const std::string& expected) {
  // Time depends only on the expected key's length.
  unsigned diff = presented.size() == expected.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char p = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    diff |= unsigned(p ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

HttpServer::HttpServer(CompletionService& service, Scheduler& scheduler, Metrics& metrics, HttpOptions options)
    : service_(service), scheduler_(scheduler), metrics_(metrics), options_(std::move(options)),
      http_(std::make_unique<ConnectionServer>(limits_of(options_))) {
  created_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count();
  // Every request holds an answering thread while it waits for tokens, so
  // there is one for each sequence the scheduler admits, plus a few for
  // /health, /metrics and requests that get 429.
  const size_t threads = size_t(scheduler_.capacity()) + 8;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_body_bytes);
  // The library's default options set SO_REUSEPORT, which lets a second
  // server bind the same port and silently take half of the traffic.
  // SO_REUSEADDR alone still allows a restart while old connections sit in
  // TIME_WAIT, and makes a second bind fail with EADDRINUSE.
  http_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  routes();
}

HttpServer::~HttpServer() {
  begin_drain();
  finish(std::chrono::milliseconds(0));
}

void HttpServer::routes() {
  httplib::Server& s = *http_;

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // A body the library will not read (answered here, or sent with a GET)
    // would be taken for the next request: the connection ends after this
    // answer instead (draining the body, bounded).
    const bool has_body = req.has_header("Transfer-Encoding") ||
                          (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
    auto leave_body_unread = [&] {
      if (!has_body) return;
      res.set_header("Connection", "close");
      if (Connection* c = current_connection()) c->close_after_response();
    };
    if (req.method != "POST") leave_body_unread();
    // Refused from the header, before any of the body is read.
    if (declares_too_much(req, options_.max_body_bytes)) {
      send_error(res, too_large(options_.max_body_bytes));
      leave_body_unread();
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) == 0 && constant_time_equal(auth.substr(prefix.size()), options_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, ApiError(401,
                             auth.empty() ? "no API key given: send the header 'Authorization: Bearer KEY'"
                                          : "the API key is wrong",
                             "", "invalid_request_error", "invalid_api_key"));
    leave_body_unread();
    return httplib::Server::HandlerResponse::Handled;
  });

  // A client sending "Expect: 100-continue" learns of a body too large before sending it.
  s.set_expect_100_continue_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!declares_too_much(req, options_.max_body_bytes)) return 100;
    send_error(res, too_large(options_.max_body_bytes));
    res.set_header("Connection", "close");
    if (Connection* c = current_connection()) c->close_after_response();
    return 413;
  });

  // Fills in an error object for the statuses httplib answers itself (404,
  // 400 on a bad request line), and tells a request that ran out of time or
  // bytes (the library reports both as a failed read: 400) by its status.
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (const Connection* c = current_connection(); c && (c->timed_out() || c->too_large())) {
      res.set_header("Connection", "close");
      if (c->too_large()) {
        send_error(res, too_large(options_.max_body_bytes));
      } else {
        res.status = 408;
        res.set_content(dump(error_object(cat("the request did not arrive within ",
                                              options_.request_timeout.count() / 1000.0, " s"),
                                          "invalid_request_error", "", "request_timeout")),
                        "application/json");
      }
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string message = cat("HTTP status ", res.status);
    std::string type = "invalid_request_error";
    if (res.status == 404) message = cat("no such endpoint: ", req.method, " ", quote_name(req.path));
    if (res.status == 413) message = "the request body is too large";
    if (res.status >= 500) type = "server_error";
    res.set_content(dump(error_object(message, type, "", "")), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    int status = 500;
    try {
      std::rethrow_exception(ep);
    } catch (const std::bad_alloc&) {
      message = "out of memory";
      status = 503;
    } catch (const std::exception& e) {
      message = cat("internal error: ", e.what());
    } catch (...) {
    }
    res.status = status;
    res.set_content(dump(error_object(message, "server_error", "", "")), "application/json");
  });

  // Counted before the response goes out (the logger runs after), so a
  // client that reads /metrics next sees its own request.
  s.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    metrics_.count_request(endpoint_label(req.path), res.status);
  });

  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = web_page();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (draining_) {
      res.status = 503;
      res.set_content(R"({"status":"shutting down"})", "application/json");
    } else {
      res.set_content(R"({"status":"ok"})", "application/json");
    }
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.prometheus_text(), "text/plain; version=0.0.4; charset=utf-8");
  });

  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(dump(models_response(service_.options().model_id, created_)), "application/json");
  });

  auto completion = [this](bool chat) {
    return [this, chat](const httplib::Request& req, httplib::Response& res) {
      try {
        if (draining_) throw ApiError(503, "the server is shutting down", "", "server_error", "shutting_down");
        const json body = parse_json_body(req.body);
        CompletionRequest request = chat ? parse_chat_request(body) : parse_completion_request(body);
        // Counts the response as unwritten until the library drops the
        // provider (after writing it, or on failure); from before the request
        // is queued, so a shutdown cannot miss it.
        {
          std::lock_guard lock(responses_mu_);
          ++responses_;
        }
        auto written = std::shared_ptr<void>(nullptr, [this](void*) {
          {
            std::lock_guard lock(responses_mu_);
            --responses_;
          }
          responses_cv_.notify_all();
        });
        std::shared_ptr<RunningCompletion> run = service_.start(std::move(request));
        // The response is chunked even when it is one JSON object: the
        // provider can then watch the connection and cancel the request
        // when the client leaves.
        if (run->streaming()) res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            run->streaming() ? "text/event-stream" : "application/json",
            [run, written](size_t, httplib::DataSink& sink) {
              const Connection* connection = current_connection();
              auto client = [&] {
                if (!sink.is_writable()) return ClientState::gone;
                if (!connection) return ClientState::connected;
                switch (connection->peer()) {
                  case Peer::connected: return ClientState::connected;
                  case Peer::half_closed: return ClientState::half_closed;
                  case Peer::gone: break;
                }
                return ClientState::gone;
              };
              const bool ok = run->run([&](std::string_view bytes) { return sink.write(bytes.data(), bytes.size()); },
                                       client);
              if (ok) sink.done();
              return ok;
            });
      } catch (const ApiError& e) {
        if (e.status == 429) res.set_header("Retry-After", std::to_string(options_.retry_after_seconds));
        send_error(res, e);
      }
    };
  };
  s.Post("/v1/completions", completion(false));
  s.Post("/v1/chat/completions", completion(true));
}

int HttpServer::start() {
  // The library writes to sockets without MSG_NOSIGNAL: a client that hangs
  // up mid-stream must not kill the process with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  errno = 0;  // what bind() leaves in errno on failure tells the cause
  const int port = http_->bind(options_.host, options_.port);
  if (port < 0) {
    const int e = errno;
    const char* why = e == EADDRINUSE      ? "address in use (another server?)"
                      : e == EADDRNOTAVAIL ? "not an address of this machine"
                      : e == EACCES        ? "permission denied (a privileged port?)"
                                           : "address in use, not an address of this machine, or a privileged port";
    fail("cannot listen on ", options_.host, ":", options_.port, ": ", why);
  }
  listener_ = std::thread([this] {
    http_->listen_after_bind();
    listening_done_ = true;
  });
  // stop() is ignored until the listener runs; wait for it so a stop right after start is not lost.
  while (!http_->is_running() && !listening_done_) std::this_thread::yield();
  return port;
}

void HttpServer::begin_drain() { draining_ = true; }

void HttpServer::finish(std::chrono::milliseconds timeout) {
  draining_ = true;
  {
    std::unique_lock lock(responses_mu_);
    responses_cv_.wait_for(lock, timeout, [&] { return responses_ == 0; });
  }
  http_->stop_all();  // also wakes threads waiting on slow clients
  join();
}

void HttpServer::join() {
  if (listener_.joinable()) listener_.join();
}

}  // namespace grok::server
