#include "io/pickle.h"

#include <cstring>
#include <memory>

#include "core/error.h"

namespace grok {
namespace {

// Bounds that no checkpoint file comes near; a hostile file hits them
// before it can cost memory.
constexpr size_t kMaxStack = 256;
constexpr size_t kMaxMemo = 256;
constexpr size_t kMaxString = 256;
constexpr size_t kMaxDims = 8;

// The callables the grammar names. Nothing is ever called: REDUCE, NEWOBJ
// and BUILD on these produce the values below, checked field by field.
enum class Callable { Reconstruct, NdArray, DTypeClass, BFloat16, QuantizedWeight8bit };

enum class Kind { None, Bool, Int, Str, Bytes, Tuple, Dict, Global, DTypeObj, Array, Quantized, Mark };

struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;                             // Bool, Int
  std::string s;                             // Str; DTypeObj: its code ("f4", "i1", "bfloat16")
  uint64_t off = 0, len = 0;                 // Bytes
  std::vector<std::shared_ptr<Value>> items;  // Tuple; Dict as key, value, key, value, ...
  Callable callable = Callable::NdArray;     // Global
  bool built = false;                        // DTypeObj, Array, Quantized: BUILD applied
  DType dtype = DType::F32;                  // DTypeObj once built
  PickledArray array;                        // Array once built; Quantized's weight
  PickledArray scales;                       // Quantized's scales
};
using ValuePtr = std::shared_ptr<Value>;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int: return "an int";
    case Kind::Str: return "a string";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "a tuple";
    case Kind::Dict: return "a dict";
    case Kind::Global: return "a class";
    case Kind::DTypeObj: return "a dtype";
    case Kind::Array: return "an array";
    case Kind::Quantized: return "a QuantizedWeight8bit";
    case Kind::Mark: return "a MARK";
  }
  return "?";
}

class Unpickler {
 public:
  Unpickler(std::span<const std::byte> bytes, const std::string& name) : b_(bytes), name_(name) {}

  PickledTensor run() {
    while (true) {
      if (pos_ >= b_.size()) bad("the file ends before the STOP opcode");
      op_pos_ = pos_;
      const uint8_t op = u8();
      if (op == '.') return stop();
      step(op);
    }
  }

 private:
  template <typename... Args>
  [[noreturn]] void bad(const Args&... args) const {
    fail(name_, ": byte ", op_pos_, ": ", args...);
  }

  // --- reading the opcode stream ---
  uint64_t need(uint64_t n) {
    if (n > b_.size() - pos_) bad("an operand of ", n, " bytes runs past the end of the file (", b_.size(), " bytes)");
    const uint64_t at = pos_;
    pos_ += n;
    return at;
  }
  uint64_t le(int n) {
    const uint64_t at = need(uint64_t(n));
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= uint64_t(uint8_t(b_[at + k])) << (8 * k);
    return v;
  }
  uint8_t u8() { return uint8_t(b_[need(1)]); }

