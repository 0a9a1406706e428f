// The temporary-file registry (io/temp_files.h): a file registered while a
// signal kills the process is removed, and the process still dies of the
// signal; a released one is left alone. And check_output_path's refusals.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "io/atomic_file.h"
#include "io/temp_files.h"
#include "test_support.h"

namespace grok {
namespace {

// As the test process started (before any registration installed the handler).
const bool kSigtermDefault = [] {
  struct sigaction sa {};
  return sigaction(SIGTERM, nullptr, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}();

// Forks a child that raises SIGTERM (it inherits the registry and the
// handlers); returns its wait status.
int child_raising_sigterm() {
  const pid_t pid = fork();
  if (pid == 0) {
    raise(SIGTERM);
    _exit(3);  // reached only if the signal did not kill it
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

void touch(const std::string& path) { std::ofstream(path) << "partial"; }

TEST(TempFiles, RegisteredFileIsRemovedBySigtermAndTheProcessDiesOfIt) {
  if (!kSigtermDefault)
    GTEST_SKIP() << "SIGTERM is not at its default action in this test process; the registry leaves it alone";
  const std::string path = test::temp_dir() + "/registered.tmp";
  touch(path);
  TempFileGuard guard(path);
  ASSERT_TRUE(guard.registered());
  const int before = registered_temp_files();
  EXPECT_GE(before, 1);
  const int status = child_raising_sigterm();
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_FALSE(std::filesystem::exists(path));
  guard.release();
  EXPECT_EQ(registered_temp_files(), before - 1);
}

TEST(TempFiles, ReleasedFileIsLeftAlone) {
  if (!kSigtermDefault)
    GTEST_SKIP() << "SIGTERM is not at its default action in this test process; the registry leaves it alone";
  const std::string kept = test::temp_dir() + "/released.tmp";
  const std::string moved_from = test::temp_dir() + "/moved.tmp";
  touch(kept);
  touch(moved_from);
  TempFileGuard a(kept);
  a.release();
  TempFileGuard b(moved_from);
  TempFileGuard c(std::move(b));  // the registration moves with the guard
  EXPECT_FALSE(b.registered());
  ASSERT_TRUE(c.registered());
  const int status = child_raising_sigterm();
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGTERM);
  EXPECT_TRUE(std::filesystem::exists(kept));
  EXPECT_FALSE(std::filesystem::exists(moved_from));
  std::filesystem::remove(kept);
}

TEST(TempFiles, WriteFileAtomicallyLeavesNothingRegistered) {
  const int before = registered_temp_files();
  const std::string path = test::temp_dir() + "/atomic.bin";
  write_file_atomically(path, "bytes");
  EXPECT_EQ(registered_temp_files(), before);
  std::ifstream in(path);
  std::string s;
  in >> s;
  EXPECT_EQ(s, "bytes");
}

TEST(OutputPath, DirectoryOrMissingParentIsRefused) {
  const std::string dir = test::temp_dir() + "/outdir";
  std::filesystem::create_directories(dir);
  test::expect_error([&] { check_output_path(dir); }, dir + ": is a directory");
  test::expect_error([&] { check_output_path(dir + "/no/such/x.gguf"); }, "does not exist");
  touch(dir + "/file");
  test::expect_error([&] { check_output_path(dir + "/file/x.gguf"); }, "is not a directory");
  check_output_path(dir + "/x.gguf");  // fine
  check_output_path("x.gguf");         // the current directory
  test::expect_error([&] { write_file_atomically(dir, "x"); }, "is a directory");
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp." + std::to_string(getpid())));  // refused before writing
}

}  // namespace
}  // namespace grok
