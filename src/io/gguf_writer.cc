#include "io/gguf_writer.h"

#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "io/atomic_file.h"

namespace grok {

static_assert(std::endian::native == std::endian::little, "GGUF writer assumes a little-endian host");

namespace {

constexpr uint64_t kAlignment = 32;

uint32_t ggml_type(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q8_0: return 8;
    case DType::BF16: return 30;
    case DType::Q4_0: return 2;
    case DType::Q4_K: return 12;
    case DType::Q6_K: return 14;
    case DType::Q5_0: return 6;
    case DType::Q5_1: return 7;
    case DType::Q5_K: return 13;
    case DType::I8: return 24;
  }
  fail("GGUF writer: dtype ", dtype_name(t), " is not supported");
}

// Serialises into a byte vector; the header is small, tensor data is streamed.
class Out {
 public:
  template <typename T>
  void scalar(T v) {
    const size_t at = buf.size();
    buf.resize(at + sizeof(T));
    std::memcpy(buf.data() + at, &v, sizeof(T));
  }
  void str(const std::string& s) {
    scalar<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    buf.insert(buf.end(), p, p + s.size());
  }
  void scalar_value(GgufType t, const GgufValue& v) {
    switch (t) {
      case GgufType::U8: scalar<uint8_t>(uint8_t(v.u)); break;
      case GgufType::I8: scalar<int8_t>(int8_t(v.i)); break;
      case GgufType::U16: scalar<uint16_t>(uint16_t(v.u)); break;
      case GgufType::I16: scalar<int16_t>(int16_t(v.i)); break;
      case GgufType::U32: scalar<uint32_t>(uint32_t(v.u)); break;
      case GgufType::I32: scalar<int32_t>(int32_t(v.i)); break;
      case GgufType::U64: scalar<uint64_t>(v.u); break;
      case GgufType::I64: scalar<int64_t>(v.i); break;
      case GgufType::F32: scalar<float>(float(v.f)); break;
      case GgufType::F64: scalar<double>(v.f); break;
      case GgufType::BOOL: scalar<uint8_t>(v.u ? 1 : 0); break;
      case GgufType::STRING: str(v.s); break;
      case GgufType::ARRAY: fail("GGUF writer: nested arrays are not supported");
    }
  }
  void value(const std::string& key, const GgufValue& v) {
    if (v.type != GgufType::ARRAY) return scalar_value(v.type, v);
    scalar<uint32_t>(uint32_t(v.elem_type));
    if (v.elem_type == GgufType::STRING) {
      scalar<uint64_t>(v.strings.size());
      for (const std::string& s : v.strings) str(s);
      return;
    }
    if (v.elem_type == GgufType::ARRAY)
      fail("GGUF writer: key '", key, "' is a nested array (not supported)");
    scalar<uint64_t>(v.numbers.size());
    for (double d : v.numbers) scalar_value(v.elem_type, number_as(v.elem_type, d));
  }
  std::vector<std::byte> buf;

 private:
  // An array element (stored as double) as the scalar GgufValue of its type.
  static GgufValue number_as(GgufType t, double d) {
    GgufValue e;
    e.type = t;
    e.f = d;
    // Casting an out-of-range double to an integer is undefined; the caller
    // asked for that element type, so values must fit it.
    const bool sgn = t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
    const bool uns = t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64 ||
                     t == GgufType::BOOL;
    if (sgn) {
      if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        fail("GGUF writer: array value ", d, " is not an integer");
      e.i = int64_t(d);
    } else if (uns) {
      if (!(d >= 0 && d < 18446744073709551616.0))
        fail("GGUF writer: array value ", d, " is not an unsigned integer");
      e.u = uint64_t(d);
    }
    return e;
  }
};

void set_kv(std::vector<std::pair<std::string, GgufValue>>& kv, std::string key, GgufValue v) {
  for (auto& [k, old] : kv) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  kv.emplace_back(std::move(key), std::move(v));
}

GgufValue scalar_of(GgufType t) {
  GgufValue v;
  v.type = t;
  return v;
}

}  // namespace

