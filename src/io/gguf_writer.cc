#include "io/gguf_writer.h"

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/error.h"

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
    case DType::I8: break;
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

void GgufWriter::add_tensor(std::string name, DType dtype, std::vector<int64_t> shape,
                            std::vector<std::byte> bytes) {
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
  const uint64_t want = dtype_bytes(dtype, numel);
  if (bytes.size() != want) fail(what, " has ", bytes.size(), " bytes, expected ", want);
  for (const Tensor& t : tensors_)
    if (t.name == name) fail(what, " is added twice");
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(bytes)});
}

void GgufWriter::write(const std::string& path) const {
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
  auto padded = [](uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; };
  for (const Tensor& t : tensors_) {
    h.str(t.name);
    h.scalar<uint32_t>(uint32_t(t.shape.size()));
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) h.scalar<uint64_t>(uint64_t(*d));  // ne order
    h.scalar<uint32_t>(ggml_type(t.dtype));
    h.scalar<uint64_t>(offset);
    offset += padded(t.bytes.size());
  }
  h.buf.resize(padded(h.buf.size()));

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(tmp, ": cannot create: ", std::strerror(errno));
    const std::byte zeros[kAlignment] = {};
    f.write(reinterpret_cast<const char*>(h.buf.data()), std::streamsize(h.buf.size()));
    for (const Tensor& t : tensors_) {
      f.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
      f.write(reinterpret_cast<const char*>(zeros), std::streamsize(padded(t.bytes.size()) - t.bytes.size()));
    }
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      fail(tmp, ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    fail(path, ": cannot rename ", tmp, " into place: ", std::strerror(e));
  }
}

}  // namespace grok
