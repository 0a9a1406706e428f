// libFuzzer target: a Hugging Face config.json must parse into a validated
// GrokConfig or be rejected with grok::Error, never crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "model/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const grok::GrokConfig c =
        grok::parse_hf_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz/config.json");
    volatile int64_t sink = c.parameter_count();  // validated sizes must not overflow here
    (void)sink;
  } catch (const grok::Error&) {
  }
  return 0;
}
