// C = A·B for the avx512 path (flags in CMakeLists.txt; see gemm_kernel.h).
#include <cstdint>

#define GROK_TRAIN_VECTOR_BYTES 64
namespace grok::train_avx512 {
#include "train/cpu/gemm_kernel.h"
}  // namespace grok::train_avx512
