#include "io/gguf.h"

#include <bit>
#include <cstring>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <unordered_set>

#include "core/error.h"
#include "core/mapped_file.h"

namespace grok {

static_assert(std::endian::native == std::endian::little, "GGUF reader assumes a little-endian host");

namespace {

constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
// Smallest encodings, used to reject counts that cannot fit in what is left
// of the file before anything is allocated for them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims=0, type, offset

std::string_view gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

std::string gguf_type_name(const GgufValue& v) {
  if (v.type != GgufType::ARRAY) return std::string(gguf_type_name(v.type));
  return cat("array[", gguf_type_name(v.elem_type), "]");
}

// ggml's names for the types it defines, so an unsupported tensor type can be
// reported as e.g. "2 (Q4_0)"; "" for numbers ggml does not define.
std::string_view ggml_type_name(uint32_t t) {
  static constexpr std::string_view names[] = {
      "F32",    "F16",   "Q4_0",  "Q4_1",   "",      "",      "Q5_0",    "Q5_1",   "Q8_0",    "Q8_1",
      "Q2_K",   "Q3_K",  "Q4_K",  "Q5_K",   "Q6_K",  "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
      "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8",    "I16",   "I32",     "I64",    "F64",     "IQ1_M",
      "BF16",   "",      "",      "",       "TQ1_0", "TQ2_0", "",        "",       "",        "MXFP4"};
  return t < std::size(names) ? names[t] : std::string_view();
}

// Fewest bytes one value of type t can take (a string: its length prefix;
// an array: element type and count).
uint64_t min_value_bytes(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL: return 1;
    case GgufType::U16:
    case GgufType::I16: return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32: return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64: return 8;
    case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 4 + 8;
  }
  return 0;
}

bool is_valid_type(uint32_t t) { return t <= uint32_t(GgufType::F64); }

// Bounds-checked little-endian cursor over the file. Every read names what it
// was reading so truncation errors say where the file ends.
class Reader {
 public:
  Reader(const std::byte* data, uint64_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > left())
      fail(path_, ": file ends inside ", what, " (needs ", n, " bytes at offset ", pos_, ", ", left(),
           " left)");
  }
  template <typename T>
  T scalar(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint32_t u32(const std::string& what) { return scalar<uint32_t>(what); }
  uint64_t u64(const std::string& what) { return scalar<uint64_t>(what); }
  std::string str(const std::string& what) {
    const uint64_t n = u64(what);
    // Checked against the bytes left, so a hostile length is an error, not an allocation.
    if (n > left())
      fail(path_, ": ", what, " has length ", n, " but only ", left(), " bytes are left in the file");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }

 private:
  const std::byte* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

GgufValue read_scalar(Reader& r, GgufType t, const std::string& what, const std::string& path) {
  GgufValue v;
  v.type = t;
  switch (t) {
    case GgufType::U8: v.u = r.scalar<uint8_t>(what); break;
    case GgufType::I8: v.i = r.scalar<int8_t>(what); break;
    case GgufType::U16: v.u = r.scalar<uint16_t>(what); break;
    case GgufType::I16: v.i = r.scalar<int16_t>(what); break;
    case GgufType::U32: v.u = r.scalar<uint32_t>(what); break;
    case GgufType::I32: v.i = r.scalar<int32_t>(what); break;
    case GgufType::U64: v.u = r.scalar<uint64_t>(what); break;
    case GgufType::I64: v.i = r.scalar<int64_t>(what); break;
    case GgufType::F32: v.f = r.scalar<float>(what); break;
    case GgufType::F64: v.f = r.scalar<double>(what); break;
    case GgufType::BOOL: {
      const uint8_t b = r.scalar<uint8_t>(what);
      if (b > 1) fail(path, ": ", what, " is a bool with byte value ", int(b), " (expected 0 or 1)");
      v.u = b;
      break;
    }
    case GgufType::STRING: v.s = r.str(what); break;
    case GgufType::ARRAY: fail(path, ": ", what, ": internal error, array read as scalar");
  }
  return v;
}

// A scalar as the double stored in GgufValue::numbers.
double as_number(const GgufValue& v) {
  switch (v.type) {
    case GgufType::I8:
    case GgufType::I16:
    case GgufType::I32:
    case GgufType::I64: return double(v.i);
    case GgufType::F32:
    case GgufType::F64: return v.f;
    default: return double(v.u);
  }
}

GgufValue read_value(Reader& r, uint32_t type, const std::string& what, const std::string& path) {
  if (!is_valid_type(type)) fail(path, ": ", what, " has unknown value type ", type);
  const auto t = GgufType(type);
  if (t != GgufType::ARRAY) return read_scalar(r, t, what, path);

  GgufValue v;
  v.type = GgufType::ARRAY;
  const uint32_t et = r.u32(what + " element type");
  if (!is_valid_type(et)) fail(path, ": ", what, " is an array of unknown value type ", et);
  v.elem_type = GgufType(et);
  if (v.elem_type == GgufType::ARRAY) fail(path, ": ", what, " is a nested array (not supported)");
  const uint64_t count = r.u64(what + " element count");
  const uint64_t elem = min_value_bytes(v.elem_type);
  if (count > r.left() / elem)
    fail(path, ": ", what, " claims ", count, " elements of ", gguf_type_name(v.elem_type), " but only ",
         r.left(), " bytes are left in the file");
  const std::string elem_what = what + " element";
  if (v.elem_type == GgufType::STRING) {
    v.strings.reserve(size_t(count));
    for (uint64_t k = 0; k < count; ++k) v.strings.push_back(r.str(elem_what));
  } else {
    v.numbers.reserve(size_t(count));
    for (uint64_t k = 0; k < count; ++k)
      v.numbers.push_back(as_number(read_scalar(r, v.elem_type, elem_what, path)));
  }
  return v;
}

// Maps a ggml type number to a DType; nullopt for types this engine cannot use.
std::optional<DType> dtype_from_ggml(uint32_t t) {
  switch (t) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 6: return DType::Q5_0;
    case 7: return DType::Q5_1;
    case 8: return DType::Q8_0;
    case 12: return DType::Q4_K;
    case 13: return DType::Q5_K;
    case 14: return DType::Q6_K;
    case 24: return DType::I8;
    case 30: return DType::BF16;
  }
  return std::nullopt;
}

}  // namespace

