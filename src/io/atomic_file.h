// Writes a file so that readers never see half of it: the bytes go to a
// temporary file beside the target, which is renamed into place at the end.
#pragma once

#include <string>
#include <string_view>

namespace grok {

// Also refuses a path that check_output_path refuses. The temporary file is
// removed if the process is killed by SIGINT, SIGTERM or SIGHUP (io/temp_files.h).
void write_file_atomically(const std::string& path, std::string_view bytes);

// Throws grok::Error, one line naming the path, when `path` cannot be written
// as a file: it is an existing directory, or its directory does not exist.
// Commands call it before computing what they will write.
void check_output_path(const std::string& path);

}  // namespace grok
