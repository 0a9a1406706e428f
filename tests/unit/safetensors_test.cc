#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "test_support.h"

namespace grok {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A safetensors file: u64 header length, header text, data.
std::vector<std::byte> make_st(const std::string& header, const std::vector<std::byte>& data = {}) {
  std::vector<std::byte> b(8 + header.size());
  const uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  std::memcpy(b.data() + 8, header.data(), header.size());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<std::byte> concat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Parses from a heap buffer of exactly the file's size, so ASan sees any over-read.
TensorStore parse(const std::vector<std::byte>& bytes) {
  auto buf = std::make_shared<std::vector<std::byte>>(bytes);
  TensorStore s;
  parse_safetensors(buf, buf->data(), buf->size(), "mem.safetensors", s);
  return s;
}

void expect_parse_error(const std::vector<std::byte>& file, const std::string& needle) {
  test::expect_error([&] { parse(file); }, "mem.safetensors: ");
  test::expect_error([&] { parse(file); }, needle);
}
void expect_header_error(const std::string& header, const std::string& needle, size_t data_bytes = 64) {
  expect_parse_error(make_st(header, std::vector<std::byte>(data_bytes)), needle);
}

void write_file(const std::string& path, const std::vector<std::byte>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::string fresh_dir(const std::string& name) {
  const std::string d = test::temp_dir() + "/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// One tensor of every supported dtype, plus a scalar, an empty tensor and metadata.
std::vector<std::byte> sample_file(size_t header_pad = 0) {
  const auto f32 = bytes_of(std::vector<float>{1, 2, 3, 4, 5, 6});
  const auto f16 = bytes_of(std::vector<uint16_t>{0x3c00, 0x4000, 0x4200, 0x4400});
  const auto bf16 = bytes_of(std::vector<uint16_t>{0x3f80, 0xbf80});
  const auto i8 = bytes_of(std::vector<int8_t>{-1, 2, -3});
  const auto scalar = bytes_of(std::vector<float>{7.5f});
  json h;
  h["__metadata__"] = {{"format", "pt"}};
  h["w.f32"] = {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}};
  h["w.f16"] = {{"dtype", "F16"}, {"shape", {4}}, {"data_offsets", {24, 32}}};
  h["w.bf16"] = {{"dtype", "BF16"}, {"shape", {1, 2}}, {"data_offsets", {32, 36}}};
  h["w.i8"] = {{"dtype", "I8"}, {"shape", {3}}, {"data_offsets", {36, 39}}};
  h["w.empty"] = {{"dtype", "F32"}, {"shape", {0, 5}}, {"data_offsets", {39, 39}}};
  h["w.scalar"] = {{"dtype", "F32"}, {"shape", json::array()}, {"data_offsets", {39, 43}}};
  const std::string text = h.dump() + std::string(header_pad, ' ');
  return make_st(text, concat({f32, f16, bf16, i8, scalar}));
}

void check_sample(const TensorStore& s, const std::string& file) {
  ASSERT_EQ(s.tensors().size(), 6u);
  EXPECT_EQ(s.tensors()[0].name, "w.f32");  // data order, not key order
  const TensorInfo& f32 = s.get("w.f32", file);
  EXPECT_EQ(f32.dtype, DType::F32);
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f32.nbytes, 24u);
  EXPECT_EQ(f32.file, file);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f32.data) % 4, 0u);
  EXPECT_EQ(reinterpret_cast<const float*>(f32.data)[5], 6.0f);
  const TensorInfo& f16 = s.get("w.f16", file);
  EXPECT_EQ(f16.dtype, DType::F16);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f16.data) % 2, 0u);
  EXPECT_EQ(reinterpret_cast<const uint16_t*>(f16.data)[3], 0x4400);
  const TensorInfo& bf16 = s.get("w.bf16", file);
  EXPECT_EQ(bf16.dtype, DType::BF16);
  EXPECT_EQ(bf16.shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(bf16.data) % 2, 0u);
  EXPECT_EQ(reinterpret_cast<const uint16_t*>(bf16.data)[1], 0xbf80);
  const TensorInfo& i8 = s.get("w.i8", file);
  EXPECT_EQ(i8.dtype, DType::I8);
  EXPECT_EQ(reinterpret_cast<const int8_t*>(i8.data)[2], -3);
  EXPECT_EQ(s.get("w.empty", file).nbytes, 0u);
  const TensorInfo& scalar = s.get("w.scalar", file);
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.numel(), 1);
  EXPECT_EQ(reinterpret_cast<const float*>(scalar.data)[0], 7.5f);
}

TEST(Safetensors, RoundTripFile) {
  const std::string path = test::temp_dir() + "/sample.safetensors";
  write_file(path, sample_file());
  TensorStore s;
  read_safetensors_file(path, s);
  check_sample(s, path);
}

TEST(Safetensors, UnalignedDataLoadsCorrectly) {
  // Pad the header so the data section starts at every offset mod 4; tensors
  // that land unaligned are copied into aligned buffers.
  for (size_t pad = 0; pad < 4; ++pad) {
    SCOPED_TRACE(pad);
    check_sample(parse(sample_file(pad)), "mem.safetensors");
    const std::string path = test::temp_dir() + "/unaligned.safetensors";
    write_file(path, sample_file(pad));
    TensorStore s;
    read_safetensors_file(path, s);
    check_sample(s, path);
  }
}

