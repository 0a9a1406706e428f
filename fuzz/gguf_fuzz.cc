// libFuzzer target: GgufFile::parse must reject any input with grok::Error,
// and every tensor it accepts must lie inside the input.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // An exactly-sized heap copy, so ASan flags any read past the end.
  std::shared_ptr<std::byte[]> buf(new std::byte[size]);
  if (size) std::memcpy(buf.get(), data, size);
  try {
    const grok::GgufFile g = grok::GgufFile::parse(buf, buf.get(), size, "fuzz.gguf");
    uint64_t sum = 0;
    for (const grok::TensorInfo& t : g.tensors().tensors()) {
      if (grok::dtype_bytes(t.dtype, t.numel()) != t.nbytes) __builtin_trap();  // size matches shape
      for (uint64_t k = 0; k < t.nbytes; ++k) sum += uint8_t(t.data[k]);
    }
    // Exercise the typed accessors on every key; type mismatches throw.
    for (const auto& [key, value] : g.metadata()) {
      try {
        sum += uint64_t(g.get_int(key).value_or(0));
      } catch (const grok::Error&) {
      }
      try {
        sum += uint64_t(g.get_float(key).value_or(0) != 0);
      } catch (const grok::Error&) {
      }
      try {
        sum += g.get_bool(key).value_or(false);
      } catch (const grok::Error&) {
      }
      try {
        sum += g.get_string(key).value_or("").size();
      } catch (const grok::Error&) {
      }
      try {
        sum += g.get_string_array(key)->size();
      } catch (const grok::Error&) {
      }
      try {
        sum += g.get_number_array(key)->size();
      } catch (const grok::Error&) {
      }
    }
    volatile uint64_t sink = sum;  // keeps the reads from being optimised away
    (void)sink;
  } catch (const grok::Error&) {
  }
  return 0;
}