void GgufWriter::set(std::string key, GgufValue v) {
  if (v.type == GgufType::ARRAY && v.elem_type == GgufType::ARRAY)
    fail("GGUF writer: key '", key, "' is a nested array (not supported)");
  if (uint32_t(v.type) > uint32_t(GgufType::F64) || uint32_t(v.elem_type) > uint32_t(GgufType::F64))
    fail("GGUF writer: key '", key, "' has an unknown value type");
  // write() always lays data out at 32-byte alignment; another value would
  // make readers look for the tensors in the wrong place.
  if (key == "general.alignment" && !(v.type == GgufType::U32 && v.u == kAlignment))
    fail("GGUF writer: general.alignment must be u32 ", kAlignment, " (the alignment this writer uses)");
  set_kv(kv_, std::move(key), std::move(v));
}

void GgufWriter::set_string(std::string key, std::string s) {
  GgufValue v = scalar_of(GgufType::STRING);
  v.s = std::move(s);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_u32(std::string key, uint32_t x) {
  GgufValue v = scalar_of(GgufType::U32);
  v.u = x;
  set(std::move(key), std::move(v));
}
void GgufWriter::set_i32(std::string key, int32_t x) {
  GgufValue v = scalar_of(GgufType::I32);
  v.i = x;
  set(std::move(key), std::move(v));
}
void GgufWriter::set_f32(std::string key, float x) {
  GgufValue v = scalar_of(GgufType::F32);
  v.f = x;
  set(std::move(key), std::move(v));
}
void GgufWriter::set_bool(std::string key, bool x) {
  GgufValue v = scalar_of(GgufType::BOOL);
  v.u = x ? 1 : 0;
  set(std::move(key), std::move(v));
}
void GgufWriter::set_string_array(std::string key, std::vector<std::string> xs) {
  GgufValue v = scalar_of(GgufType::ARRAY);
  v.elem_type = GgufType::STRING;
  v.strings = std::move(xs);
  set(std::move(key), std::move(v));
}
void GgufWriter::set_f32_array(std::string key, std::vector<float> xs) {
  GgufValue v = scalar_of(GgufType::ARRAY);
  v.elem_type = GgufType::F32;
  v.numbers.assign(xs.begin(), xs.end());
  set(std::move(key), std::move(v));
}
void GgufWriter::set_i32_array(std::string key, std::vector<int32_t> xs) {
  GgufValue v = scalar_of(GgufType::ARRAY);
  v.elem_type = GgufType::I32;
  v.numbers.assign(xs.begin(), xs.end());
  set(std::move(key), std::move(v));
}

uint64_t GgufWriter::check_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const {
  const std::string what = "GGUF writer: tensor '" + name + "'";
  ggml_type(dtype);  // rejects types GGUF cannot hold here
  if (shape.size() > 4) fail(what, " has ", shape.size(), " dimensions (at most 4)");
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(what, " has a negative dimension");
    if (__builtin_mul_overflow(numel, d, &numel)) fail(what, " element count overflows");
  }
  const int64_t row = shape.empty() ? 1 : shape.back();
  if (row % dtype_block_elems(dtype) != 0)
    fail(what, " rows of ", row, " elements are not whole ", dtype_name(dtype), " blocks");
  for (const Tensor& t : tensors_)
    if (t.name == name) fail(what, " is added twice");
  return dtype_bytes(dtype, numel);
}

void GgufWriter::add_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                            std::vector<std::byte> bytes) {
  const uint64_t want = check_tensor(name, dtype, shape);
  if (bytes.size() != want) fail("GGUF writer: tensor '", name, "' has ", bytes.size(), " bytes, expected ", want);
  tensors_.push_back({std::move(name), dtype, std::move(shape), want, false, std::move(bytes)});
}

void GgufWriter::declare_tensor(std::string name, DType dtype, std::vector<int64_t> shape) {
  const uint64_t nbytes = check_tensor(name, dtype, shape);
  tensors_.push_back({std::move(name), dtype, std::move(shape), nbytes, true, {}});
}

namespace {
uint64_t padded(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }
}  // namespace

std::vector<std::byte> GgufWriter::header() const {
  Out h;
  h.buf.insert(h.buf.end(), {std::byte('G'), std::byte('G'), std::byte('U'), std::byte('F')});
  h.scalar<uint32_t>(3);
  h.scalar<uint64_t>(tensors_.size());
  // general.alignment is written only if a caller set it (always 32, the
  // reader's default).
  h.scalar<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    h.str(k);
    h.scalar<uint32_t>(uint32_t(v.type));
    h.value(k, v);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    h.str(t.name);
    h.scalar<uint32_t>(uint32_t(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) h.scalar<uint64_t>(uint64_t(*d));  // ne order
    h.scalar<uint32_t>(ggml_type(t.dtype));
    h.scalar<uint64_t>(offset);
    offset += padded(t.nbytes);
  }
  h.buf.resize(padded(h.buf.size()));
  return std::move(h.buf);
}