  // --- the stack ---
  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) bad("the stack is deeper than ", kMaxStack, " items");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.empty() || stack_.back()->kind == Kind::Mark) bad("the stack is empty");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty() || stack_.back()->kind == Kind::Mark) bad("the stack is empty");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    size_t m = stack_.size();
    while (m > 0 && stack_[m - 1]->kind != Kind::Mark) --m;
    if (m == 0) bad("no MARK on the stack");
    std::vector<ValuePtr> items(stack_.begin() + ptrdiff_t(m), stack_.end());
    stack_.resize(m - 1);
    return items;
  }
  static ValuePtr make(Kind k) {
    auto v = std::make_shared<Value>();
    v->kind = k;
    return v;
  }
  static ValuePtr make_int(Kind k, int64_t i) {
    ValuePtr v = make(k);
    v->i = i;
    return v;
  }
  ValuePtr make_tuple(std::vector<ValuePtr> items) {
    ValuePtr v = make(Kind::Tuple);
    v->items = std::move(items);
    return v;
  }

  void memo_put(uint64_t index) {
    if (index >= kMaxMemo) bad("memo index ", index, " is out of range");
    if (memo_.size() <= index) memo_.resize(size_t(index + 1));
    memo_[size_t(index)] = top();
  }
  void memo_get(uint64_t index) {
    if (index >= memo_.size() || !memo_[size_t(index)]) bad("memo index ", index, " was never stored");
    push(memo_[size_t(index)]);
  }

  void string(uint64_t n) {
    if (n > kMaxString) bad("a string of ", n, " bytes is longer than any in a Grok checkpoint");
    const uint64_t at = need(n);
    ValuePtr v = make(Kind::Str);
    v->s.assign(reinterpret_cast<const char*>(b_.data() + at), size_t(n));
    push(std::move(v));
  }
  void bytes(uint64_t n) {
    ValuePtr v = make(Kind::Bytes);
    v->off = need(n);
    v->len = n;
    push(std::move(v));
  }

  void global(const std::string& module, const std::string& name) {
    ValuePtr v = make(Kind::Global);
    if ((module == "numpy.core.multiarray" || module == "numpy._core.multiarray") && name == "_reconstruct")
      v->callable = Callable::Reconstruct;
    else if (module == "numpy" && name == "ndarray")
      v->callable = Callable::NdArray;
    else if (module == "numpy" && name == "dtype")
      v->callable = Callable::DTypeClass;
    else if (module == "ml_dtypes" && name == "bfloat16")
      v->callable = Callable::BFloat16;
    else if ((module == "__main__" || module == "model") && name == "QuantizedWeight8bit")
      v->callable = Callable::QuantizedWeight8bit;
    else
      bad("refusing global ", quote_name(module + "." + name),
          ": a Grok checkpoint names only numpy's array and dtype classes, ml_dtypes.bfloat16 and "
          "QuantizedWeight8bit");
    push(std::move(v));
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t v = u8();
        if (v < 2 || v > 5) bad("pickle protocol ", int(v), " is not supported (the checkpoint uses 4)");
        return;
      }
      case 0x95: {  // FRAME: only a hint for buffered readers
        const uint64_t n = le(8);
        if (n > b_.size() - pos_) bad("a frame of ", n, " bytes runs past the end of the file");
        return;
      }
      case 0x8c: return string(le(1));  // SHORT_BINUNICODE
      case 'X': return string(le(4));   // BINUNICODE
      case 0x94: return memo_put(memo_.size());  // MEMOIZE
      case 'q': return memo_put(le(1));          // BINPUT
      case 'r': return memo_put(le(4));          // LONG_BINPUT
      case 'h': return memo_get(le(1));          // BINGET
      case 'j': return memo_get(le(4));          // LONG_BINGET
      case 0x93: {                               // STACK_GLOBAL
        const ValuePtr name = pop(), module = pop();
        if (name->kind != Kind::Str || module->kind != Kind::Str) bad("STACK_GLOBAL needs two strings");
        return global(module->s, name->s);
      }
      case 'c': {  // GLOBAL: "module\nname\n"
        std::string parts[2];
        for (std::string& p : parts) {
          while (true) {
            const char c = char(u8());
            if (c == '\n') break;
            if (p.size() >= kMaxString) bad("a GLOBAL name is longer than any in a Grok checkpoint");
            p.push_back(c);
          }
        }
        return global(parts[0], parts[1]);
      }
      case '(': return push(make(Kind::Mark));
      case ')': return push(make_tuple({}));
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<ValuePtr> items(size_t(op - 0x84));
        for (size_t k = items.size(); k-- > 0;) items[k] = pop();
        return push(make_tuple(std::move(items)));
      }
      case 't': return push(make_tuple(pop_to_mark()));
      case 'K': return push(make_int(Kind::Int, int64_t(le(1))));
      case 'M': return push(make_int(Kind::Int, int64_t(le(2))));
      case 'J': return push(make_int(Kind::Int, int64_t(int32_t(uint32_t(le(4))))));
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const uint8_t n = u8();
        if (n > 8) bad("an integer of ", int(n), " bytes is too large");
        uint64_t v = n ? le(n) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);
        return push(make_int(Kind::Int, int64_t(v)));
      }
      case 0x88: return push(make_int(Kind::Bool, 1));  // NEWTRUE
      case 0x89: return push(make_int(Kind::Bool, 0));  // NEWFALSE
      case 'N': return push(make(Kind::None));
      case '}': return push(make(Kind::Dict));
      case 's':
      case 'u': {  // SETITEM, SETITEMS
        std::vector<ValuePtr> kv;
        if (op == 's') {
          ValuePtr v = pop(), k = pop();
          kv = {k, v};
        } else {
          kv = pop_to_mark();
        }
        if (kv.size() % 2) bad("SETITEMS needs key, value pairs");
        ValuePtr& d = top();
        if (d->kind != Kind::Dict) bad("SETITEMS on ", kind_name(d->kind), ", not a dict");
        for (size_t k = 0; k < kv.size(); k += 2) {
          if (kv[k]->kind != Kind::Str || kv[k + 1]->kind != Kind::Array)
            bad("a dict entry must map a string to an array");
          if (d->items.size() >= 8) bad("a dict has more entries than a QuantizedWeight8bit");
          d->items.push_back(kv[k]);
          d->items.push_back(kv[k + 1]);
        }
        return;
      }
      case 'B': return bytes(le(4));     // BINBYTES
      case 'C': return bytes(le(1));     // SHORT_BINBYTES
      case 0x8e: return bytes(le(8));    // BINBYTES8
      case 'R': return reduce();
      case 0x81: return newobj();
      case 'b': return build();
      default:
        bad("opcode 0x", hex(op), " is not allowed in a Grok checkpoint (only numpy arrays and "
            "QuantizedWeight8bit are)");
    }
  }

  static std::string hex(uint8_t v) {
    const char* d = "0123456789abcdef";
    return {d[v >> 4], d[v & 15]};
  }

  void reduce() {
    const ValuePtr args = pop(), fn = pop();
    if (fn->kind != Kind::Global || args->kind != Kind::Tuple) bad("REDUCE needs a class and a tuple");
    const auto& a = args->items;
    if (fn->callable == Callable::Reconstruct) {
      // _reconstruct(ndarray, (0,), b'b'): an empty array awaiting BUILD.
      if (a.size() != 3 || a[0]->kind != Kind::Global || a[0]->callable != Callable::NdArray ||
          a[1]->kind != Kind::Tuple || a[2]->kind != Kind::Bytes || a[2]->len != 1 ||
          char(b_[a[2]->off]) != 'b')
        bad("_reconstruct's arguments are not (numpy.ndarray, (0,), b'b')");
      return push(make(Kind::Array));
    }
    if (fn->callable == Callable::DTypeClass) {
      // dtype('f4' | 'i1' | bfloat16, False, True)
      if (a.size() != 3 || a[1]->kind != Kind::Bool || a[2]->kind != Kind::Bool)
        bad("numpy.dtype's arguments are not (type, False, True)");
      ValuePtr d = make(Kind::DTypeObj);
      if (a[0]->kind == Kind::Str && (a[0]->s == "f4" || a[0]->s == "i1"))
        d->s = a[0]->s;
      else if (a[0]->kind == Kind::Global && a[0]->callable == Callable::BFloat16)
        d->s = "bfloat16";
      else
        bad("dtype ", a[0]->kind == Kind::Str ? quote_name(a[0]->s) : std::string(kind_name(a[0]->kind)),
            " is not one a Grok checkpoint uses (f4, i1, bfloat16)");
      return push(std::move(d));
    }
    bad("REDUCE may only call numpy's _reconstruct or dtype");
  }

  void newobj() {
    const ValuePtr args = pop(), cls = pop();
    if (cls->kind != Kind::Global || cls->callable != Callable::QuantizedWeight8bit || args->kind != Kind::Tuple ||
        !args->items.empty())
      bad("NEWOBJ may only create QuantizedWeight8bit()");
    push(make(Kind::Quantized));
  }

  void build() {
    const ValuePtr state = pop();
    Value& obj = *top();
    if ((obj.kind != Kind::DTypeObj && obj.kind != Kind::Array && obj.kind != Kind::Quantized) || obj.built)
      bad("BUILD on ", kind_name(obj.kind), obj.built ? " that is already built" : "");
    if (obj.kind == Kind::DTypeObj) return build_dtype(obj, *state);
    if (obj.kind == Kind::Array) return build_array(obj, *state);
    build_quantized(obj, *state);
  }

  // (3, '<' | '|', None, None, None, elsize, alignment, flags)
  void build_dtype(Value& d, const Value& st) {
    const auto& s = st.items;
    if (st.kind != Kind::Tuple || s.size() != 8 || s[0]->kind != Kind::Int || s[0]->i != 3 ||
        s[1]->kind != Kind::Str || s[2]->kind != Kind::None || s[3]->kind != Kind::None ||
        s[4]->kind != Kind::None || s[5]->kind != Kind::Int || s[6]->kind != Kind::Int || s[7]->kind != Kind::Int)
      bad("a dtype's state is not (3, byte order, None, None, None, size, alignment, flags)");
    const std::string& order = s[1]->s;
    if (d.s == "i1" ? (order != "|" && order != "<") : order != "<")
      bad("dtype ", d.s, " has byte order ", quote_name(order), "; only little-endian data is supported");
    d.dtype = d.s == "f4" ? DType::F32 : d.s == "i1" ? DType::I8 : DType::BF16;
    d.built = true;
  }

  // (1, shape, dtype, fortran_order=False, raw bytes)
  void build_array(Value& a, const Value& st) {
    const auto& s = st.items;
    if (st.kind != Kind::Tuple || s.size() != 5 || s[0]->kind != Kind::Int || s[0]->i != 1 ||
        s[1]->kind != Kind::Tuple || s[2]->kind != Kind::DTypeObj || !s[2]->built || s[3]->kind != Kind::Bool ||
        s[4]->kind != Kind::Bytes)
      bad("an array's state is not (1, shape, dtype, False, bytes)");
    if (s[3]->i) bad("Fortran-order arrays are not supported");
    if (s[1]->items.size() > kMaxDims) bad("an array of ", s[1]->items.size(), " dimensions");
    PickledArray& out = a.array;
    out.dtype = s[2]->dtype;
    uint64_t n = 1;
    bool overflow = false;
    for (const ValuePtr& d : s[1]->items) {
      if (d->kind != Kind::Int || d->i < 0) bad("an array dimension is not a non-negative integer");
      out.shape.push_back(d->i);
      if (d->i != 0 && n > (uint64_t(1) << 62) / uint64_t(d->i)) overflow = true;
      n *= uint64_t(d->i);
    }
    const uint64_t want = n * dtype_bytes(out.dtype, 1);
    if (overflow || want != s[4]->len) {
      bad("an array of shape ", shape_str(out.shape), " and dtype ", dtype_name(out.dtype), " has ", s[4]->len,
          " bytes of data", overflow ? "" : cat(", expected ", want));
    }
    out.offset = s[4]->off;
    out.nbytes = s[4]->len;
    a.built = true;
  }

  // {'weight': int8 array, 'scales': bf16 array}
  void build_quantized(Value& q, const Value& st) {
    if (st.kind != Kind::Dict) bad("a QuantizedWeight8bit's state is not a dict");
    const Value *w = nullptr, *sc = nullptr;
    for (size_t k = 0; k < st.items.size(); k += 2) {
      const std::string& key = st.items[k]->s;
      const Value* v = st.items[k + 1].get();
      if (key == "weight" && !w)
        w = v;
      else if (key == "scales" && !sc)
        sc = v;
      else
        bad("a QuantizedWeight8bit has an unexpected or repeated field ", quote_name(key));
    }
    if (!w || !sc) bad("a QuantizedWeight8bit lacks its ", !w ? "'weight'" : "'scales'");
    if (!w->built || !sc->built) bad("a QuantizedWeight8bit holds an unfinished array");
    if (w->array.dtype != DType::I8) bad("a QuantizedWeight8bit's weight is ", dtype_name(w->array.dtype), ", not int8");
    if (sc->array.dtype != DType::BF16)
      bad("a QuantizedWeight8bit's scales are ", dtype_name(sc->array.dtype), ", not bfloat16");
    q.array = w->array;
    q.scales = sc->array;
    q.built = true;
  }

  PickledTensor stop() {
    if (stack_.size() != 1) bad("STOP with ", stack_.size(), " items on the stack, expected 1");
    const Value& v = *stack_.back();
    const bool result_kind = v.kind == Kind::Array || v.kind == Kind::Quantized;
    if (!result_kind || !v.built)
      bad("the pickle holds ", kind_name(v.kind), result_kind ? " (unfinished)" : "",
          ", not a numpy array or QuantizedWeight8bit");
    if (pos_ != b_.size()) bad(b_.size() - pos_, " bytes follow the STOP opcode");
    PickledTensor t;
    t.array = v.array;
    if (v.kind == Kind::Quantized) t.scales = v.scales;
    return t;
  }

  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t k = 0; k < s.size(); ++k) out += (k ? ", " : "") + std::to_string(s[k]);
    return out + "]";
  }

  std::span<const std::byte> b_;
  const std::string& name_;
  uint64_t pos_ = 0, op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<ValuePtr> memo_;
};

}  // namespace

PickledTensor parse_checkpoint_pickle(std::span<const std::byte> bytes, const std::string& name) {
  return Unpickler(bytes, name).run();
}

}  // namespace grok
