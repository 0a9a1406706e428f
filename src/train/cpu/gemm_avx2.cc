// C = A·Bᵀ for the avx2 path (flags in CMakeLists.txt; see gemm_kernel.h).
#include <cstdint>
#include <cstring>

namespace grok::train_avx2 {
#include "train/cpu/gemm_kernel.h"
}  // namespace grok::train_avx2
