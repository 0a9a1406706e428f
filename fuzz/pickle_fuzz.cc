// libFuzzer target: the checkpoint pickle reader must reject any input with
// grok::Error, and every array it accepts must lie inside the input with a
// size that matches its shape and dtype.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "core/error.h"
#include "io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exactly-sized heap copy, so ASan flags any read past the end.
  std::unique_ptr<std::byte[]> buf(new std::byte[size]);
  if (size) std::memcpy(buf.get(), data, size);
  try {
    const grok::PickledTensor t = grok::parse_checkpoint_pickle({buf.get(), size}, "fuzz.pickle");
    auto check = [&](const grok::PickledArray& a) {
      uint64_t n = 1;
      for (int64_t d : a.shape) n *= uint64_t(d);
      if (n * grok::dtype_bytes(a.dtype, 1) != a.nbytes) __builtin_trap();
      if (a.offset > size || a.nbytes > size - a.offset) __builtin_trap();
      uint64_t sum = 0;
      for (uint64_t k = 0; k < a.nbytes; ++k) sum += uint8_t(buf[a.offset + k]);
      return sum;
    };
    volatile uint64_t sink = check(t.array);
    if (t.scales) sink = sink + check(*t.scales);
    (void)sink;
  } catch (const grok::Error&) {
  }
  return 0;
}
