// Streams text while watching for stop strings: text that might be the start
// of a stop string is held back until it is known not to be one.
#pragma once

#include <string>
#include <vector>

namespace grok {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);
  // Adds `text`; sets `emit` to what may be shown now. Returns true when a stop
  // string was found (emit then holds the text before it; the rest is dropped).
  bool push(const std::string& text, std::string& emit);
  std::string flush();  // the held-back text, at the end of generation

 private:
  std::vector<std::string> stops_;
  std::string held_;
};

}  // namespace grok
