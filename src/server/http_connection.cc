#include "server/http_connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace grok::server {
namespace {

using Clock = std::chrono::steady_clock;

thread_local Connection* t_current = nullptr;

int ms(std::chrono::nanoseconds d) {
  return int(std::clamp<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(d).count(), 0, 1 << 30));
}

void address_of(int sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int r = peer ? getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len)
                     : getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  if (r != 0) return;
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(serv);
  }
}

// One accepted connection: the Stream the library reads requests from and
// writes responses to, with the deadlines, the byte limit and the stop
// signal applied beneath it.
class ClientStream final : public httplib::Stream, public Connection {
 public:
  ClientStream(int sock, int wake_fd, const std::atomic<bool>& stopping, const ConnectionLimits& limits)
      : sock_(sock), wake_fd_(wake_fd), stopping_(stopping), limits_(limits) {}

  // Waits (up to `idle`) for the first byte of the next request; false when
  // none comes, or the server is stopping.
  bool wait_for_request(std::chrono::milliseconds idle) {
    if (off_ < len_) return true;
    return wait(POLLIN, idle) > 0;
  }
  void begin_request() {
    deadline_ = Clock::now() + limits_.request_timeout;
    received_ = len_ - off_;  // bytes of this request already buffered
    timed_out_ = too_large_ = read_failed_ = false;
  }
  // Whether the connection must not carry another request.
  bool must_close() const { return read_failed_ || close_after_; }
  bool should_linger() const { return close_after_ || timed_out_ || too_large_; }

  // Stops sending, then reads and drops what the client still sends, for a
  // bounded time: closing with unread data would reset the connection,
  // which may discard the answer before the client reads it.
  void linger() {
    ::shutdown(sock_, SHUT_WR);
    const auto until = Clock::now() + limits_.linger;
    char buf[16384];
    for (auto now = Clock::now(); now < until; now = Clock::now()) {
      if (wait(POLLIN, std::chrono::duration_cast<std::chrono::milliseconds>(until - now)) <= 0) return;
      const ssize_t n = ::recv(sock_, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return;
    }
  }

  // httplib::Stream
  bool is_readable() const override { return off_ < len_ || wait(POLLIN, limits_.io_timeout) > 0; }
  // The provider of a streamed response asks this between events: false
  // only when the client is certainly gone.
  bool is_writable() const override { return peer() != Peer::gone; }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ == len_) {
      if (read_failed_) return -1;
      const auto now = Clock::now();
      if (now >= deadline_) return fail_read(timed_out_);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
      const int r = wait(POLLIN, std::min(limits_.io_timeout, left + std::chrono::milliseconds(1)));
      if (r < 0) return fail_read(read_failed_);  // stopping
      if (r == 0) return fail_read(timed_out_);
      ssize_t n;
      do n = ::recv(sock_, buf_, sizeof buf_, 0);
      while (n < 0 && errno == EINTR);
      if (n <= 0) {
        read_failed_ = true;
        return n < 0 ? -1 : 0;
      }
      received_ += uint64_t(n);
      if (received_ > limits_.max_request_bytes) return fail_read(too_large_);
      off_ = 0;
      len_ = size_t(n);
    }
    const size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    return ssize_t(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    const auto until = Clock::now() + limits_.io_timeout;
    for (;;) {
      const ssize_t n = ::send(sock_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      const auto now = Clock::now();
      if (now >= until) return -1;
      const int r = wait(POLLOUT, std::chrono::duration_cast<std::chrono::milliseconds>(until - now));
      if (r <= 0 || (r & (POLLERR | POLLHUP))) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address_of(sock_, false, ip, port); }
  socket_t socket() const override { return sock_; }

  // Connection
  Peer peer() const override {
    if (stopping_) return Peer::gone;
    pollfd p{sock_, short(POLLIN | POLLRDHUP), 0};
    if (::poll(&p, 1, 0) < 0) return Peer::connected;  // EINTR: no news
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return Peer::gone;
    if (p.revents & POLLRDHUP) return Peer::half_closed;
    return Peer::connected;
  }
  void close_after_response() override { close_after_ = true; }
  bool timed_out() const override { return timed_out_; }
  bool too_large() const override { return too_large_; }

 private:
  ssize_t fail_read(bool& why) {
    why = true;
    read_failed_ = true;
    return -1;
  }
  // Polls the socket for `events` and the stop signal: the socket's revents,
  // 0 on timeout, -1 once the server is stopping.
  int wait(short events, std::chrono::milliseconds timeout) const {
    const auto until = Clock::now() + timeout;
    for (;;) {
      if (stopping_) return -1;
      pollfd p[2] = {{sock_, events, 0}, {wake_fd_, POLLIN, 0}};
      const int r = ::poll(p, 2, ms(until - Clock::now()));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return -1;
      if (p[1].revents) return -1;
      return r == 0 ? 0 : p[0].revents;
    }
  }

  int sock_;
  int wake_fd_;
  const std::atomic<bool>& stopping_;
  const ConnectionLimits& limits_;
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
  Clock::time_point deadline_ = Clock::time_point::max();
  uint64_t received_ = 0;
  bool timed_out_ = false, too_large_ = false, read_failed_ = false, close_after_ = false;
};

struct CurrentConnection {
  explicit CurrentConnection(Connection* c) { t_current = c; }
  ~CurrentConnection() { t_current = nullptr; }
};

}  // namespace

Connection* current_connection() { return t_current; }

ConnectionServer::ConnectionServer(ConnectionLimits limits)
    : limits_(limits), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

ConnectionServer::~ConnectionServer() {
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

int ConnectionServer::bind(const std::string& host, int port) {
  if (wake_fd_ < 0) return -1;
  const int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
  // The library listened with a backlog of 5; listening again on the same
  // socket sets the new backlog (Linux).
  if (bound >= 0) ::listen(svr_sock_, limits_.backlog);
  return bound;
}

void ConnectionServer::stop_all() {
  stopping_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  stop();
}

bool ConnectionServer::process_and_close_socket(socket_t sock) {
  bool ret = false;
  {
    ClientStream strm(sock, wake_fd_, stopping_, limits_);
    CurrentConnection current(&strm);
    for (size_t left = keep_alive_max_count_; left > 0 && !stopping_; --left) {
      if (!strm.wait_for_request(std::chrono::seconds(keep_alive_timeout_sec_))) break;
      strm.begin_request();
      bool closed = false;
      ret = process_request(strm, left == 1, closed, nullptr);
      if (!ret || closed || strm.must_close()) break;
    }
    if (strm.should_linger() && !stopping_) strm.linger();
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

}  // namespace grok::server
