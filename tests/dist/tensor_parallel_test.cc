// Tensor parallelism under a real mpirun on this machine: the split model
// against the whole one (tests/dist_check) for 1 to 4 ranks and every
// format, and the CLI's commands under mpirun.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_support.h"

namespace grok {
namespace {

bool have_mpirun() {
  static const bool ok = std::system("command -v mpirun >/dev/null 2>&1") == 0;
  return ok;
}
bool python_with_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  return ok;
}

// `mpirun -np N` on this machine, as root too; leak checking off for
// sanitizer builds (OpenMPI keeps its allocations until exit).
std::string mpirun(int ranks) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 "
         "mpirun --oversubscribe --bind-to none -x ASAN_OPTIONS -np " +
         std::to_string(ranks) + " ";
}

test::CliResult run(const std::string& cmd) {
  test::CliResult r;
  const std::string err = test::temp_dir() + "/mpirun-stderr.txt";
  FILE* p = popen((cmd + " 2>" + err).c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = test::slurp(err);
  return r;
}

void run_ok(const std::string& cmd) { ASSERT_EQ(std::system((cmd + " >/dev/null").c_str()), 0) << cmd; }

// The models: built here where possible so the suite needs no ../shared.
std::string model_path(const std::string& kind) {
  const std::string dir = test::temp_dir();
  if (kind == "oracle-gguf") return test::shared_file("oracle/tiny/grok-tiny-random-f32.gguf");
  if (kind == "oracle-hf") return test::shared_file("oracle/tiny/hf/config.json").empty() ? "" : test::shared_dir() + "/oracle/tiny/hf";
  if (kind == "q8_0" || kind == "q4_0") {
    const std::string path = dir + "/tiny-" + kind + ".gguf";
    if (test::slurp(path).empty())
      run_ok(std::string(GROK_BINARY) + " init --preset tiny --type " + kind + " --seed 3 " + path);
    return path;
  }
  if (kind == "ckpt-0") {
    if (!python_with_numpy()) return "";
    const std::string out = dir + "/tp-ckpt";
    if (test::slurp(out + "/grok-config.json").empty())
      run_ok("/usr/bin/python3 " + std::string(GROK_TOOLS_DIR) + "/make_grok_checkpoint.py --out " + out +
             " --vocab 1000 --dim 64 --layers 2 --heads 4 --kv-heads 2 --head-dim 16 --experts 8 --top-k 2 --ffn 128"
             " --attn-out-blocks 2 --down-blocks 4 --seed 5");
    return out + "/ckpt-0";
  }
  return "";
}

struct Case {
  std::string kind;
  int ranks;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.kind << " over " << c.ranks << " ranks"; }

class SplitModel : public ::testing::TestWithParam<Case> {};

TEST_P(SplitModel, ComputesWhatOneProcessDoes) {
  if (!have_mpirun()) GTEST_SKIP() << "needs mpirun (scripts/setup installs openmpi-bin)";
  const Case c = GetParam();
#ifdef GROK_SANITIZED
  // Under ASan a pass over the 131,072-row vocabulary of the oracle-sized
  // models takes minutes per case; the release build runs them all. Here:
  // every rank count on the small-vocabulary checkpoint, and one oracle case.
  if (c.kind != "ckpt-0" && !(c.kind == "oracle-gguf" && c.ranks == 3))
    GTEST_SKIP() << "sanitizer build: " << c.kind << " over " << c.ranks << " ranks runs in the release build";
#endif
  const std::string model = model_path(c.kind);
  if (model.empty()) GTEST_SKIP() << c.kind << ": needs ../shared/oracle or python3-numpy (not present)";
  std::string cmd = mpirun(c.ranks) + GROK_BINARY_DIR "/tests/dist_check " + model;
  if (c.kind == "oracle-gguf" || c.kind == "oracle-hf") cmd += " --oracle " + test::shared_dir() + "/oracle/tiny";
  const test::CliResult r = run(cmd);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("dist_check: ok"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const char* kind : {"oracle-gguf", "oracle-hf", "ckpt-0", "q8_0", "q4_0"})
    for (int n = 1; n <= 4; ++n) out.push_back({kind, n});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Formats, SplitModel, ::testing::ValuesIn(cases()), [](const auto& info) {
  std::string name = info.param.kind + "_np" + std::to_string(info.param.ranks);
  for (char& ch : name)
    if (ch == '-') ch = '_';
  return name;
});

TEST(MpirunCli, GreedyTextIsOneProcessText) {
  if (!have_mpirun()) GTEST_SKIP() << "needs mpirun";
  GROK_REQUIRE_SHARED(model, "oracle/tiny/grok-tiny-random-f32.gguf");
  const std::string args = " generate -m " + model + " -p 'The capital of France is' -n 40 --temperature 0 -t 1";
  const test::CliResult one = test::run_grok(args);
  ASSERT_EQ(one.code, 0) << one.err;
  for (int n : {2, 3}) {
    const test::CliResult split = run(mpirun(n) + GROK_BINARY + args);
    EXPECT_EQ(split.code, 0) << split.err;
    EXPECT_EQ(split.out, one.out) << n << " ranks";
  }
}

TEST(MpirunCli, BenchReportsCommunicationAndEveryRank) {
  if (!have_mpirun()) GTEST_SKIP() << "needs mpirun";
  const std::string model = model_path("q8_0");
  const test::CliResult r =
      run(mpirun(2) + GROK_BINARY + " bench -m " + model + " -p 8 -n 4 -r 1 --json -t 1");
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);  // rank 0 alone prints
  EXPECT_EQ(j["ranks"], 2);
  EXPECT_EQ(j["allreduces_per_token"].get<double>(), 2.0 * 2);  // 2 layers, 2 all-reduces each
  EXPECT_GT(j["comm_bytes_per_token"].get<double>(), 2 * 2 * 64 * 4);  // at least the payloads
  EXPECT_GT(j["comm_seconds_per_token"].get<double>(), 0);
  ASSERT_EQ(j["per_rank"].size(), 2u);
  for (const auto& rank : j["per_rank"]) {
    EXPECT_GT(rank["peak_rss_bytes"].get<double>(), 0);
    EXPECT_GT(rank["weight_bytes"].get<double>(), 0);
  }
}

TEST(MpirunCli, CommandsThatRunAsOneProcessAreRefusedOnce) {
  if (!have_mpirun()) GTEST_SKIP() << "needs mpirun";
  const test::CliResult r = run(mpirun(2) + GROK_BINARY + " tokenize -p hello");
  EXPECT_NE(r.code, 0);
  const std::string line = "grok: error: grok tokenize runs as one process";
  EXPECT_NE(r.err.find(line), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(line), r.err.rfind(line)) << "said by every rank:\n" << r.err;
}

TEST(MpirunCli, InspectPrintsEachRanksMemory) {
  if (!have_mpirun()) GTEST_SKIP() << "needs mpirun";
  const std::string model = model_path("q8_0");
  const test::CliResult r = run(mpirun(3) + GROK_BINARY + " inspect --brief " + model);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* rank : {"\n   0  ", "\n   1  ", "\n   2  "}) EXPECT_NE(r.out.find(rank), std::string::npos) << r.out;
}

}  // namespace
}  // namespace grok
