#include "apps/cli/option_checks.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "core/error.h"

namespace grok::cli {
namespace {

// "-5", "12" -> the value; anything else (empty, "3x", "1e3", out of T's range) -> nullopt.
template <typename T>
std::optional<T> parse_whole(const std::string& text) {
  T v{};
  const char* begin = text.data() + (text.size() > 1 && text[0] == '+');  // from_chars takes no '+'
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

std::string in_quotes(const std::string& text) { return "'" + text + "'"; }

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const std::string range = hi == std::numeric_limits<int64_t>::max() ? cat(lo, " or more") : cat(lo, " to ", hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        const std::optional<int64_t> v = parse_whole<int64_t>(text);
        if (!v) {
          // A negative number too long for int64 is still "below", not "not a number".
          if (text.size() > 1 && text[0] == '-' && all_digits(text.substr(1))) return cat(text, " is below ", lo, " (give ", range, ")");
          if (all_digits(text)) return cat(text, " is above ", hi, " (give ", range, ")");
          return cat(in_quotes(text), " is not a whole number (give ", range, ")");
        }
        if (*v < lo) return cat(text, " is below ", lo, " (give ", range, ")");
        if (*v > hi) return cat(text, " is above ", hi, " (give ", range, ")");
        return "";
      },
      range);
}

CLI::Validator unsigned_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (parse_whole<uint64_t>(text)) return "";
        return cat(in_quotes(text), " is not a whole number from 0 to ", std::numeric_limits<uint64_t>::max());
      },
      "");
}

CLI::Validator real_number(double lo, double hi) {
  const std::string range = hi == std::numeric_limits<double>::max() ? cat(lo, " or more") : cat(lo, " to ", hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        double v = 0;
        const char* begin = text.data() + (text.size() > 1 && text[0] == '+');
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(begin, end, v);
        if (ec != std::errc() || ptr != end || !std::isfinite(v))
          return cat(in_quotes(text), " is not a number (give ", range, ")");
        if (v < lo || v > hi) return cat(text, " is out of range (give ", range, ")");
        return "";
      },
      range);
}

CLI::Validator thread_count() {
  const int hardware = std::max(1, int(std::thread::hardware_concurrency()));
  const int64_t most = int64_t(kMaxThreadsPerCore) * hardware;
  return CLI::Validator(
      [hardware, most](std::string& text) -> std::string {
        const std::optional<int64_t> v = parse_whole<int64_t>(text);
        if (!v || *v < 0) return cat(in_quotes(text), " is not a thread count (give 0 for one per hardware thread, or 1 to ", most, ")");
        if (*v > most)
          return cat(text, " threads on a machine with ", hardware, " hardware threads: more than ", most,
                     " only wait for each other (give 1 to ", most, ", or 0 for one per hardware thread)");
        return "";
      },
      cat("0 to ", most));
}

}  // namespace grok::cli
