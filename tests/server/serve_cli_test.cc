// `grok serve` as a user runs it: it prints where it listens, answers, and
// exits 0 on SIGTERM; bad options get one line and exit code 1.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "test_support.h"

namespace grok::test {
namespace {

// The binary with `args`, its stderr on a pipe.
struct Child {
  pid_t pid = -1;
  int err = -1;
  std::string stderr_text;

  explicit Child(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid = fork();
    if (pid == 0) {
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      std::string bin = GROK_BINARY;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    err = fds[0];
  }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (err >= 0) close(err);
  }

  // Reads stderr until `re` matches (returns the match) or the stream ends / 60 s pass.
  std::smatch wait_for(const std::regex& re) {
    std::smatch m;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!std::regex_search(stderr_text, m, re) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{err, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buf[512];
      const ssize_t n = read(err, buf, sizeof buf);
      if (n <= 0) break;
      stderr_text.append(buf, size_t(n));
    }
    std::regex_search(stderr_text, m, re);
    return m;
  }

  int wait_exit() {
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
};

TEST(ServeCli, AnswersThenExitsZeroOnSigterm) {
  Child c({"serve", "--port", "0", "-t", "2", "--max-batch", "2"});
  ASSERT_GT(c.pid, 0);
  const std::smatch m = c.wait_for(std::regex("on http://127\\.0\\.0\\.1:([0-9]+)"));
  ASSERT_FALSE(m.empty()) << c.stderr_text;
  const int port = std::stoi(m[1].str());

  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(120, 0);
  auto r = cli.Post("/v1/completions", R"({"prompt": "Hello", "max_tokens": 5})", "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200) << r->body;
  const auto body = nlohmann::json::parse(r->body);
  EXPECT_EQ(body["model"], "grok-builtin-tiny");
  EXPECT_EQ(body["usage"]["completion_tokens"], 5);

  // The same text as grok generate with the same seed and sampling.
  const CliResult gen = run_grok("generate -p Hello -n 5 --seed 42 -t 2");
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_EQ(body["choices"][0]["text"].get<std::string>() + "\n", gen.out);

  ASSERT_EQ(kill(c.pid, SIGTERM), 0);
  EXPECT_EQ(c.wait_exit(), 0);
  c.wait_for(std::regex("grok: stopped"));
  EXPECT_NE(c.stderr_text.find("grok: stopped"), std::string::npos) << c.stderr_text;
}

// A second server on the same port must not start and share the traffic.
TEST(ServeCli, SecondServerOnAPortInUseExitsOne) {
  Child first({"serve", "--port", "0", "-t", "1", "--max-batch", "1"});
  ASSERT_GT(first.pid, 0);
  const std::smatch m = first.wait_for(std::regex("on http://127\\.0\\.0\\.1:([0-9]+)"));
  ASSERT_FALSE(m.empty()) << first.stderr_text;
  const std::string port = m[1].str();

  Child second({"serve", "--port", port, "-t", "1", "--max-batch", "1"});
  ASSERT_GT(second.pid, 0);
  // Either it refuses, or (the bug) it serves; the destructor kills it then.
  const std::smatch m2 = second.wait_for(std::regex("address in use|on http://"));
  ASSERT_FALSE(m2.empty()) << second.stderr_text;
  EXPECT_EQ(m2.str(), "address in use") << second.stderr_text;
  EXPECT_EQ(second.wait_exit(), 1);
  EXPECT_NE(second.stderr_text.find("grok: error: cannot listen on 127.0.0.1:" + port + ": address in use"),
            std::string::npos)
      << second.stderr_text;
}

TEST(ServeCli, BadOptionsAreOneLineErrors) {
  CliResult r = run_grok("serve --chat-template /nonexistent/template.json --port 0");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot open the chat template"), std::string::npos) << r.err;
  r = run_grok("serve --max-batch 0");
  EXPECT_NE(r.code, 0);
  r = run_grok("serve --host 203.0.113.7 --port 0");  // not an address of this machine
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot listen"), std::string::npos) << r.err;
  r = run_grok("serve --port 0 --kv-block-tokens 100000");  // beyond the built-in model's context
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("KV block size 100000"), std::string::npos) << r.err;
  r = run_grok("serve --port 0 --kv-budget-tokens 3");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("less than one block"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace grok::test
