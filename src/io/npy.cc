#include "io/npy.h"

#include <cstring>
#include <regex>

#include "core/error.h"
#include "core/mapped_file.h"
#include "io/atomic_file.h"

namespace grok {

void write_npy_f32(const std::string& path, const float* data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  // Magic (6) + version (2) + length (2) + header must be a multiple of 64, ending in '\n'.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += char(header.size() & 0xff);
  out += char(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(data), size_t(rows * cols) * sizeof(float));
  write_file_atomically(path, out);
}

std::vector<float> read_npy_f32(const std::string& path, int64_t& rows, int64_t& cols) {
  MappedFile f(path);
  const auto* p = reinterpret_cast<const char*>(f.data());
  if (f.size() < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) fail(path, ": not a .npy file");
  const size_t hlen = size_t(uint8_t(p[8])) | size_t(uint8_t(p[9])) << 8;
  if (p[6] != 1 || 10 + hlen > f.size()) fail(path, ": unsupported .npy version or truncated header");
  const std::string header(p + 10, hlen);
  std::smatch m;
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos ||
      !std::regex_search(header, m, std::regex(R"(\((\d+), (\d+)\))")))
    fail(path, ": expected a 2-D little-endian float32 array in C order");
  rows = std::stoll(m[1]);
  cols = std::stoll(m[2]);
  const uint64_t bytes = uint64_t(rows) * uint64_t(cols) * 4;
  if (10 + hlen + bytes != f.size()) fail(path, ": data size does not match the shape");
  std::vector<float> out(size_t(rows * cols));
  std::memcpy(out.data(), p + 10 + hlen, bytes);
  return out;
}

}  // namespace grok
