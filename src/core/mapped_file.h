// A read-only memory map of a whole file. Weights are used in place from the
// map, so opening a 300 GB model costs address space, not memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace grok {

// Drops the pages of [p, p+n) of a read-only file mapping from this
// process's resident memory (they are read again from the file if touched);
// lets a pass over a huge model keep its footprint bounded. Only for
// memory that is a file mapping: anonymous memory would read back as zeros.
void release_mapped_pages(const void* p, uint64_t n);

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws grok::Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace grok
