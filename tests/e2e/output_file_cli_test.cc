// What the model-writing commands leave on disk when stopped or misdirected:
// SIGTERM, SIGINT or SIGHUP while `grok init` writes removes OUT.gguf.tmp
// (and the process still dies of the signal); an output path that is a
// directory, or in a directory that does not exist, is refused before
// anything is computed. And where `grok init` finds Grok-1's vocabulary.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "test_support.h"

namespace grok {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& s, const std::string& needle) { return s.find(needle) != std::string::npos; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// `grok args...` as a child with the signals at their default action (as
// from a terminal; a test runner may start us with SIGINT ignored), stderr
// to a file. Killed and reaped on destruction if still running.
struct Child {
  pid_t pid = -1;
  std::string err_path;

  Child(const std::vector<std::string>& args, std::string err) : err_path(std::move(err)) {
    pid = fork();
    if (pid == 0) {
      for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
      const int fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) dup2(fd, 2);
      std::vector<std::string> copy = args;
      std::vector<char*> argv;
      std::string bin = GROK_BINARY;
      argv.push_back(bin.data());
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // The wait status once it has ended.
  int wait() {
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
  // Whether it has ended (reaping it; `status` gets the wait status).
  bool ended(int& status) {
    if (waitpid(pid, &status, WNOHANG) != pid) return false;
    pid = -1;
    return true;
  }
};

// Waits until `path` exists, woken by inotify on its directory; false if the
// child ends first or 120 s pass (a bound for a broken build, not a timing).
bool wait_for_file(const std::string& path, Child& child, int& status) {
  const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  inotify_add_watch(fd, fs::path(path).parent_path().c_str(), IN_CREATE | IN_MOVED_TO);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool found = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (fs::exists(path)) {  // checked after the watch is in place: no creation is missed
      found = true;
      break;
    }
    if (child.ended(status)) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) {
      char buf[4096];
      while (read(fd, buf, sizeof buf) > 0) {
      }
    }
  }
  close(fd);
  return found;
}

void expect_signal_removes_tmp(int sig) {
  const std::string dir = test::temp_dir() + "/signal-" + std::to_string(sig);
  fs::create_directories(dir);
  const std::string out = dir + "/big.gguf", tmp = out + ".tmp", err = dir + "/stderr.txt";
  // Grok-1's shape with one layer: some GB, so it is still writing when the signal comes.
  Child c({"init", "--preset", "grok-1", "--layers", "1", "--type", "q4_0", "-t", "2", out}, err);
  ASSERT_GT(c.pid, 0);
  int status = 0;
  if (!wait_for_file(tmp, c, status) && contains(read_file(err), "free"))
    GTEST_SKIP() << "not enough free disk for grok init to start (it checks first):\n" << read_file(err);
  ASSERT_TRUE(fs::exists(tmp)) << "no " << tmp << " appeared\n" << read_file(err);
  ASSERT_EQ(kill(c.pid, sig), 0);
  status = c.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == sig)
      << "expected death by signal " << sig << "; status " << status << "\n" << read_file(err);
  EXPECT_FALSE(fs::exists(tmp)) << read_file(err);
  EXPECT_FALSE(fs::exists(out));
  fs::remove(tmp);  // in case the test failed: do not leave GB behind
}

TEST(CliOutputFile, SigtermWhileWritingRemovesTheTemporaryFile) { expect_signal_removes_tmp(SIGTERM); }
TEST(CliOutputFile, SigintWhileWritingRemovesTheTemporaryFile) { expect_signal_removes_tmp(SIGINT); }
TEST(CliOutputFile, SighupWhileWritingRemovesTheTemporaryFile) { expect_signal_removes_tmp(SIGHUP); }

