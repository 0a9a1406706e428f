// A small GGUF v3 writer: metadata of any GGUF type and F32/F16/BF16/Q8_0
// tensors, laid out as llama.cpp writes them (alignment 32, every tensor's
// data padded to the alignment). Used by the tests and by `grok convert`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "io/gguf.h"

namespace grok {

class GgufWriter {
 public:
  // Setting a key that is already set replaces its value (keeping its place).
  void set_string(std::string key, std::string v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_f32(std::string key, float v);
  void set_bool(std::string key, bool v);
  void set_string_array(std::string key, std::vector<std::string> v);
  void set_f32_array(std::string key, std::vector<float> v);
  void set_i32_array(std::string key, std::vector<int32_t> v);
  // Any value as the reader returns it (e.g. copied from another GgufFile):
  // scalars from i/u/f/s by type, arrays from strings or numbers by elem_type.
  void set(std::string key, GgufValue v);

  // shape outermost first (like TensorInfo); bytes must be dtype_bytes(dtype, numel).
  // Throws grok::Error for I8 (no GGUF mapping here), more than 4 dims, a
  // negative dim, Q8_0 rows that are not whole blocks, a size mismatch or a
  // duplicate name.
  void add_tensor(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<std::byte> bytes);

  // Writes to path + ".tmp" then renames into place; alignment 32.
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace grok
