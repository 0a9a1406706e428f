// A GGUF v3 writer: metadata of any GGUF type and tensors of every DType
// but I8, laid out as llama.cpp writes them (alignment 32, every tensor's
// data padded to the alignment). Small files are built in memory
// (add_tensor + write); large ones are streamed (declare_tensor + begin):
// the header goes out first and each tensor's bytes follow as the caller
// produces them, so only the tensor being produced is ever in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "io/gguf.h"
#include "io/temp_files.h"

namespace grok {

class GgufStream;

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
  // A tensor whose bytes the caller will supply through the GgufStream of
  // begin(), in declaration order. Same checks as add_tensor.
  void declare_tensor(std::string name, DType dtype, std::vector<int64_t> shape);

  // Writes to path + ".tmp" then renames into place; alignment 32. Every
  // tensor must have been added with its bytes (none only declared).
  void write(const std::string& path) const;

  // Creates path + ".tmp", writes the header and returns the stream that
  // takes the declared tensors' bytes; tensors added with bytes are written
  // as their turn comes. The writer must outlive the stream.
  GgufStream begin(const std::string& path) const;

  // Bytes of header plus padded tensor data: the size of the file written.
  uint64_t file_size() const;

 private:
  friend class GgufStream;
  struct Tensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes = 0;
    bool declared = false;  // bytes come through a GgufStream
    std::vector<std::byte> bytes;
  };
  uint64_t check_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const;
  std::vector<std::byte> header() const;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

// The file being written by GgufWriter::begin. Tensor bytes go straight to
// disk; finish() flushes, syncs and renames path.tmp into place. A stream
// destroyed before finish() (an error on the way) removes path.tmp, and so
// does SIGINT, SIGTERM or SIGHUP (io/temp_files.h).
class GgufStream {
 public:
  GgufStream(GgufStream&& other) noexcept;
  GgufStream& operator=(GgufStream&&) = delete;
  ~GgufStream();

  // Appends n bytes of the current declared tensor; a tensor may come in
  // any number of pieces, but a piece may not run past the tensor's end.
  void write(const std::byte* data, uint64_t n);
  void write(const std::vector<std::byte>& bytes) { write(bytes.data(), bytes.size()); }

  // The declared tensor whose bytes are expected next ("" when all are
  // written) and how many of its bytes are still to come.
  const std::string& current_tensor() const;
  uint64_t current_bytes_left() const { return left_in_current_; }
  uint64_t bytes_written() const { return written_; }  // of file_size()

  // Throws grok::Error naming the first tensor whose bytes are incomplete.
  void finish();

 private:
  friend class GgufWriter;
  GgufStream(const GgufWriter& w, std::string path);
  void put(const std::byte* data, uint64_t n);
  void pad(uint64_t nbytes);
  void advance_from(size_t i);
  [[noreturn]] void io_failure();

  const GgufWriter* w_;
  std::string path_, tmp_;
  TempFileGuard tmp_guard_;  // after tmp_: registered before the file is created
  std::FILE* f_ = nullptr;
  size_t current_ = 0;  // index into w_->tensors_
  uint64_t left_in_current_ = 0;
  uint64_t written_ = 0;
};

}  // namespace grok
