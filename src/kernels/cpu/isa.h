// Which instruction-set path the CPU kernels take. Chosen once at startup
// from what the CPU supports; GROK_ISA=generic|avx2|avx512 forces a path
// (for tests and bug reports), and asking for one the CPU lacks is an error.
#pragma once

#include <string_view>
#include <vector>

namespace grok {

enum class Isa { Generic, Avx2, Avx512 };

std::string_view isa_name(Isa isa);
bool cpu_supports(Isa isa);
std::vector<Isa> supported_isas();  // every path this CPU can run, generic first
// The path in use: GROK_ISA if set (validated), else the best supported.
Isa active_isa();

}  // namespace grok
