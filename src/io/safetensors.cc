#include "io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"

namespace grok {

static_assert(std::endian::native == std::endian::little, "safetensors reader assumes a little-endian host");

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The reference implementation refuses headers above 100 MB; so do we, so a
// hostile length cannot make us parse (and allocate for) most of a huge file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::align_val_t kCopyAlign{64};

std::optional<DType> dtype_from_name(std::string_view s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "I8") return DType::I8;
  return std::nullopt;
}

// Parses JSON text, turning every parse failure (and duplicate top-level
// keys, which nlohmann would silently collapse) into one grok::Error line.
json parse_json(const char* begin, const char* end, const std::string& name) {
  std::string duplicate;
  std::set<std::string> seen;
  const json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && duplicate.empty() && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(begin, end, cb);
  } catch (const json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag, and bound the
    // message: its "last read" excerpt can be a whole (huge) token.
    std::string_view msg = e.what();
    if (!msg.empty() && msg.front() == '[' && msg.find("] ") != std::string_view::npos)
      msg.remove_prefix(msg.find("] ") + 2);
    constexpr size_t kMaxMessage = 300;
    fail(name, ": invalid JSON: ", msg.substr(0, kMaxMessage), msg.size() > kMaxMessage ? "..." : "");
  }
  if (!duplicate.empty()) fail(name, ": JSON key ", quote_name(duplicate), " is present twice");
  return j;
}

uint64_t get_uint(const json& j, const std::string& name, const std::string& what) {
  if (!j.is_number_unsigned()) fail(name, ": ", what, " must be a non-negative integer, got ", j.type_name());
  return j.get<uint64_t>();
}

// "[2, 3]", shortened for hostile shapes with many entries.
std::string shape_text(const std::vector<int64_t>& shape) {
  constexpr size_t kMaxShown = 8;
  std::string s = "[";
  for (size_t k = 0; k < shape.size() && k < kMaxShown; ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() > kMaxShown ? ", ...]" : "]");
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& key, const json& v, const std::string& name) {
  const std::string what = "tensor " + quote_name(key);
  if (!v.is_object()) fail(name, ": ", what, " must be a JSON object, got ", v.type_name());
  Entry e{key, DType::F32, {}, 0, 0};

  const auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) fail(name, ": ", what, " needs a string \"dtype\"");
  const auto& dts = dt->get_ref<const std::string&>();
  const auto dtype = dtype_from_name(dts);
  if (!dtype)
    fail(name, ": ", what, " has unsupported dtype ", quote_name(dts), "; supported: F32, F16, BF16, I8");
  e.dtype = *dtype;

  const auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) fail(name, ": ", what, " needs an array \"shape\"");
  uint64_t numel = 1;
  for (const json& d : *sh) {
    const uint64_t n = get_uint(d, name, what + " shape entries");
    if (n > uint64_t(std::numeric_limits<int64_t>::max())) fail(name, ": ", what, " has dimension ", n);
    e.shape.push_back(int64_t(n));
    if (__builtin_mul_overflow(numel, n, &numel) || numel > uint64_t(std::numeric_limits<int64_t>::max()))
      fail(name, ": ", what, " element count overflows");
  }

  const auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2)
    fail(name, ": ", what, " needs \"data_offsets\" [begin, end]");
  e.begin = get_uint((*off)[0], name, what + " data_offsets");
  e.end = get_uint((*off)[1], name, what + " data_offsets");
  if (e.begin > e.end) fail(name, ": ", what, " data_offsets [", e.begin, ", ", e.end, "] run backwards");

  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(dtype_block_bytes(e.dtype)), &nbytes))
    fail(name, ": ", what, " byte size overflows");
  if (nbytes != e.end - e.begin)
    fail(name, ": ", what, " of shape ", shape_text(e.shape), " and dtype ", dts, " needs ", nbytes,
         " bytes but data_offsets span ", e.end - e.begin);
  return e;
}

// A heap buffer aligned for any element type, for tensors copied out of an
// unaligned file.
std::shared_ptr<std::byte> aligned_copy(const std::byte* src, uint64_t n) {
  auto* p = static_cast<std::byte*>(::operator new(size_t(n), kCopyAlign));
  std::memcpy(p, src, size_t(n));
  return std::shared_ptr<std::byte>(p, [](std::byte* q) { ::operator delete(q, kCopyAlign); });
}

}  // namespace

