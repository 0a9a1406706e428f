#include "io/tensor_store.h"

#include "core/error.h"


namespace grok {

int64_t TensorInfo::numel() const {
  // A zero dimension makes the product 0 even when the others would overflow.
  for (int64_t d : shape)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) fail(file, ": tensor ", quote_name(name), " shape ", shape_str(), " is too large");
  return n;
}

std::string TensorInfo::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void TensorStore::add(TensorInfo t) {
  if (index_.count(t.name)) fail(t.file, ": tensor '", t.name, "' is present twice");
  index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
}

const TensorInfo* TensorStore::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& TensorStore::get(std::string_view name, std::string_view where) const {
  const TensorInfo* t = find(name);
  if (!t) fail(where, ": tensor '", name, "' is missing");
  return *t;
}

}  // namespace grok
