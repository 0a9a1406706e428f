#include "kernels/cpu/isa.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace grok {
namespace {

#if defined(__x86_64__)
// F16C is CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports has no name for it).
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29));
}
#endif

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Generic: return "generic";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

namespace {

bool probe_cpu(Isa isa) {
#if defined(__x86_64__)
  switch (isa) {
    case Isa::Generic: return true;
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
    case Isa::Avx512:
      // The int8 path needs VNNI; bf16 weights use plain shifts, so no avx512bf16 needed.
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
             probe_cpu(Isa::Avx2);
  }
  return false;
#else
  return isa == Isa::Generic;
#endif
}

}  // namespace

// Probed once: CPUID exits to the hypervisor in a VM (tens of microseconds),
// and kernels ask on every call.
bool cpu_supports(Isa isa) {
  static const bool supported[3] = {probe_cpu(Isa::Generic), probe_cpu(Isa::Avx2), probe_cpu(Isa::Avx512)};
  return supported[int(isa)];
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::Generic, Isa::Avx2, Isa::Avx512})
    if (cpu_supports(i)) out.push_back(i);
  return out;
}

Isa active_isa() {
  static const Isa chosen = [] {
    const char* env = std::getenv("GROK_ISA");
    if (env && *env) {
      for (Isa i : {Isa::Generic, Isa::Avx2, Isa::Avx512})
        if (isa_name(i) == env) {
          if (!cpu_supports(i)) fail("GROK_ISA=", env, ": this CPU does not support that path");
          return i;
        }
      fail("GROK_ISA=", env, " is not one of generic, avx2, avx512");
    }
    return supported_isas().back();
  }();
  return chosen;
}

}  // namespace grok
