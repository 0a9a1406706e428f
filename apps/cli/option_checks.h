// Checks on option values whose refusals a user can act on. CLI11's own
// (NonNegativeNumber, Range) print the whole double range and call a word
// that is not a number "not in range".
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>

namespace grok::cli {

// A whole number in [lo, hi]: "-5 is below 0", "'abc' is not a whole number".
CLI::Validator whole_number(int64_t lo, int64_t hi = std::numeric_limits<int64_t>::max());
// A 64-bit unsigned whole number (seeds): "-1" is refused, not wrapped around.
CLI::Validator unsigned_number();
// A finite number in [lo, hi].
CLI::Validator real_number(double lo, double hi = std::numeric_limits<double>::max());
// -t/--threads: 0 (one per hardware thread) up to kMaxThreadsPerCore times
// this machine's hardware threads; more only make the threads wait for
// each other, so a larger number is taken for a typo.
inline constexpr int kMaxThreadsPerCore = 4;
CLI::Validator thread_count();

}  // namespace grok::cli
