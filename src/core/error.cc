#include "core/error.h"

namespace grok {

std::string quote_name(std::string_view s) {
  constexpr size_t kMax = 200;
  std::string out = "'";
  for (size_t k = 0; k < s.size() && k < kMax; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[k]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += char(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

}  // namespace grok
