// grok train as a user runs it: a run that writes a model every command
// runs, a run stopped by a signal leaves the last checkpoint whole (no
// partial file) and resumes, and clear refusals.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "test_support.h"

namespace grok {
namespace {

std::string write_text(const std::string& dir) {
  const char* words[] = {"the", "lord", "said", "unto", "moses", "and", "it", "came", "to", "pass", "in", "those",
                         "days", "that", "he", "went", "up", "into", "a", "mountain", "pray"};
  std::mt19937 rng(3);
  std::string text;
  for (int line = 0; line < 1500; ++line) {
    for (int w = 0; w < 9; ++w) text += std::string(w ? " " : "") + words[rng() % std::size(words)];
    text += ".\n";
  }
  const std::string path = dir + "/text.txt";
  std::ofstream(path) << text;
  return path;
}

const char* kSmall = "--preset tiny --layers 1 --vocab-size 400 --batch 2 --seq 32 --eval-windows 2 -t 1";

TEST(TrainCli, WritesAModelThatGenerates) {
  const std::string dir = test::temp_dir();
  const std::string text = write_text(dir);
  const auto r = test::run_grok(std::string("train ") + kSmall + " --data " + text + " --steps 4 --eval-every 2 --out " +
                                dir + "/m.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("held-out loss"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dead experts"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 4/4"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir + "/m.gguf.adamw"));
  const auto g = test::run_grok("generate -m " + dir + "/m.gguf -p 'the lord' -n 5 --temperature 0");
  EXPECT_EQ(g.code, 0) << g.err;
  EXPECT_FALSE(g.out.empty());
}

TEST(TrainCli, StoppedRunLeavesAWholeCheckpointAndResumes) {
  const std::string dir = test::temp_dir();
  const std::string text = write_text(dir);
  const std::string out = dir + "/m.gguf";
  // Saves after every step; SIGTERM right after the first save is reported,
  // likely in the middle of the next step or the next save.
  const std::string cmd = std::string(GROK_BINARY) + " train " + kSmall + " --data " + text +
                          " --steps 1000 --eval-every 1 --out " + out;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) {
    err.append(buf, size_t(n));
    if (err.find("saved ") != std::string::npos) break;
  }
  kill(pid, SIGTERM);
  while (read(fds[0], buf, sizeof buf) > 0) {
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_NE(err.find("saved "), std::string::npos) << err;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  for (const auto& e : std::filesystem::directory_iterator(dir))
    EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
  const auto inspect = test::run_grok("inspect --brief " + out);
  EXPECT_EQ(inspect.code, 0) << inspect.err;
  const auto resumed = test::run_grok("train --resume " + out + " --steps 3 --eval-every 0");
  // Resumes from its step (≥ 1) to 3, unless the checkpoint is already there.
  if (resumed.err.find("give a larger --steps") == std::string::npos) {
    EXPECT_EQ(resumed.code, 0) << resumed.err;
    EXPECT_NE(resumed.err.find("resumed " + out), std::string::npos) << resumed.err;
  }
}

TEST(TrainCli, ClearRefusals) {
  const std::string dir = test::temp_dir();
  const std::string text = write_text(dir);
  test::expect_clear_error(test::run_grok("train --vocab-size 400 --out " + dir + "/m.gguf"), {"--data"});
  test::expect_clear_error(test::run_grok("train --vocab-size 400 --data " + text), {"--out"});
  test::expect_clear_error(test::run_grok("train --data " + text + " --out " + dir + "/m.gguf"),
                           {"--tokenizer", "--vocab-size"});
  test::expect_clear_error(test::run_grok("train --vocab-size 400 --data " + dir + "/nope.txt --out " + dir + "/m.gguf"),
                           {"nope.txt"});
  test::expect_clear_error(test::run_grok("train --resume " + dir + "/none.gguf --data " + text),
                           {"--data", "resuming"});
  test::expect_clear_error(
      test::run_grok(std::string("train ") + kSmall + " --data " + text + " --seq 5000 --out " + dir + "/m.gguf"),
      {"--seq"});
}

}  // namespace
}  // namespace grok
