// The streaming side of GgufWriter: declare tensors, then supply their bytes
// in order, in pieces, straight to disk.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/quant.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "test_support.h"

namespace grok {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte((i * 31 + size_t(seed) * 7) & 0xff);
  return b;
}

struct Spec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

std::vector<Spec> specs() {
  std::vector<float> x(2 * 256);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 17) - 8.0f;
  return {{"a", DType::F32, {3, 5}, pattern(60, 1)},
          {"empty", DType::F32, {0, 4}, {}},
          {"b", DType::Q4_K, {2, 256}, quantize(DType::Q4_K, x.data(), 512)},
          {"c", DType::Q8_0, {7, 32}, pattern(7 * 34, 3)},
          {"d", DType::F16, {1}, pattern(2, 4)}};
}

TEST(GgufStream, PiecesGiveTheSameFileAsInMemory) {
  GgufWriter mem, streamed;
  for (GgufWriter* w : {&mem, &streamed}) {
    w->set_string("general.architecture", "test");
    w->set_u32("n", 7);
  }
  for (const Spec& s : specs()) {
    mem.add_tensor(s.name, s.dtype, s.shape, s.bytes);
    // "c" goes in with its bytes: the stream writes it when its turn comes.
    if (s.name == "c")
      streamed.add_tensor(s.name, s.dtype, s.shape, s.bytes);
    else
      streamed.declare_tensor(s.name, s.dtype, s.shape);
  }
  const std::string dir = test::temp_dir();
  mem.write(dir + "/mem.gguf");
  {
    GgufStream out = streamed.begin(dir + "/stream.gguf");
    EXPECT_FALSE(std::filesystem::exists(dir + "/stream.gguf"));
    for (const Spec& s : specs()) {
      if (s.name == "c" || s.bytes.empty()) continue;
      EXPECT_EQ(out.current_tensor(), s.name);
      EXPECT_EQ(out.current_bytes_left(), s.bytes.size());
      // Uneven pieces: 1 byte, then 7, then the rest.
      size_t at = 0;
      for (size_t piece : {size_t(1), size_t(7), s.bytes.size()}) {
        const size_t n = std::min(piece, s.bytes.size() - at);
        out.write(s.bytes.data() + at, n);
        at += n;
      }
    }
    EXPECT_EQ(out.current_tensor(), "");
    EXPECT_EQ(out.bytes_written(), streamed.file_size());
    out.finish();
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/stream.gguf.tmp"));
  EXPECT_EQ(slurp(dir + "/stream.gguf"), slurp(dir + "/mem.gguf"));
  EXPECT_EQ(std::filesystem::file_size(dir + "/mem.gguf"), mem.file_size());
  const GgufFile g = GgufFile::open(dir + "/stream.gguf");
  for (const Spec& s : specs()) {
    const TensorInfo& t = g.tensors().get(s.name, "test");
    EXPECT_EQ(t.shape, s.shape);
    EXPECT_EQ(std::vector<std::byte>(t.data, t.data + t.nbytes), s.bytes) << s.name;
  }
}

TEST(GgufStream, MistakesAreErrorsAndLeaveNoFile) {
  const std::string path = test::temp_dir() + "/bad-stream.gguf";
  GgufWriter w;
  w.declare_tensor("a", DType::F32, {4});
  w.declare_tensor("b", DType::Q8_0, {32});
  test::expect_error([&] { w.write(path); }, "declared without bytes");
  test::expect_error([&] { w.declare_tensor("a", DType::F32, {1}); }, "added twice");
  test::expect_error([&] { w.declare_tensor("q", DType::Q6_K, {2, 32}); }, "not whole Q6_K blocks");
  {
    GgufStream out = w.begin(path);
    test::expect_error([&] { out.write(pattern(20, 0)); }, "runs past the end of tensor 'a'");
    out.write(pattern(16, 0));
    out.write(pattern(30, 0));
    test::expect_error([&] { out.finish(); }, "tensor 'b' is incomplete (30 of 34 bytes written)");
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  // Abandoned: the temporary file is gone and nothing took the real name.
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(std::filesystem::exists(path));
  {
    GgufStream out = w.begin(path);
    out.write(pattern(16, 0));
    out.write(pattern(34, 0));
    test::expect_error([&] { out.write(pattern(1, 0)); }, "after the last tensor");
    out.finish();
  }
  EXPECT_EQ(GgufFile::open(path).tensors().tensors().size(), 2u);
  test::expect_error([&] { GgufWriter().begin(test::temp_dir() + "/no/such/dir/x.gguf"); }, "cannot create");
}

}  // namespace
}  // namespace grok
