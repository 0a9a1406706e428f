// Where tests find their inputs, and checks they share.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>

namespace grok::test {

// ../shared beside the repository (GROK_SHARED overrides); "" when absent.
std::string shared_dir();
// Path of a file under shared/, or "" (the caller GTEST_SKIPs with a message).
std::string shared_file(const std::string& rel);
// A fresh empty directory for this test process.
std::string temp_dir();

// Runs the `grok` binary with `args` (a shell command line fragment),
// capturing stdout, stderr and the exit code.
struct CliResult {
  int code = -1;
  std::string out, err;
};
CliResult run_grok(const std::string& args);

// The UTF-8 encoding of one code point (tests build text from code points).
std::string utf8(char32_t cp);

// Writes `text` to temp_dir()/name and returns the path.
std::string write_file(const std::string& name, const std::string& text);

// A file's bytes ("" when it cannot be read).
std::string slurp(const std::string& path);

// A refusal as the CLI gives it: exactly one line on stderr, starting
// "grok: error: ", holding every needle; exit code 1.
void expect_clear_error(const CliResult& r, std::initializer_list<std::string> needles);

// Expects f() to throw a one-line grok::Error containing `needle`.
void expect_error(const std::function<void()>& f, const std::string& needle);

}  // namespace grok::test

#define GROK_REQUIRE_SHARED(var, rel)                                                  \
  const std::string var = ::grok::test::shared_file(rel);                              \
  if (var.empty()) GTEST_SKIP() << "needs ../shared/" << (rel) << " (not present)"
