#include "io/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/temp_files.h"

namespace grok {

void check_output_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) fail("the output path is empty");
  // Otherwise the whole output would be written first, then fail to be renamed.
  if (fs::is_directory(path, ec)) fail(path, ": is a directory; give the name of a file to write");
  const fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) return;
  const fs::file_type type = fs::status(dir, ec).type();
  if (type == fs::file_type::not_found)
    fail(path, ": cannot create: the directory ", quote_name(dir.string()), " does not exist");
  if (!ec && type != fs::file_type::directory)
    fail(path, ": cannot create: ", quote_name(dir.string()), " is not a directory");
  // A directory, or one we may not look at: creating the file will tell.
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  check_output_path(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  TempFileGuard guard(tmp);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, ": cannot create ", tmp, ": ", std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fflush(f) == 0 &&
                  ::fsync(::fileno(f)) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    fail(path, ": cannot write: ", std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    fail(path, ": cannot rename the temporary file into place: ", std::strerror(e));
  }
}

}  // namespace grok
