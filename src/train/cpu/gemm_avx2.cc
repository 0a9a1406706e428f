// C = A·B for the avx2 path (flags in CMakeLists.txt; see gemm_kernel.h).
#include <cstdint>

#define GROK_TRAIN_VECTOR_BYTES 32
namespace grok::train_avx2 {
#include "train/cpu/gemm_kernel.h"
}  // namespace grok::train_avx2
