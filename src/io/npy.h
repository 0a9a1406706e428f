// NumPy .npy files (format version 1.0) of float32, for `grok logits`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace grok {

// Writes data (row-major, shape rows × cols) as a little-endian float32 .npy.
void write_npy_f32(const std::string& path, const float* data, int64_t rows, int64_t cols);

// Reads a float32 .npy written by write_npy_f32 or numpy (2-D, C order, '<f4').
std::vector<float> read_npy_f32(const std::string& path, int64_t& rows, int64_t& cols);

}  // namespace grok
