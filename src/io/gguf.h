// Reader for GGUF v2/v3 files (llama.cpp's format). Parses the header,
// metadata and tensor table of a mapped file, validating every count, offset
// and size against the file; tensor bytes stay in the map.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tensor_store.h"

namespace grok {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};

struct GgufValue {
  GgufType type = GgufType::U8;
  GgufType elem_type = GgufType::U8;  // for ARRAY
  // Scalars: integers in i (signed types) or u (unsigned, bool), reals in f.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string s;
  // Arrays: strings, or numbers (every numeric/bool element as double).
  std::vector<std::string> strings;
  std::vector<double> numbers;
};

class GgufFile {
 public:
  // Maps the file and parses it. Throws grok::Error naming the file and what is wrong.
  static GgufFile open(const std::string& path);
  // Parses bytes kept alive by `owner` (used by open() and by the fuzz target).
  static GgufFile parse(std::shared_ptr<const void> owner, const std::byte* data, uint64_t size,
                        std::string name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed accessors: nullopt when the key is absent; throw grok::Error when it
  // is present with a type that does not fit.
  std::optional<int64_t> get_int(std::string_view key) const;  // any integer type
  std::optional<double> get_float(std::string_view key) const;  // f32/f64 or integer
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  const std::vector<std::string>* get_string_array(std::string_view key) const;
  const std::vector<double>* get_number_array(std::string_view key) const;

  // Tensors with data pointers into the map; the store keeps the map alive.
  const TensorStore& tensors() const { return *tensors_; }
  std::shared_ptr<TensorStore> share_tensors() const { return tensors_; }

 private:
  std::string path_;
  uint32_t version_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::shared_ptr<TensorStore> tensors_;
};

}  // namespace grok
