// The checkpoint pickle reader: the released grammar parses, and hostile or
// broken pickles are refused with a message naming what is wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/pickle.h"
#include "test_support.h"

namespace grok {
namespace {

// Emits pickle opcodes the way protocol 4 writes a checkpoint file.
class Pickle {
 public:
  Pickle& op(uint8_t c) { return raw(std::string(1, char(c))); }
  Pickle& raw(const std::string& s) {
    bytes_ += s;
    return *this;
  }
  Pickle& str(const std::string& s) {  // SHORT_BINUNICODE + MEMOIZE
    op(0x8c).op(uint8_t(s.size())).raw(s);
    return op(0x94);
  }
  Pickle& global(const std::string& module, const std::string& name) { return str(module).str(name).op(0x93).op(0x94); }
  Pickle& int1(uint8_t v) { return op('K').op(v); }
  Pickle& int4(int32_t v) {
    op('J');
    return raw(std::string(reinterpret_cast<const char*>(&v), 4));
  }
  Pickle& binbytes(const std::string& payload) {
    const uint32_t n = uint32_t(payload.size());
    op('B').raw(std::string(reinterpret_cast<const char*>(&n), 4));
    return raw(payload);
  }
  // dtype('f4' | 'i1', False, True) with its BUILD state.
  Pickle& dtype(const std::string& code, const std::string& order = "<") {
    global("numpy", "dtype").str(code).op(0x89).op(0x88).op(0x87).op('R').op(0x94);
    op('(').int1(3).str(order).op('N').op('N').op('N').int4(-1).int4(-1).int1(0).op('t').op(0x94);
    return op('b');
  }
  Pickle& bf16_dtype() {
    global("numpy", "dtype").global("ml_dtypes", "bfloat16").op(0x89).op(0x88).op(0x87).op('R').op(0x94);
    op('(').int1(3).str("<").op('N').op('N').op('N').int1(2).int1(2).int1(80).op('t').op(0x94);
    return op('b');
  }
  // A whole array: _reconstruct(ndarray, (0,), b'b') then BUILD.
  Pickle& array(const std::vector<int>& shape, const std::string& code, const std::string& payload) {
    global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray");
    int1(0).op(0x85).op(0x94).op('C').op(1).raw("b").op(0x94).op(0x87).op(0x94).op('R').op(0x94);
    op('(').int1(1);
    op('(');
    for (int d : shape) int4(d);
    op('t').op(0x94);
    if (code == "bf16")
      bf16_dtype();
    else
      dtype(code);
    return op(0x89).binbytes(payload).op(0x94).op('t').op(0x94).op('b');
  }
  Pickle& begin() { return op(0x80).op(4); }
  Pickle& stop() { return op('.'); }
  PickledTensor parse() const {
    return parse_checkpoint_pickle({reinterpret_cast<const std::byte*>(bytes_.data()), bytes_.size()}, "t.pkl");
  }
  std::string bytes_;
};

std::string zeros(size_t n) { return std::string(n, '\0'); }

TEST(Pickle, PlainF32Array) {
  Pickle p;
  p.begin().array({2, 3}, "f4", zeros(24)).stop();
  const PickledTensor t = p.parse();
  EXPECT_EQ(t.array.dtype, DType::F32);
  EXPECT_EQ(t.array.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.array.nbytes, 24u);
  EXPECT_EQ(p.bytes_.substr(t.array.offset + 24, 4), std::string("\x94t\x94" "b", 4));  // payload located exactly
  EXPECT_FALSE(t.scales);
}

TEST(Pickle, QuantizedWeight) {
  Pickle p;
  p.begin().global("__main__", "QuantizedWeight8bit").op(')').op(0x81).op(0x94).op('}').op(0x94).op('(');
  p.str("weight").array({4, 2}, "i1", zeros(8)).str("scales").array({1, 2}, "bf16", zeros(4));
  p.op('u').op('b').stop();
  const PickledTensor t = p.parse();
  EXPECT_EQ(t.array.dtype, DType::I8);
  ASSERT_TRUE(t.scales);
  EXPECT_EQ(t.scales->dtype, DType::BF16);
  EXPECT_EQ(t.scales->shape, (std::vector<int64_t>{1, 2}));
}

void expect_refused(const Pickle& p, const std::string& needle) {
  test::expect_error([&] { p.parse(); }, needle);
}

TEST(Pickle, RefusesOtherCallables) {
  for (const auto& [module, name] : std::vector<std::pair<std::string, std::string>>{
           {"os", "system"}, {"builtins", "eval"}, {"subprocess", "Popen"}, {"numpy", "load"}}) {
    Pickle p;
    p.begin().global(module, name).str("echo pwned").op(0x85).op('R').stop();
    expect_refused(p, "refusing global '" + module + "." + name + "'");
    Pickle old;  // protocol 0's GLOBAL opcode
    old.begin().raw("c" + module + "\n" + name + "\n").str("x").op(0x85).op('R').stop();
    expect_refused(old, "refusing global '" + module + "." + name + "'");
  }
}

TEST(Pickle, RefusesOtherOpcodes) {
  for (const char* body : {"i", "o", "\x82", "P", "Q", "l", "]", "\x8f", "\x96", "\x97", "\x98", "S'x'\n"}) {
    Pickle p;
    p.begin().raw(body).stop();
    expect_refused(p, "is not allowed in a Grok checkpoint");
  }
}

TEST(Pickle, RefusesBrokenStructure) {
  {
    Pickle p;  // memo reference never stored
    p.begin().op('h').op(5).stop();
    expect_refused(p, "memo index 5 was never stored");
  }
  {
    Pickle p;  // memo index out of range
    p.begin().int1(1).op('r').raw(std::string("\xff\xff\xff\x7f", 4)).stop();
    expect_refused(p, "memo index 2147483647 is out of range");
  }
  {
    Pickle p;  // a length past the end of the file
    p.begin().op('B').raw(std::string("\x00\x00\x00\x10", 4)).raw("abc");
    expect_refused(p, "runs past the end of the file");
  }
  {
    Pickle p;  // no STOP
    p.begin().array({2}, "f4", zeros(8));
    expect_refused(p, "ends before the STOP opcode");
  }
  {
    Pickle p;  // shape and payload disagree
    p.begin().array({2, 3}, "f4", zeros(20)).stop();
    expect_refused(p, "has 20 bytes of data, expected 24");
  }
  {
    Pickle p;  // a dimension that overflows
    p.begin().array({1 << 30, 1 << 30, 1 << 30}, "f4", zeros(4)).stop();
    expect_refused(p, "bytes of data");
  }
  {
    Pickle p;  // negative dimension
    p.begin().array({-1}, "f4", zeros(0)).stop();
    expect_refused(p, "not a non-negative integer");
  }
  {
    Pickle p;  // another dtype
    p.begin().array({2}, "f8", zeros(16)).stop();
    expect_refused(p, "dtype 'f8' is not one a Grok checkpoint uses");
  }
  {
    Pickle p;  // big-endian data
    p.begin().global("numpy", "dtype").str("f4").op(0x89).op(0x88).op(0x87).op('R');
    p.op('(').int1(3).str(">").op('N').op('N').op('N').int4(-1).int4(-1).int1(0).op('t').op('b').stop();
    expect_refused(p, "only little-endian data is supported");
  }
  {
    Pickle p;  // an unbounded stack
    p.begin();
    for (int i = 0; i < 300; ++i) p.op('(');
    expect_refused(p, "stack is deeper than");
  }
  {
    Pickle p;  // bytes after STOP
    p.begin().array({1}, "f4", zeros(4)).stop().raw("junk");
    expect_refused(p, "bytes follow the STOP opcode");
  }
  {
    Pickle p;  // a result that is not an array
    p.begin().int1(7).stop();
    expect_refused(p, "holds an int, not a numpy array");
  }
  {
    Pickle p;  // an array never built
    p.begin().global("numpy.core.multiarray", "_reconstruct").global("numpy", "ndarray");
    p.int1(0).op(0x85).op('C').op(1).raw("b").op(0x87).op('R').stop();
    expect_refused(p, "(unfinished)");
  }
  {
    Pickle p;  // BUILD applied twice
    p.begin().array({1}, "f4", zeros(4)).op('(').op('t').op('b').stop();
    expect_refused(p, "already built");
  }
  {
    Pickle p;  // a quantised weight without scales
    p.begin().global("__main__", "QuantizedWeight8bit").op(')').op(0x81).op('}').op('(');
    p.str("weight").array({2}, "i1", zeros(2)).op('u').op('b').stop();
    expect_refused(p, "lacks its 'scales'");
  }
  {
    Pickle p;  // a quantised weight whose weight is not int8
    p.begin().global("__main__", "QuantizedWeight8bit").op(')').op(0x81).op('}').op('(');
    p.str("weight").array({2}, "f4", zeros(8)).str("scales").array({2}, "bf16", zeros(4)).op('u').op('b').stop();
    expect_refused(p, "weight is F32, not int8");
  }
  {
    Pickle p;  // a protocol this reader does not know
    p.op(0x80).op(9).stop();
    expect_refused(p, "pickle protocol 9 is not supported");
  }
}

TEST(Pickle, EveryTruncationIsRefused) {
  Pickle p;
  p.begin().global("__main__", "QuantizedWeight8bit").op(')').op(0x81).op(0x94).op('}').op(0x94).op('(');
  p.str("weight").array({4, 2}, "i1", zeros(8)).str("scales").array({1, 2}, "bf16", zeros(4));
  p.op('u').op('b').stop();
  for (size_t n = 0; n < p.bytes_.size(); ++n) {
    Pickle cut;
    cut.bytes_ = p.bytes_.substr(0, n);
    EXPECT_THROW(cut.parse(), Error) << "prefix of " << n << " bytes";
  }
  EXPECT_NO_THROW(p.parse());
}

}  // namespace
}  // namespace grok