void parse_safetensors(std::shared_ptr<const void> owner, const std::byte* data, uint64_t size,
                       const std::string& name, TensorStore& store) {
  if (size < 8) fail(name, ": file of ", size, " bytes is too short for a safetensors header");
  uint64_t n;
  std::memcpy(&n, data, 8);
  if (n > size - 8) fail(name, ": header length ", n, " exceeds the ", size - 8, " bytes after it");
  if (n > kMaxHeaderBytes)
    fail(name, ": header length ", n, " is larger than the ", kMaxHeaderBytes, "-byte limit");
  const char* text = reinterpret_cast<const char*>(data + 8);
  const json header = parse_json(text, text + n, name);
  if (!header.is_object()) fail(name, ": header must be a JSON object, got ", header.type_name());

  const std::byte* section = data + 8 + n;
  const uint64_t section_size = size - 8 - n;
  std::vector<Entry> entries;
  for (const auto& [key, v] : header.items()) {
    if (key == "__metadata__") {
      if (!v.is_object()) fail(name, ": __metadata__ must be a JSON object, got ", v.type_name());
      for (const auto& [mk, mv] : v.items())
        if (!mv.is_string())
          fail(name, ": __metadata__ value ", quote_name(mk), " must be a string, got ", mv.type_name());
      continue;
    }
    Entry e = parse_entry(key, v, name);
    if (e.end > section_size)
      fail(name, ": tensor ", quote_name(key), " data_offsets [", e.begin, ", ", e.end, "] run past the ",
           section_size, "-byte data section");
    entries.push_back(std::move(e));
  }
  // File order, for a stable listing (JSON objects come back sorted by key).
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });

  for (const Entry& e : entries)
    if (store.find(e.name)) fail(name, ": tensor ", quote_name(e.name), " is present twice");
  store.keep_alive(std::move(owner));
  for (Entry& e : entries) {
    TensorInfo t;
    t.name = std::move(e.name);
    t.dtype = e.dtype;
    t.shape = std::move(e.shape);
    t.nbytes = e.end - e.begin;
    t.file = name;
    t.data = section + e.begin;
    // Safetensors does not align tensor data: the header length can be any
    // number. Kernels read elements through typed pointers, so a tensor that
    // is not aligned to its element size is copied into an owned aligned
    // buffer, which the store keeps alive.
    const auto elem = uint64_t(dtype_block_bytes(t.dtype));
    if (t.nbytes > 0 && reinterpret_cast<uintptr_t>(t.data) % elem != 0) {
      auto copy = aligned_copy(t.data, t.nbytes);
      t.data = copy.get();
      store.keep_alive(std::move(copy));
    }
    store.add(std::move(t));
  }
}

void read_safetensors_file(const std::string& path, TensorStore& store) {
  auto map = std::make_shared<MappedFile>(path);
  const std::byte* data = map->data();
  const uint64_t size = map->size();
  parse_safetensors(std::move(map), data, size, path, store);
}

namespace {

bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find("..") == std::string::npos && s.find('\0') == std::string::npos && s != ".";
}

void read_indexed_folder(const std::string& dir, const std::string& index_path, TensorStore& store) {
  MappedFile index(index_path);
  const char* text = reinterpret_cast<const char*>(index.data());
  const json j = parse_json(text, text + index.size(), index_path);
  if (!j.is_object()) fail(index_path, ": must be a JSON object, got ", j.type_name());
  const auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) fail(index_path, ": needs an object \"weight_map\"");

  std::map<std::string, std::vector<std::string>> by_shard;  // sorted: a stable load order
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string())
      fail(index_path, ": weight_map entry ", quote_name(tensor), " must be a string, got ",
           shard.type_name());
    const auto& s = shard.get_ref<const std::string&>();
    if (!is_plain_file_name(s))
      fail(index_path, ": weight_map entry ", quote_name(tensor), " names shard ", quote_name(s),
           ", which is not a file name inside ", dir);
    by_shard[s].push_back(tensor);
  }
  for (const auto& [shard, names] : by_shard) {
    const std::string shard_path = (fs::path(dir) / shard).string();
    std::error_code ec;
    if (!fs::is_regular_file(shard_path, ec))
      fail(index_path, ": shard ", quote_name(shard), " (named for tensor ", quote_name(names.front()),
           ") is not a file in ", dir);
    read_safetensors_file(shard_path, store);
    for (const std::string& name : names) {
      const TensorInfo* t = store.find(name);
      if (!t || t->file != shard_path)
        fail(index_path, ": tensor ", quote_name(name), " is listed in shard ", quote_name(shard),
             " but that shard does not contain it");
    }
  }
}

}  // namespace

void read_safetensors_folder(const std::string& dir, TensorStore& store) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory");
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  if (fs::exists(index_path, ec)) return read_indexed_folder(dir, index_path, store);

  std::vector<std::string> files;
  try {
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().extension() == ".safetensors" && entry.is_regular_file())
        files.push_back(entry.path().string());
  } catch (const fs::filesystem_error& e) {
    fail(dir, ": cannot list: ", e.code().message());
  }
  if (files.empty()) fail(dir, ": no *.safetensors files");
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) read_safetensors_file(f, store);
}

}  // namespace grok