TEST(CliOutputFile, DirectoryOrMissingDirectoryIsRefusedBeforeAnyWork) {
  const std::string dir = test::temp_dir() + "/out-is-a-dir";
  fs::create_directories(dir);
  for (const auto& [args, needle] : std::initializer_list<std::pair<std::string, std::string>>{
           {"init --preset tiny --layers 1 " + dir, dir + ": is a directory"},
           {"init --preset tiny --layers 1 " + dir + "/", "is a directory"},
           // The input does not exist either: the output is refused first, before loading.
           {"quantize /nonexistent.gguf " + dir + " --type q8_0", dir + ": is a directory"},
           {"convert /nonexistent-ckpt " + dir, dir + ": is a directory"},
           {"convert /nonexistent-ckpt " + dir + "/no/such/x.gguf",
            "the directory '" + dir + "/no/such' does not exist"},
       }) {
    const test::CliResult r = test::run_grok(args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.err;
    EXPECT_TRUE(contains(r.err, "grok: error: ") && contains(r.err, needle)) << args << "\n" << r.err;
    EXPECT_FALSE(contains(r.err, "nonexistent")) << args << "\n" << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(fs::is_empty(dir));
    EXPECT_FALSE(fs::exists(dir + ".tmp"));
  }
}

// Runs `bin args` from `cwd` with GROK_SHARED set to `shared` (unset when
// empty); returns the exit code, stderr in `err`.
int run_in(const std::string& cwd, const std::string& bin, const std::string& shared, const std::string& args,
           std::string& err) {
  const std::string err_path = test::temp_dir() + "/run_in-stderr.txt";
  const std::string env = shared.empty() ? "env -u GROK_SHARED" : "env GROK_SHARED='" + shared + "'";
  const std::string cmd = "cd '" + cwd + "' && " + env + " '" + bin + "' " + args + " 2>'" + err_path + "' >/dev/null";
  const int status = std::system(cmd.c_str());
  err = read_file(err_path);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CliInitVocabulary, FoundBesideTheRepositoryFromAnyDirectory) {
  const fs::path exe = fs::canonical(GROK_BINARY);
  const fs::path tokenizer = (exe.parent_path() / "../../shared/grok-1/tokenizer.model").lexically_normal();
  if (!fs::exists(tokenizer))
    GTEST_SKIP() << "needs " << tokenizer.string() << " (../shared beside the repository, seen from the built grok)";
  // A current directory with no ../shared.
  const std::string cwd = test::temp_dir() + "/elsewhere/cwd";
  fs::create_directories(cwd);
  ASSERT_FALSE(fs::exists(cwd + "/../shared"));
  const std::string out = test::temp_dir() + "/elsewhere/vocab.gguf";
  std::string err;
  ASSERT_EQ(run_in(cwd, exe.string(), "", "init --preset tiny --layers 1 --type q8_0 " + out, err), 0) << err;
  EXPECT_TRUE(contains(err, "vocabulary: " + tokenizer.string())) << err;
  EXPECT_FALSE(contains(err, "warning")) << err;
  const GgufFile g = GgufFile::open(out);
  EXPECT_NE(g.find("tokenizer.ggml.tokens"), nullptr);
  fs::remove(out);
}

TEST(CliInitVocabulary, WarnsWhenNoneIsFound) {
  // A copy of the binary where no shared/ is near it, run from a directory
  // with no ../shared and with GROK_SHARED empty: nowhere to find one.
  const std::string base = test::temp_dir() + "/lonely";
  const std::string bin_dir = base + "/a/b/bin", cwd = base + "/a/b/cwd", shared = base + "/empty-shared";
  for (const std::string& d : {bin_dir, cwd, shared}) fs::create_directories(d);
  const std::string bin = bin_dir + "/grok";
  fs::copy_file(GROK_BINARY, bin, fs::copy_options::overwrite_existing);
  const std::string out = base + "/novocab.gguf";
  std::string err;
  ASSERT_EQ(run_in(cwd, bin, shared, "init --preset tiny --layers 1 --type q8_0 " + out, err), 0) << err;
  EXPECT_TRUE(contains(err, "grok: warning: no Grok-1 tokenizer.model found")) << err;
  EXPECT_TRUE(contains(err, shared + "/grok-1/tokenizer.model")) << err;  // names where it looked
  EXPECT_TRUE(contains(err, "--tokenizer FILE")) << err;
  const GgufFile g = GgufFile::open(out);
  EXPECT_EQ(g.find("tokenizer.ggml.tokens"), nullptr);
  fs::remove_all(base);
}

}  // namespace
}  // namespace grok
