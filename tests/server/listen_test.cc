// The listening socket's options: a second server on a port in use is
// refused (no SO_REUSEPORT, which would let two servers share the port), and
// a restart on the port of a server just stopped still works (SO_REUSEADDR,
// with the old connections in TIME_WAIT).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "server/server_support.h"
#include "test_support.h"

namespace grok::test {
namespace {

TEST(ServerListen, SecondServerOnAPortInUseIsRefused) {
  ServerHarness first;
  Engine engine = builtin_engine();
  server::ServerOptions o;
  o.http.host = "127.0.0.1";
  o.http.port = first.port();
  server::Server second(engine, o);
  expect_error([&] { second.start(); }, "address in use");
  EXPECT_EQ(first.get("/health").status, 200);  // the first one keeps its port
}

// Sends a request asking the server to close, and reads to the end: the
// server closes first, so its side of the connection stays in TIME_WAIT.
bool request_closed_by_server(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool closed = false;
  const std::string req = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size())) {
    pollfd p{fd, POLLIN, 0};
    // Bounded: a broken server fails the test rather than hanging it.
    while (poll(&p, 1, 30000) > 0) {
      char buf[4096];
      if (recv(fd, buf, sizeof buf, 0) <= 0) {
        closed = true;
        break;
      }
    }
  }
  close(fd);
  return closed;
}

TEST(ServerListen, RestartOnTheSamePortWhileConnectionsAreInTimeWait) {
  Engine engine = builtin_engine();
  server::ServerOptions o;
  o.http.host = "127.0.0.1";
  o.http.port = 0;
  int port = 0;
  {
    server::Server first(engine, o);
    port = first.start();
    ASSERT_TRUE(request_closed_by_server(port));
    first.shutdown(std::chrono::milliseconds(0));
  }
  o.http.port = port;
  server::Server again(engine, o);
  EXPECT_EQ(again.start(), port);
  again.shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace grok::test
