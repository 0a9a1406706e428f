// The connection layer with raw sockets: a half-closed client still gets its
// answer, a body trickled past the request deadline is cut off with 408, a
// declared length beyond the limit is 413 before any body, a shutdown does
// not wait for a slow client, and the listen backlog is large.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <sstream>
#include <string>

#include "server/server_support.h"

namespace grok::test {
namespace {

// A client socket; every wait is bounded so a broken server fails the test rather than hanging it.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  bool send(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); }
  void half_close() { shutdown(fd_, SHUT_WR); }
  // Whether the server has closed the connection (reads everything it sent into `received`).
  bool closed_by_server(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    while (poll(&p, 1, timeout_ms) > 0) {
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;
      received.append(buf, size_t(n));
    }
    return false;
  }
  int status() const {
    return received.rfind("HTTP/1.1 ", 0) == 0 ? std::atoi(received.c_str() + 9) : 0;
  }
  std::string received;

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string post_head(size_t length) {
  return "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(length) + "\r\n\r\n";
}

TEST(ServerConnection, HalfClosedAfterACompleteRequestIsStillAnswered) {
  ServerHarness h;
  {
    RawClient c(h.port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    c.half_close();
    ASSERT_TRUE(c.closed_by_server(60000));
    EXPECT_EQ(c.status(), 200) << c.received;
  }
  // A completion too, streamed and not: generation runs although the client sent FIN.
  for (const bool stream : {false, true}) {
    const std::string body = json{{"prompt", "Half"}, {"max_tokens", 6}, {"seed", 3}, {"stream", stream}}.dump();
    RawClient c(h.port());
    ASSERT_TRUE(c.send(post_head(body.size()) + body));
    c.half_close();
    ASSERT_TRUE(c.closed_by_server(60000));
    EXPECT_EQ(c.status(), 200) << c.received;
    const std::string want = reference("Half", gen_options(6, 0.8f, 3)).text;
    if (!stream) {
      EXPECT_NE(c.received.find(json(want).dump()), std::string::npos) << c.received;
    } else {
      EXPECT_NE(c.received.find("data: [DONE]"), std::string::npos) << c.received;
    }
  }
  EXPECT_EQ(h.server().metrics().cancelled(), 0);
}

TEST(ServerConnection, ATrickledBodyIsCutOffAtTheRequestDeadline) {
  server::ServerOptions o;
  o.http.request_timeout = std::chrono::milliseconds(500);
  ServerHarness h(o);
  RawClient c(h.port());
  ASSERT_TRUE(c.send(post_head(100000) + "{\"prompt\": \""));
  // A byte at a time, each well within the per-read timeout: only the whole-request deadline ends it.
  int sent = 0;
  while (sent < 100000 && c.send("a")) {
    ++sent;
    if (c.closed_by_server(100)) break;
  }
  EXPECT_LT(sent, 100000);
  c.closed_by_server(60000);
  EXPECT_EQ(c.status(), 408) << c.received;
  EXPECT_NE(c.received.find("request_timeout"), std::string::npos) << c.received;
  EXPECT_EQ(h.get("/health").status, 200);
}

TEST(ServerConnection, ADeclaredLengthBeyondTheLimitIs413BeforeAnyBody) {
  ServerHarness h;
  for (const std::string length : {"10000000000", "99999999999999999999999999", "2000000"}) {
    RawClient c(h.port());
    ASSERT_TRUE(c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + "\r\n\r\n{"));
    // No more is sent: the answer must come from the header alone, and the connection end.
    ASSERT_TRUE(c.closed_by_server(60000)) << length;
    EXPECT_EQ(c.status(), 413) << c.received;
    EXPECT_NE(c.received.find("request_too_large"), std::string::npos) << c.received;
  }
  EXPECT_EQ(h.get("/health").status, 200);
}

TEST(ServerConnection, ABodyLeftUnreadEndsTheConnection) {
  server::ServerOptions o;
  o.http.api_key = "key";
  ServerHarness h(o);
  // Refused for its key before the body is read: the body must not be parsed as a next request.
  const std::string body = json{{"prompt", "x"}}.dump();
  RawClient c(h.port());
  ASSERT_TRUE(c.send(post_head(body.size()) + body));
  ASSERT_TRUE(c.closed_by_server(60000));
  EXPECT_EQ(c.status(), 401) << c.received;
  EXPECT_EQ(c.received.find("HTTP/1.1", 1), std::string::npos) << "a second response: " << c.received;
}

TEST(ServerConnection, ShutdownDoesNotWaitForASlowClient) {
  server::ServerOptions o;
  o.http.request_timeout = std::chrono::hours(1);  // only the shutdown can end the trickle
  ServerHarness h(o);
  RawClient c(h.port());
  ASSERT_TRUE(c.send(post_head(100000) + "{\"prompt\": \""));
  ASSERT_FALSE(c.closed_by_server(200));
  auto stopped = std::async(std::launch::async, [&] { h.server().shutdown(std::chrono::milliseconds(0)); });
  // The client keeps trickling; the server must close it and finish regardless.
  bool closed = false;
  for (int i = 0; i < 600 && !closed; ++i) closed = !c.send("a") || c.closed_by_server(100);
  EXPECT_TRUE(closed);
  stopped.get();
}

TEST(ServerConnection, ListensWithALargeBacklog) {
  ServerHarness h;
  // ss shows a listening socket's backlog in its Send-Q column.
  const std::string cmd = "ss -Hltn 'sport = :" + std::to_string(h.port()) + "' 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  std::istringstream in(out);
  std::string state;
  long recv_q = -1, backlog = -1;
  if (!(in >> state >> recv_q >> backlog)) GTEST_SKIP() << "no ss (iproute2) to read the backlog with";
  EXPECT_EQ(state, "LISTEN");
  // The library's own is 5; the kernel caps ours at net.core.somaxconn (4096 by default, at least 128).
  EXPECT_GE(backlog, 128) << out;
}

}  // namespace
}  // namespace grok::test
