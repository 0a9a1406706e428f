// The connection layer under cpp-httplib: the listening socket's backlog and
// each accepted connection's loop, replacing the library's own (Debian's
// 0.11.4 listens with a backlog of 5, times out only each read, never the
// whole request, cannot wake a thread blocked on a slow client when it stops,
// and takes a half-closed client for a vanished one). The library still
// parses requests and writes responses (Server::process_request); this layer
// owns the socket reads and writes beneath them.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace grok::server {

struct ConnectionLimits {
  // The whole request (request line, headers and body) must arrive within
  // this, counted from its first byte; then it is answered 408.
  std::chrono::milliseconds request_timeout{30000};
  // Each read and each write gives up after this long without progress.
  std::chrono::milliseconds io_timeout{5000};
  // Bytes one request may send in all: the body limit plus room for headers
  // and chunked framing. More is refused (413) without being stored.
  uint64_t max_request_bytes = (uint64_t(1) << 20) + (64 << 10);
  int backlog = 4096;  // the kernel caps it at net.core.somaxconn
  // After refusing a body unread: how long to drain what the client still
  // sends, so that closing does not reset the connection under its answer.
  std::chrono::milliseconds linger{2000};
};

// What the peer of a connection is doing, as far as the socket tells.
enum class Peer {
  connected,
  half_closed,  // sent FIN: half-closed after its request, or gone (a write tells which)
  gone,         // reset, or the server is stopping
};

// The connection the calling thread is answering; handlers (which the
// library runs on that thread) use it to look at the client and to ask for
// the connection to be closed after the response.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Peer peer() const = 0;
  // Closes the connection after this response, draining (bounded) what the
  // client still sends: for a body refused unread.
  virtual void close_after_response() = 0;
  // Whether the current request failed to arrive within the deadline, or
  // sent more than max_request_bytes.
  virtual bool timed_out() const = 0;
  virtual bool too_large() const = 0;
};
// Null outside a request.
Connection* current_connection();

class ConnectionServer : public httplib::Server {
 public:
  explicit ConnectionServer(ConnectionLimits limits);
  ~ConnectionServer() override;

  // Binds (port 0: any free port) and listens with the configured backlog;
  // returns the port, or -1.
  int bind(const std::string& host, int port);
  // Wakes every thread blocked on a client (its read or write fails at
  // once), then closes the listening socket. listen_after_bind() returns
  // once every connection's thread has ended.
  void stop_all();

 private:
  bool process_and_close_socket(socket_t sock) override;

  ConnectionLimits limits_;
  int wake_fd_ = -1;  // an eventfd, readable once stopping
  std::atomic<bool> stopping_{false};
};

}  // namespace grok::server
