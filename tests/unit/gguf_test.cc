#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"
#include "io/gguf_writer.h"
#include "test_support.h"

namespace grok {
namespace {

// Little-endian byte builder for hand-made (often hostile) GGUF files.
struct Raw {
  std::vector<std::byte> b;
  template <typename T>
  Raw& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(const std::string& s) {
    u64(s.size());
    for (char c : s) b.push_back(std::byte(c));
    return *this;
  }
  Raw& zeros(size_t n) {
    b.resize(b.size() + n);
    return *this;
  }
  Raw& pad(size_t align) {
    b.resize((b.size() + align - 1) / align * align);
    return *this;
  }
  // A metadata pair with a u32 value.
  Raw& kv_u32(const std::string& k, uint32_t v) { return str(k).u32(4).u32(v); }
  Raw& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(uint32_t(ne.size()));
    for (uint64_t n : ne) u64(n);
    return u32(type).u64(offset);
  }
};

Raw header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Raw r;
  for (char c : std::string("GGUF")) r.b.push_back(std::byte(c));
  return r.u32(version).u64(n_tensors).u64(n_kv);
}

// Parses from a heap buffer of exactly the file's size, so ASan sees any over-read.
GgufFile parse(const std::vector<std::byte>& bytes) {
  auto buf = std::make_shared<std::vector<std::byte>>(bytes);
  return GgufFile::parse(buf, buf->data(), buf->size(), "mem.gguf");
}

void expect_parse_error(const Raw& r, const std::string& needle) {
  test::expect_error([&] { parse(r.b); }, "mem.gguf: ");
  test::expect_error([&] { parse(r.b); }, needle);
}

template <typename T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  std::vector<std::byte> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> b(c.size());
  std::memcpy(b.data(), c.data(), c.size());
  return b;
}

GgufValue number_array(GgufType t, std::vector<double> xs) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem_type = t;
  v.numbers = std::move(xs);
  return v;
}