TEST(Safetensors, EveryTruncationIsAnError) {
  const auto full = sample_file();
  for (size_t len = 0; len < full.size(); ++len)
    EXPECT_THROW(parse(std::vector<std::byte>(full.begin(), full.begin() + std::ptrdiff_t(len))), Error)
        << len;
}

TEST(Safetensors, RejectsBadHeaderLength) {
  expect_parse_error(std::vector<std::byte>(5), "too short for a safetensors header");
  auto b = make_st("{}");
  const uint64_t n = 1000;
  std::memcpy(b.data(), &n, 8);
  expect_parse_error(b, "header length 1000 exceeds the 2 bytes after it");
  const uint64_t huge = ~uint64_t(0);
  std::memcpy(b.data(), &huge, 8);
  expect_parse_error(b, "header length 18446744073709551615 exceeds");
}

TEST(Safetensors, RejectsInvalidJson) {
  expect_header_error("{", "invalid JSON");
  expect_header_error("{\"a\": 1,}", "invalid JSON");
  expect_header_error("\"\xff\"", "invalid JSON");
  expect_header_error(std::string(100000, '['), "invalid JSON");  // deep nesting must not overflow the stack
  expect_header_error("[]", "header must be a JSON object, got array");
  expect_header_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                          "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                      "JSON key 'a' is present twice");
}

TEST(Safetensors, RejectsWrongFieldTypes) {
  expect_header_error(R"({"t": 5})", "tensor 't' must be a JSON object, got number");
  expect_header_error(R"({"t": {"shape": [1], "data_offsets": [0, 4]}})",
                      "tensor 't' needs a string \"dtype\"");
  expect_header_error(R"({"t": {"dtype": 0, "shape": [1], "data_offsets": [0, 4]}})",
                      "needs a string \"dtype\"");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": "1", "data_offsets": [0, 4]}})",
                      "needs an array \"shape\"");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
                      "tensor 't' shape entries must be a non-negative integer, got number");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})",
                      "non-negative integer");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [null], "data_offsets": [0, 4]}})",
                      "non-negative integer, got null");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1]}})", "needs \"data_offsets\" [begin, end]");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})",
                      "needs \"data_offsets\"");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})",
                      "data_offsets must be a non-negative integer");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})",
                      "data_offsets must be a non-negative");
  expect_header_error(R"({"__metadata__": [1]})", "__metadata__ must be a JSON object");
  expect_header_error(R"({"__metadata__": {"k": 1}})", "__metadata__ value 'k' must be a string");
}

TEST(Safetensors, RejectsBadSizesAndOffsets) {
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})",
                      "tensor 't' of shape [2] and dtype F32 needs 8 bytes but data_offsets span 4");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [60, 68]}})",
                      "tensor 't' data_offsets [60, 68] run past the 64-byte data section");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [0], "data_offsets": [65, 65]}})", "run past");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", "run backwards");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}})",
                      "tensor 't' element count overflows");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})",
                      "tensor 't' byte size overflows");
  expect_header_error(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551615, 3]}})",
                      "run backwards");
}

TEST(Safetensors, RejectsUnknownDtype) {
  expect_header_error(R"({"t": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})",
                      "tensor 't' has unsupported dtype 'F64'");
}

TEST(Safetensors, DuplicateAcrossFilesIsAnError) {
  TensorStore s = parse(sample_file());
  auto buf = std::make_shared<std::vector<std::byte>>(sample_file());
  test::expect_error([&] { parse_safetensors(buf, buf->data(), buf->size(), "again.safetensors", s); },
               "again.safetensors: tensor 'w.f32' is present twice");
}

std::vector<std::byte> one_tensor_file(const std::string& name, float v) {
  json h;
  h[name] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}};
  return make_st(h.dump(), bytes_of(std::vector<float>{v}));
}

TEST(SafetensorsFolder, WithoutIndexLoadsEveryFileSorted) {
  const std::string d = fresh_dir("noindex");
  write_file(d + "/b.safetensors", one_tensor_file("b", 2));
  write_file(d + "/a.safetensors", one_tensor_file("a", 1));
  write_file(d + "/notes.txt", {});
  TensorStore s;
  read_safetensors_folder(d, s);
  ASSERT_EQ(s.tensors().size(), 2u);
  EXPECT_EQ(s.tensors()[0].name, "a");
  EXPECT_EQ(s.tensors()[1].file, d + "/b.safetensors");
}

TEST(SafetensorsFolder, EmptyOrMissingFolder) {
  const std::string d = fresh_dir("empty");
  TensorStore s;
  test::expect_error([&] { read_safetensors_folder(d, s); }, d + ": no *.safetensors files");
  test::expect_error([&] { read_safetensors_folder(d + "/nope", s); }, d + "/nope: not a directory");
}

std::string index_json(const json& weight_map) {
  return json{{"metadata", json::object()}, {"weight_map", weight_map}}.dump();
}