GgufFile GgufFile::open(const std::string& path) {
  auto map = std::make_shared<MappedFile>(path);
  const std::byte* data = map->data();
  const uint64_t size = map->size();
  return parse(std::move(map), data, size, path);
}

GgufFile GgufFile::parse(std::shared_ptr<const void> owner, const std::byte* data, uint64_t size,
                         std::string name) {
  GgufFile g;
  g.path_ = std::move(name);
  const std::string& path = g.path_;
  Reader r(data, size, path);

  r.need(4, "the GGUF magic");
  if (std::memcmp(data, "GGUF", 4) != 0)
    fail(path, ": not a GGUF file (bad magic ",
         quote_name(std::string_view(reinterpret_cast<const char*>(data), 4)), ")");
  r.u32("the GGUF magic");
  g.version_ = r.u32("the GGUF version");
  if (g.version_ != 2 && g.version_ != 3) fail(path, ": unsupported GGUF version ", g.version_);
  const uint64_t n_tensors = r.u64("the tensor count");
  const uint64_t n_kv = r.u64("the metadata count");
  if (n_kv > r.left() / kMinKvBytes)
    fail(path, ": metadata count ", n_kv, " cannot fit in the ", r.left(), " bytes left in the file");

  g.kv_.reserve(size_t(n_kv));
  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = r.str(cat("metadata key #", k));
    const std::string what = cat("metadata key ", quote_name(key));
    const uint32_t type = r.u32(what + " type");
    GgufValue v = read_value(r, type, what, path);
    if (!keys.insert(key).second) fail(path, ": ", what, " is present twice");
    g.kv_.emplace_back(std::move(key), std::move(v));
  }

  uint64_t alignment = kDefaultAlignment;
  if (const GgufValue* a = g.find("general.alignment")) {
    const auto t = a->type;
    const bool is_uint = t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
    const bool is_sint = t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
    const uint64_t av = is_uint ? a->u : is_sint && a->i > 0 ? uint64_t(a->i) : 0;
    if (!(is_uint || is_sint))
      fail(path, ": metadata key 'general.alignment' has type ", gguf_type_name(*a), ", expected an integer");
    if (!std::has_single_bit(av))
      fail(path, ": general.alignment ", is_uint ? std::to_string(a->u) : std::to_string(a->i),
           " is not a power of two");
    alignment = av;
  }

  if (n_tensors > r.left() / kMinTensorInfoBytes)
    fail(path, ": tensor count ", n_tensors, " cannot fit in the ", r.left(), " bytes left in the file");
  struct Pending {
    TensorInfo info;
    uint64_t offset;
  };
  std::vector<Pending> pending;
  pending.reserve(size_t(n_tensors));
  std::unordered_set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Pending p;
    TensorInfo& t = p.info;
    t.name = r.str(cat("tensor name #", k));
    t.file = path;
    const std::string what = cat("tensor ", quote_name(t.name));
    if (!names.insert(t.name).second) fail(path, ": ", what, " is present twice");
    const uint32_t n_dims = r.u32(what + " dimension count");
    if (n_dims > kMaxDims) fail(path, ": ", what, " has ", n_dims, " dimensions (at most ", kMaxDims, ")");
    std::vector<int64_t> ne(n_dims);
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = r.u64(what + " shape");
      if (n > uint64_t(std::numeric_limits<int64_t>::max()))
        fail(path, ": ", what, " has dimension ", d, " of size ", n);
      ne[d] = int64_t(n);
      if (__builtin_mul_overflow(numel, ne[d], &numel)) fail(path, ": ", what, " element count overflows");
    }
    const uint32_t type = r.u32(what + " type");
    const auto dt = dtype_from_ggml(type);
    if (!dt) {
      const std::string_view gname = ggml_type_name(type);
      const std::string shown = gname.empty() ? std::to_string(type) : cat(type, " (", gname, ")");
      fail(path, ": ", what, " has unsupported ggml type ", shown, "; supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, "
           "Q4_K, Q5_K, Q6_K");
    }
    t.dtype = *dt;
    const int64_t row = n_dims ? ne[0] : 1;
    if (row % dtype_block_elems(t.dtype) != 0)
      fail(path, ": ", what, " rows of ", row, " elements are not whole ", dtype_name(t.dtype), " blocks of ",
           dtype_block_elems(t.dtype));
    const uint64_t blocks = uint64_t(numel / dtype_block_elems(t.dtype));
    if (__builtin_mul_overflow(blocks, uint64_t(dtype_block_bytes(t.dtype)), &t.nbytes))
      fail(path, ": ", what, " byte size overflows");
    t.shape.assign(ne.rbegin(), ne.rend());  // GGUF lists ne fastest-varying first
    p.offset = r.u64(what + " data offset");
    if (p.offset % alignment != 0)
      fail(path, ": ", what, " data offset ", p.offset, " is not a multiple of the alignment ", alignment);
    pending.push_back(std::move(p));
  }

  // The data section starts at the next multiple of the alignment. A file
  // without tensors may end before it.
  const uint64_t pad = (alignment - r.pos() % alignment) % alignment;
  const uint64_t data_start = r.pos() + pad;
  if (data_start < r.pos() || (data_start > size && !pending.empty()))
    fail(path, ": data section would start at ", data_start, ", past the end of the file (", size, " bytes)");
  const uint64_t data_size = data_start <= size ? size - data_start : 0;

  auto store = std::make_shared<TensorStore>();
  store->keep_alive(std::move(owner));
  for (Pending& p : pending) {
    TensorInfo& t = p.info;
    if (p.offset > data_size || t.nbytes > data_size - p.offset)
      fail(path, ": tensor ", quote_name(t.name), " data (", t.nbytes, " bytes at offset ", p.offset,
           ") runs past the end of the file (data section has ", data_size, " bytes)");
    t.data = data + data_start + p.offset;
    store->add(std::move(t));
  }
  g.tensors_ = std::move(store);
  return g;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : kv_)
    if (k == key) return &v;
  return nullptr;
}