// One key of every GGUF scalar type and several array types, and one tensor of every dtype.
GgufWriter sample_writer() {
  GgufWriter w;
  w.set_string("general.architecture", "grok");
  w.set_u32("u32", 4000000000u);
  w.set_i32("i32", -7);
  w.set_f32("f32", 0.5f);
  w.set_bool("bool", true);
  w.set_string_array("strings", {"a", "", "\xe2\x96\x81hi"});
  w.set_f32_array("f32s", {1.5f, -2.0f});
  w.set_i32_array("i32s", {1, -2, 3});
  auto scalar = [](GgufType t, int64_t i, uint64_t u, double f) {
    GgufValue v;
    v.type = t;
    v.i = i;
    v.u = u;
    v.f = f;
    return v;
  };
  w.set("u8", scalar(GgufType::U8, 0, 200, 0));
  w.set("i8", scalar(GgufType::I8, -100, 0, 0));
  w.set("u16", scalar(GgufType::U16, 0, 60000, 0));
  w.set("i16", scalar(GgufType::I16, -30000, 0, 0));
  w.set("u64", scalar(GgufType::U64, 0, std::numeric_limits<uint64_t>::max(), 0));
  w.set("i64", scalar(GgufType::I64, std::numeric_limits<int64_t>::min(), 0, 0));
  w.set("f64", scalar(GgufType::F64, 0, 0, 1e300));
  w.set("u8s", number_array(GgufType::U8, {0, 255}));
  w.set("bools", number_array(GgufType::BOOL, {1, 0}));
  w.set("u64s", number_array(GgufType::U64, {1e15}));
  w.set("f64s", number_array(GgufType::F64, {}));
  w.set_u32("general.alignment", 32);

  std::vector<float> f32(15);
  for (size_t k = 0; k < f32.size(); ++k) f32[k] = float(k) - 3.25f;
  w.add_tensor("f32", DType::F32, {3, 5}, bytes_of(f32));
  w.add_tensor("f16", DType::F16, {2, 4}, bytes_of(std::vector<uint16_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  w.add_tensor("bf16", DType::BF16, {7}, bytes_of(std::vector<uint16_t>{9, 8, 7, 6, 5, 4, 3}));
  std::vector<float> qx(128);
  for (size_t k = 0; k < qx.size(); ++k) qx[k] = float(k % 9) - 4.0f;
  w.add_tensor("q8", DType::Q8_0, {2, 64}, quantize_q8_0(qx.data(), 128));
  w.add_tensor("four_d", DType::F32, {1, 2, 1, 2}, bytes_of(std::vector<float>{1, 2, 3, 4}));
  w.add_tensor("empty", DType::F32, {0, 4}, {});
  return w;
}

std::string write_sample(const std::string& name) {
  const std::string path = test::temp_dir() + "/" + name;
  sample_writer().write(path);
  return path;
}

TEST(Gguf, RoundTripMetadata) {
  const GgufFile g = GgufFile::open(write_sample("meta.gguf"));
  EXPECT_EQ(g.version(), 3u);
  ASSERT_EQ(g.metadata().size(), 20u);
  EXPECT_EQ(g.metadata()[0].first, "general.architecture");  // writer order is kept
  EXPECT_EQ(g.get_string("general.architecture"), "grok");
  EXPECT_EQ(g.get_int("u32"), 4000000000);
  EXPECT_EQ(g.get_int("i32"), -7);
  EXPECT_EQ(g.get_float("f32"), 0.5);
  EXPECT_EQ(g.get_float("i32"), -7.0);  // integers read as floats too
  EXPECT_EQ(g.get_bool("bool"), true);
  EXPECT_EQ(*g.get_string_array("strings"), (std::vector<std::string>{"a", "", "\xe2\x96\x81hi"}));
  EXPECT_EQ(*g.get_number_array("f32s"), (std::vector<double>{1.5, -2.0}));
  EXPECT_EQ(*g.get_number_array("i32s"), (std::vector<double>{1, -2, 3}));
  EXPECT_EQ(g.get_int("u8"), 200);
  EXPECT_EQ(g.get_int("i8"), -100);
  EXPECT_EQ(g.get_int("u16"), 60000);
  EXPECT_EQ(g.get_int("i16"), -30000);
  EXPECT_EQ(g.find("u64")->u, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(g.find("u64")->type, GgufType::U64);
  EXPECT_EQ(g.get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(g.get_float("f64"), 1e300);
  EXPECT_EQ(*g.get_number_array("u8s"), (std::vector<double>{0, 255}));
  EXPECT_EQ(*g.get_number_array("bools"), (std::vector<double>{1, 0}));
  EXPECT_EQ(*g.get_number_array("u64s"), (std::vector<double>{1e15}));
  EXPECT_TRUE(g.get_number_array("f64s")->empty());
  EXPECT_EQ(g.find("f64s")->elem_type, GgufType::F64);
  EXPECT_EQ(g.get_int("general.alignment"), 32);

  EXPECT_EQ(g.find("absent"), nullptr);
  EXPECT_EQ(g.get_int("absent"), std::nullopt);
  EXPECT_EQ(g.get_string("absent"), std::nullopt);
  EXPECT_EQ(g.get_string_array("absent"), nullptr);
}

TEST(Gguf, TypedAccessorsRejectOtherTypes) {
  const std::string path = write_sample("types.gguf");
  const GgufFile g = GgufFile::open(path);
  test::expect_error([&] { g.get_int("general.architecture"); },
               path + ": metadata key 'general.architecture' has type string, expected an integer");
  test::expect_error([&] { g.get_int("f32"); }, "has type f32, expected an integer");
  test::expect_error([&] { g.get_int("u64"); }, "does not fit in int64");
  test::expect_error([&] { g.get_float("bool"); }, "has type bool, expected a number");
  test::expect_error([&] { g.get_bool("u32"); }, "has type u32, expected bool");
  test::expect_error([&] { g.get_string("strings"); }, "has type array[string], expected string");
  test::expect_error([&] { g.get_string_array("f32s"); }, "has type array[f32], expected array[string]");
  test::expect_error([&] { g.get_number_array("strings"); }, "metadata key 'strings' has type array[string]");
  test::expect_error([&] { g.get_number_array("u32"); }, "has type u32");
}

TEST(Gguf, RoundTripTensors) {
  const GgufWriter w = sample_writer();
  const std::string path = test::temp_dir() + "/tensors.gguf";
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const GgufFile g = GgufFile::open(path);
  const TensorStore& s = g.tensors();
  ASSERT_EQ(s.tensors().size(), 6u);

  const TensorInfo& f32 = s.get("f32", path);
  EXPECT_EQ(f32.dtype, DType::F32);
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(f32.nbytes, 60u);
  EXPECT_EQ(f32.file, path);
  float v;
  std::memcpy(&v, f32.data + 4 * 14, 4);
  EXPECT_EQ(v, 14 - 3.25f);

  const TensorInfo& f16 = s.get("f16", path);
  EXPECT_EQ(f16.dtype, DType::F16);
  EXPECT_EQ(f16.shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(std::memcmp(f16.data, bytes_of(std::vector<uint16_t>{1, 2, 3, 4, 5, 6, 7, 8}).data(), 16), 0);

  const TensorInfo& bf16 = s.get("bf16", path);
  EXPECT_EQ(bf16.dtype, DType::BF16);
  EXPECT_EQ(bf16.shape, (std::vector<int64_t>{7}));
  EXPECT_EQ(bf16.nbytes, 14u);

  const TensorInfo& q8 = s.get("q8", path);
  EXPECT_EQ(q8.dtype, DType::Q8_0);
  EXPECT_EQ(q8.shape, (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(q8.nbytes, 4u * 34);
  std::vector<float> back(128);
  dequantize_q8_0(q8.data, back.data(), 128);
  for (size_t k = 0; k < back.size(); ++k) EXPECT_NEAR(back[k], float(k % 9) - 4.0f, 0.02f) << k;

  EXPECT_EQ(s.get("four_d", path).shape, (std::vector<int64_t>{1, 2, 1, 2}));
  EXPECT_EQ(s.get("empty", path).nbytes, 0u);
  EXPECT_EQ(s.get("empty", path).shape, (std::vector<int64_t>{0, 4}));
  for (const TensorInfo& t : s.tensors()) EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u) << t.name;

  // The store outlives the GgufFile and keeps the map alive.
  std::shared_ptr<TensorStore> kept = GgufFile::open(path).share_tensors();
  std::memcpy(&v, kept->get("f32", path).data, 4);
  EXPECT_EQ(v, -3.25f);
}

TEST(Gguf, WriterRejectsBadTensorsAndAlignment) {
  GgufWriter w;
  test::expect_error([&] { w.add_tensor("x", DType::F32, {2}, std::vector<std::byte>(4)); },
               "has 4 bytes, expected 8");
  test::expect_error([&] { w.add_tensor("x", DType::I8, {2}, std::vector<std::byte>(3)); }, "has 3 bytes, expected 2");
  test::expect_error(
      [&] {
        w.add_tensor("x", DType::F32, {1, 1, 1, 1, 1}, std::vector<std::byte>(4));
      },
      "5 dimensions");
  test::expect_error(
      [&] {
        w.add_tensor("x", DType::Q8_0, {32, 16}, std::vector<std::byte>(16 * 34));
      },
      "not whole Q8_0 blocks");
  test::expect_error([&] { w.add_tensor("x", DType::F32, {-1}, {}); }, "negative");
  w.add_tensor("x", DType::F32, {1}, std::vector<std::byte>(4));
  test::expect_error([&] { w.add_tensor("x", DType::F32, {1}, std::vector<std::byte>(4)); }, "added twice");
  test::expect_error([&] { w.set_u32("general.alignment", 64); }, "general.alignment");
  test::expect_error([&] { w.write(test::temp_dir() + "/no/such/dir.gguf"); }, "cannot create");
}

TEST(Gguf, SettingAKeyAgainReplacesIt) {
  GgufWriter w;
  w.set_u32("a", 1);
  w.set_string("b", "x");
  w.set_u32("a", 2);
  const std::string path = test::temp_dir() + "/replace.gguf";
  w.write(path);
  const GgufFile g = GgufFile::open(path);
  ASSERT_EQ(g.metadata().size(), 2u);
  EXPECT_EQ(g.metadata()[0].first, "a");
  EXPECT_EQ(g.get_int("a"), 2);
}

TEST(Gguf, EveryTruncationIsAnError) {
  const std::vector<std::byte> full = read_file(write_sample("trunc.gguf"));
  // Everything up to the end of the last tensor's data is required; only the
  // final padding may be cut.
  auto owned = std::make_shared<std::vector<std::byte>>(full);
  const GgufFile g = GgufFile::parse(owned, owned->data(), owned->size(), "mem.gguf");
  uint64_t end = 0;
  for (const TensorInfo& t : g.tensors().tensors())
    end = std::max(end, uint64_t(t.data - owned->data()) + t.nbytes);
  ASSERT_GT(end, 0u);
  ASSERT_LE(end, full.size());
  for (size_t len = 0; len < end; ++len) {
    const std::vector<std::byte> cut(full.begin(), full.begin() + std::ptrdiff_t(len));
    EXPECT_THROW(parse(cut), Error) << "truncated to " << len << " bytes";
  }
  EXPECT_NO_THROW(parse(std::vector<std::byte>(full.begin(), full.begin() + std::ptrdiff_t(end))));
}

TEST(Gguf, VersionTwoAndNoTensors) {
  Raw r = header(0, 1, 2);
  r.kv_u32("k", 5);
  const GgufFile g = parse(r.b);  // no data section at all
  EXPECT_EQ(g.version(), 2u);
  EXPECT_EQ(g.get_int("k"), 5);
  EXPECT_TRUE(g.tensors().tensors().empty());
}

// ggml's type numbers for the block formats, as llama.cpp writes them; the
// writer round trip alone would not catch a number both sides get wrong.
TEST(Gguf, GgmlBlockTypeNumbers) {
  const struct {
    uint32_t ggml;
    DType dtype;
    uint64_t bytes;  // of one 256-element row
  } types[] = {{2, DType::Q4_0, 8 * 18},  {6, DType::Q5_0, 8 * 22}, {7, DType::Q5_1, 8 * 24}, {8, DType::Q8_0, 8 * 34},
               {12, DType::Q4_K, 144},    {13, DType::Q5_K, 176},  {14, DType::Q6_K, 210}};
  Raw r = header(std::size(types), 0);
  uint64_t offset = 0;
  for (const auto& t : types) {
    r.tensor("t" + std::to_string(t.ggml), {256}, t.ggml, offset);
    offset += (t.bytes + 31) / 32 * 32;
  }
  r.pad(32).zeros(offset);
  const GgufFile g = parse(r.b);
  for (const auto& t : types) {
    const TensorInfo& ti = g.tensors().get("t" + std::to_string(t.ggml), "");
    EXPECT_EQ(ti.dtype, t.dtype) << t.ggml;
    EXPECT_EQ(ti.nbytes, t.bytes) << t.ggml;
  }
}

TEST(Gguf, HonoursAlignmentKey) {
  Raw r = header(2, 1);
  r.kv_u32("general.alignment", 64);
  r.tensor("a", {4}, 0, 0).tensor("b", {4}, 0, 64).pad(64).zeros(64 + 16);
  float one = 1.0f;
  std::memcpy(r.b.data() + r.b.size() - 16, &one, 4);
  const GgufFile g = parse(r.b);
  float v;
  std::memcpy(&v, g.tensors().get("b", "").data, 4);
  EXPECT_EQ(v, 1.0f);
}

TEST(Gguf, RejectsBadHeaders) {
  Raw bad_magic;
  for (char c : std::string("GGUG")) bad_magic.b.push_back(std::byte(c));
  bad_magic.u32(3).u64(0).u64(0);
  expect_parse_error(bad_magic, "not a GGUF file");
  expect_parse_error(header(0, 0, 1), "unsupported GGUF version 1");
  expect_parse_error(header(0, 0, 4), "unsupported GGUF version 4");
  expect_parse_error(Raw{}, "file ends inside the GGUF magic");
  expect_parse_error(header(0, uint64_t(1) << 62), "metadata count 4611686018427387904 cannot fit");
  expect_parse_error(header(uint64_t(-1), 0), "tensor count 18446744073709551615 cannot fit");
}

TEST(Gguf, RejectsBadMetadata) {
  {
    Raw r = header(0, 1);
    r.u64(uint64_t(1) << 63).zeros(16);  // key length meant to exhaust memory
    expect_parse_error(r, "metadata key #0 has length 9223372036854775808");
  }
  {
    Raw r = header(0, 1);
    r.str("s").u32(8).u64(uint64_t(-2)).zeros(8);
    expect_parse_error(r, "metadata key 's' has length");
  }
  {
    Raw r = header(0, 1);
    r.str("arr").u32(9).u32(4).u64(uint64_t(1) << 60).zeros(64);  // huge array count
    expect_parse_error(r, "metadata key 'arr' claims 1152921504606846976 elements of u32");
  }
  {
    Raw r = header(0, 1);
    r.str("arr").u32(9).u32(8).u64(100).zeros(100);  // strings need at least 8 bytes each
    expect_parse_error(r, "claims 100 elements of string");
  }
  {
    Raw r = header(0, 2);
    r.kv_u32("dup", 1).kv_u32("dup", 2);
    expect_parse_error(r, "metadata key 'dup' is present twice");
  }
  {
    Raw r = header(0, 1);
    r.str("nest").u32(9).u32(9).u64(1).u32(4).u64(0);
    expect_parse_error(r, "metadata key 'nest' is a nested array");
  }
  {
    Raw r = header(0, 1);
    r.str("t").u32(13).u32(0);
    expect_parse_error(r, "metadata key 't' has unknown value type 13");
  }
  {
    Raw r = header(0, 1);
    r.str("b").u32(7).put<uint8_t>(2);
    expect_parse_error(r, "metadata key 'b' is a bool with byte value 2");
  }
  {
    Raw r = header(0, 1);
    r.str("bad\nname").u32(13);
    expect_parse_error(r, "metadata key 'bad\\x0aname'");  // stays one line
  }
  for (uint32_t a : {0u, 48u}) {
    Raw r = header(0, 1);
    r.kv_u32("general.alignment", a);
    expect_parse_error(r, "general.alignment " + std::to_string(a) + " is not a power of two");
  }
  {
    Raw r = header(0, 1);
    r.str("general.alignment").u32(8).str("32");
    expect_parse_error(r, "'general.alignment' has type string, expected an integer");
  }
}

TEST(Gguf, RejectsBadTensors) {
  {
    Raw r = header(1, 0);
    r.tensor("w", {4}, 0, 0).pad(32).zeros(8);
    expect_parse_error(r, "tensor 'w' data (16 bytes at offset 0) runs past the end");
  }
  {
    Raw r = header(1, 0);
    r.tensor("w", {4}, 0, uint64_t(-32)).pad(32).zeros(16);  // offset + size would wrap
    expect_parse_error(r, "runs past the end");
  }
  {
    Raw r = header(1, 0);
    r.tensor("w", {4}, 0, 8).pad(32).zeros(64);
    expect_parse_error(r, "tensor 'w' data offset 8 is not a multiple of the alignment 32");
  }
  {
    Raw r = header(1, 0);
    r.tensor("w", {1, 1, 1, 1, 1}, 0, 0).pad(32).zeros(32);
    expect_parse_error(r, "tensor 'w' has 5 dimensions (at most 4)");
  }
  {
    Raw r = header(1, 0);
    r.tensor("w", {32}, 3, 0).pad(32).zeros(64);
    expect_parse_error(r, "tensor 'w' has unsupported ggml type 3 (Q4_1)");
  }
  {
    Raw r = header(1, 0);
    r.tensor("w", {32}, 1000, 0).pad(32).zeros(64);
    expect_parse_error(r, "tensor 'w' has unsupported ggml type 1000;");
  }
  {
    Raw r = header(2, 0);
    r.tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad(32).zeros(64);
    expect_parse_error(r, "tensor 'w' is present twice");
  }
  {
    Raw r = header(1, 0);
    r.tensor("q", {16, 2}, 8, 0).pad(32).zeros(64);
    expect_parse_error(r, "tensor 'q' rows of 16 elements are not whole Q8_0 blocks");
  }
  {
    Raw r = header(1, 0);
    r.tensor("big", {uint64_t(1) << 32, uint64_t(1) << 32}, 0, 0).pad(32);
    expect_parse_error(r, "tensor 'big' element count overflows");
  }
  {
    Raw r = header(1, 0);
    r.tensor("big", {uint64_t(1) << 62}, 0, 0).pad(32);
    expect_parse_error(r, "tensor 'big' byte size overflows");
  }
  {
    Raw r = header(1, 0);
    r.tensor("neg", {uint64_t(-1)}, 0, 0).pad(32);
    expect_parse_error(r, "tensor 'neg' has dimension 0 of size 18446744073709551615");
  }
  {
    Raw r = header(1, 0);
    r.u64(uint64_t(1) << 40).zeros(24);
    expect_parse_error(r, "tensor name #0 has length 1099511627776");
  }
}

TEST(Gguf, OracleTinyModel) {
  GROK_REQUIRE_SHARED(path, "oracle/tiny/grok-tiny-random-f32.gguf");
  const GgufFile g = GgufFile::open(path);
  EXPECT_EQ(g.tensors().tensors().size(), 26u);
  EXPECT_EQ(g.get_string("general.architecture"), "grok");
  const TensorInfo& emb = g.tensors().get("token_embd.weight", path);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{131072, 64}));
  EXPECT_EQ(emb.dtype, DType::F32);
  EXPECT_EQ(g.get_string_array("tokenizer.ggml.tokens")->size(), 131072u);
}

// fuzz/seeds/gguf/tiny.gguf, the corpus scripts/fuzz starts gguf_fuzz from:
// one tensor of each common type plus typical metadata. The test writes it
// afresh and checks both that and the committed seed hold exactly this
// content (so the seed cannot silently rot into a file every run rejects);
// GROK_WRITE_FUZZ_SEEDS=<repository root> rewrites the committed one.
void check_fuzz_seed(const std::string& path) {
  SCOPED_TRACE(path);
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_LT(std::filesystem::file_size(path), 4096u);
  const GgufFile g = GgufFile::open(path);
  EXPECT_EQ(g.get_string("general.architecture"), "grok");
  EXPECT_EQ(g.get_int("grok.block_count"), 1);
  EXPECT_EQ(g.get_float("grok.rope.freq_base"), 10000.0);
  EXPECT_EQ(g.get_bool("tokenizer.ggml.add_bos_token"), false);
  ASSERT_NE(g.get_string_array("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(*g.get_string_array("tokenizer.ggml.tokens"), (std::vector<std::string>{"<pad>", "a"}));
  ASSERT_NE(g.get_number_array("tokenizer.ggml.token_type"), nullptr);
  EXPECT_EQ(*g.get_number_array("tokenizer.ggml.token_type"), (std::vector<double>{3, 1}));
  ASSERT_EQ(g.tensors().tensors().size(), 4u);
  const TensorInfo& f32 = g.tensors().get("f32", path);
  EXPECT_EQ(f32.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(reinterpret_cast<const float*>(f32.data)[3], 4.0f);
  EXPECT_EQ(g.tensors().get("f16", path).dtype, DType::F16);
  EXPECT_EQ(g.tensors().get("bf16", path).dtype, DType::BF16);
  const TensorInfo& q8 = g.tensors().get("q8", path);
  EXPECT_EQ(q8.dtype, DType::Q8_0);
  EXPECT_EQ(q8.nbytes, 34u);  // one block: fp16 scale + 32 int8
}

TEST(Gguf, FuzzSeed) {
  GgufWriter w;
  w.set_string("general.architecture", "grok");
  w.set_u32("grok.block_count", 1);
  w.set_f32("grok.rope.freq_base", 10000.0f);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_string_array("tokenizer.ggml.tokens", {"<pad>", "a"});
  w.set_f32_array("tokenizer.ggml.scores", {0.0f, -1.0f});
  w.set_i32_array("tokenizer.ggml.token_type", {3, 1});
  w.add_tensor("f32", DType::F32, {2, 2}, bytes_of(std::vector<float>{1, 2, 3, 4}));
  w.add_tensor("f16", DType::F16, {2}, bytes_of(std::vector<uint16_t>{0x3c00, 0xc000}));
  w.add_tensor("bf16", DType::BF16, {2}, bytes_of(std::vector<uint16_t>{0x3f80, 0xc000}));
  std::vector<float> x(32, 0.5f);
  w.add_tensor("q8", DType::Q8_0, {32}, quantize_q8_0(x.data(), 32));
  const std::string rel = "/fuzz/seeds/gguf/tiny.gguf";
  if (const char* root = std::getenv("GROK_WRITE_FUZZ_SEEDS")) w.write(root + rel);
  const std::string fresh = test::temp_dir() + "/fuzz-seed-tiny.gguf";
  w.write(fresh);
  check_fuzz_seed(fresh);
  check_fuzz_seed(GROK_SOURCE_DIR + rel);
}

}  // namespace
}  // namespace grok