uint64_t GgufWriter::file_size() const {
  uint64_t n = header().size();
  for (const Tensor& t : tensors_) n += padded(t.nbytes);
  return n;
}

void GgufWriter::write(const std::string& path) const {
  for (const Tensor& t : tensors_)
    if (t.declared) fail("GGUF writer: tensor '", t.name, "' was declared without bytes; stream it with begin()");
  begin(path).finish();
}

GgufStream GgufWriter::begin(const std::string& path) const { return GgufStream(*this, path); }

GgufStream::GgufStream(const GgufWriter& w, std::string path)
    : w_(&w), path_(std::move(path)), tmp_(path_ + ".tmp"), tmp_guard_(tmp_) {
  check_output_path(path_);
  const std::vector<std::byte> head = w.header();
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail(tmp_, ": cannot create: ", std::strerror(errno));
  std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  put(head.data(), head.size());
  advance_from(0);
}

GgufStream::GgufStream(GgufStream&& o) noexcept
    : w_(o.w_), path_(std::move(o.path_)), tmp_(std::move(o.tmp_)), tmp_guard_(std::move(o.tmp_guard_)), f_(o.f_),
      current_(o.current_),
      left_in_current_(o.left_in_current_), written_(o.written_) {
  o.f_ = nullptr;
}

GgufStream::~GgufStream() {
  if (f_) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void GgufStream::put(const std::byte* data, uint64_t n) {
  if (n && std::fwrite(data, 1, size_t(n), f_) != n) io_failure();
  written_ += n;
}

void GgufStream::io_failure() {
  const int e = errno;
  std::fclose(f_);
  f_ = nullptr;
  std::remove(tmp_.c_str());
  fail(tmp_, ": write failed: ", std::strerror(e));
}

void GgufStream::pad(uint64_t nbytes) {
  static const std::byte zeros[kAlignment] = {};
  put(zeros, padded(nbytes) - nbytes);
}

// Makes tensor i, or the first declared one after it, current, writing the
// stored tensors on the way.
void GgufStream::advance_from(size_t i) {
  const auto& ts = w_->tensors_;
  for (; i < ts.size(); ++i) {
    const GgufWriter::Tensor& t = ts[i];
    if (t.declared && t.nbytes > 0) break;
    put(t.bytes.data(), t.bytes.size());
    pad(t.nbytes);
  }
  current_ = i;
  left_in_current_ = i < ts.size() ? ts[i].nbytes : 0;
}

void GgufStream::write(const std::byte* data, uint64_t n) {
  if (!f_) fail(tmp_, ": write after the stream was closed");
  if (n == 0) return;
  if (current_ >= w_->tensors_.size()) fail(tmp_, ": ", n, " bytes written after the last tensor");
  const GgufWriter::Tensor& t = w_->tensors_[current_];
  if (n > left_in_current_)
    fail(tmp_, ": a piece of ", n, " bytes runs past the end of tensor '", t.name, "' (", left_in_current_,
         " bytes left of ", t.nbytes, ")");
  put(data, n);
  left_in_current_ -= n;
  if (left_in_current_ == 0) {
    pad(t.nbytes);
    advance_from(current_ + 1);
  }
}

const std::string& GgufStream::current_tensor() const {
  static const std::string none;
  return current_ < w_->tensors_.size() ? w_->tensors_[current_].name : none;
}

void GgufStream::finish() {
  if (!f_) fail(tmp_, ": finish after the stream was closed");
  if (current_ < w_->tensors_.size()) {
    const GgufWriter::Tensor& t = w_->tensors_[current_];
    fail(tmp_, ": tensor '", t.name, "' is incomplete (", t.nbytes - left_in_current_, " of ", t.nbytes,
         " bytes written)");
  }
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) io_failure();
  const int closed = std::fclose(f_);
  f_ = nullptr;
  if (closed != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    fail(tmp_, ": write failed: ", std::strerror(e));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp_.c_str());
    fail(path_, ": cannot rename ", tmp_, " into place: ", std::strerror(e));
  }
  tmp_guard_.release();
}

}  // namespace grok
