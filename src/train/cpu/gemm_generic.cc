// C = A·Bᵀ for the generic path (flags in CMakeLists.txt; see gemm_kernel.h).
#include <cstdint>
#include <cstring>

namespace grok::train_generic {
#include "train/cpu/gemm_kernel.h"
}  // namespace grok::train_generic
