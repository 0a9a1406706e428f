// libFuzzer target: parse_safetensors must reject any input with grok::Error,
// and every tensor it accepts must lie inside the input (or its own copy).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exactly-sized heap copy, so ASan flags any read past the end.
  std::shared_ptr<std::byte[]> buf(new std::byte[size]);
  if (size) std::memcpy(buf.get(), data, size);
  try {
    grok::TensorStore store;
    grok::parse_safetensors(buf, buf.get(), size, "fuzz.safetensors", store);
    uint64_t sum = 0;
    for (const grok::TensorInfo& t : store.tensors()) {
      if (t.nbytes && reinterpret_cast<uintptr_t>(t.data) % uint64_t(grok::dtype_block_bytes(t.dtype)) != 0)
        __builtin_trap();  // the reader promises element-aligned data
      if (grok::dtype_bytes(t.dtype, t.numel()) != t.nbytes) __builtin_trap();  // size matches shape
      for (uint64_t k = 0; k < t.nbytes; ++k) sum += uint8_t(t.data[k]);
    }
    volatile uint64_t sink = sum;  // keeps the reads from being optimised away
    (void)sink;
  } catch (const grok::Error&) {
  }
  return 0;
}
