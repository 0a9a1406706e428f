// One error policy for the whole engine: anything a caller, a file or the
// environment gets wrong is thrown as grok::Error with a message that names
// the file/tensor/field and what is wrong. Front ends turn it into exit code 1
// (CLI) or an HTTP status (server).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace grok {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates its arguments with operator<< (GCC 12 has no <format>).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// A name from a file, quoted for an error message: control and non-ASCII
// bytes escaped and long names cut, so hostile input keeps messages one line.
std::string quote_name(std::string_view s);

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace grok