namespace {
[[noreturn]] void type_mismatch(const std::string& path, std::string_view key, const GgufValue& v,
                                const char* expected) {
  fail(path, ": metadata key ", quote_name(key), " has type ", gguf_type_name(v), ", expected ", expected);
}
bool is_int_type(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::U16:
    case GgufType::I16:
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::U64:
    case GgufType::I64: return true;
    default: return false;
  }
}
bool is_unsigned_type(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}
}  // namespace

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!is_int_type(v->type)) type_mismatch(path_, key, *v, "an integer");
  if (is_unsigned_type(v->type)) {
    if (v->u > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(path_, ": metadata key ", quote_name(key), " value ", v->u, " does not fit in int64");
    return int64_t(v->u);
  }
  return v->i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::F32 || v->type == GgufType::F64) return v->f;
  if (is_int_type(v->type)) return is_unsigned_type(v->type) ? double(v->u) : double(v->i);
  type_mismatch(path_, key, *v, "a number");
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) type_mismatch(path_, key, *v, "bool");
  return v->u != 0;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) type_mismatch(path_, key, *v, "string");
  return v->s;
}

const std::vector<std::string>* GgufFile::get_string_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || v->elem_type != GgufType::STRING)
    type_mismatch(path_, key, *v, "array[string]");
  return &v->strings;
}

const std::vector<double>* GgufFile::get_number_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY || v->elem_type == GgufType::STRING)
    type_mismatch(path_, key, *v, "an array of numbers");
  return &v->numbers;
}

}  // namespace grok
