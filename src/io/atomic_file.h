// Writes a file so that readers never see half of it: the bytes go to a
// temporary file beside the target, which is renamed into place at the end.
#pragma once

#include <string>
#include <string_view>

namespace grok {

void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace grok
