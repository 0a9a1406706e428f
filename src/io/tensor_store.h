// The one interface every weight format is read through: a table of named
// tensors whose bytes live in mapped files (or in buffers the store owns).
// The model asks for tensors by name and validates shapes once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace grok {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // row-major, outermost first (a GGUF's ne reversed)
  const std::byte* data = nullptr;
  uint64_t nbytes = 0;
  std::string file;  // where it came from, for error messages

  int64_t numel() const;
  std::string shape_str() const;  // "[131072, 64]"
};

class TensorStore {
 public:
  // Throws grok::Error if a tensor of that name is already present.
  void add(TensorInfo t);
  const TensorInfo* find(std::string_view name) const;
  // Like find, but throws "<file>: tensor '<name>' is missing".
  const TensorInfo& get(std::string_view name, std::string_view where) const;
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Keeps a mapped file or owned buffer alive as long as the store.
  void keep_alive(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

 private:
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<std::shared_ptr<const void>> owners_;
};

}  // namespace grok