void write_text(const std::string& path, const std::string& text) {
  write_file(path, std::vector<std::byte>(reinterpret_cast<const std::byte*>(text.data()),
                                          reinterpret_cast<const std::byte*>(text.data()) + text.size()));
}

TEST(SafetensorsFolder, IndexedShards) {
  const std::string d = fresh_dir("indexed");
  write_file(d + "/model-00001-of-00002.safetensors", one_tensor_file("x", 1));
  write_file(d + "/model-00002-of-00002.safetensors", one_tensor_file("y", 2));
  write_file(d + "/stray.safetensors", one_tensor_file("z", 3));  // not in the index: not loaded
  write_text(d + "/model.safetensors.index.json", index_json({{"x", "model-00001-of-00002.safetensors"},
                                                              {"y", "model-00002-of-00002.safetensors"}}));
  TensorStore s;
  read_safetensors_folder(d, s);
  ASSERT_EQ(s.tensors().size(), 2u);
  EXPECT_EQ(s.get("y", d).file, d + "/model-00002-of-00002.safetensors");
  EXPECT_EQ(s.find("z"), nullptr);
}

TEST(SafetensorsFolder, ShardMayHoldTensorsTheIndexOmits) {
  const std::string d = fresh_dir("extra");
  json h;
  h["x"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {0, 4}}};
  h["extra"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {4, 8}}};
  write_file(d + "/s.safetensors", make_st(h.dump(), std::vector<std::byte>(8)));
  write_text(d + "/model.safetensors.index.json", index_json({{"x", "s.safetensors"}}));
  TensorStore s;
  read_safetensors_folder(d, s);
  EXPECT_NE(s.find("extra"), nullptr);
}

TEST(SafetensorsFolder, RejectsBadIndexes) {
  const std::string d = fresh_dir("badindex");
  write_file(d + "/s1.safetensors", one_tensor_file("x", 1));
  write_file(d + "/s2.safetensors", one_tensor_file("y", 2));
  const std::string index = d + "/model.safetensors.index.json";
  auto expect_index_error = [&](const std::string& text, const std::string& needle) {
    write_text(index, text);
    auto load = [&] {
      TensorStore s;
      read_safetensors_folder(d, s);
    };
    test::expect_error(load, index + ": ");
    test::expect_error(load, needle);
  };
  expect_index_error(
      index_json({{"x", "s1.safetensors"}, {"missing", "s1.safetensors"}}),
      "tensor 'missing' is listed in shard 's1.safetensors' but that shard does not contain it");
  expect_index_error(index_json({{"x", "s2.safetensors"}}), "tensor 'x' is listed in shard 's2.safetensors'");
  expect_index_error(index_json({{"x", "../s1.safetensors"}}),
                     "names shard '../s1.safetensors', which is not a file name inside");
  expect_index_error(index_json({{"x", "/etc/passwd"}}), "which is not a file name");
  expect_index_error(index_json({{"x", ".."}}), "which is not a file name");
  expect_index_error(index_json({{"x", ""}}), "which is not a file name");
  expect_index_error(index_json({{"x", "nope.safetensors"}}),
                     "shard 'nope.safetensors' (named for tensor 'x') is not a file");
  expect_index_error(index_json({{"x", 1}}), "weight_map entry 'x' must be a string");
  expect_index_error(R"({"metadata": {}})", "needs an object \"weight_map\"");
  expect_index_error("{", "invalid JSON");
  expect_index_error("[]", "must be a JSON object");
}

TEST(SafetensorsFolder, OracleTinyHf) {
  GROK_REQUIRE_SHARED(dir, "oracle/tiny/hf");
  TensorStore s;
  read_safetensors_folder(dir, s);
  const TensorInfo& emb = s.get("transformer.in_out_embed.weight", dir);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{131072, 64}));
  EXPECT_EQ(emb.nbytes, uint64_t(131072) * 64 * dtype_block_bytes(emb.dtype));
}

// fuzz/seeds/safetensors/tiny.safetensors, the corpus scripts/fuzz starts
// safetensors_fuzz from, is sample_file(1) (every dtype, an empty tensor, a
// header padded off alignment). Checks a fresh copy and the committed seed
// both read back as the sample; GROK_WRITE_FUZZ_SEEDS=<repository root>
// rewrites the committed one.
TEST(Safetensors, FuzzSeed) {
  const std::string rel = "/fuzz/seeds/safetensors/tiny.safetensors";
  if (const char* root = std::getenv("GROK_WRITE_FUZZ_SEEDS")) write_file(root + rel, sample_file(1));
  const std::string fresh = test::temp_dir() + "/fuzz-seed-tiny.safetensors";
  write_file(fresh, sample_file(1));
  for (const std::string& seed : {fresh, GROK_SOURCE_DIR + rel}) {
    SCOPED_TRACE(seed);
    ASSERT_TRUE(fs::exists(seed));
    EXPECT_LT(fs::file_size(seed), 4096u);
    TensorStore s;
    read_safetensors_file(seed, s);
    check_sample(s, seed);
  }
}

}  // namespace
}  // namespace grok
