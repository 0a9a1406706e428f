// C = A·B for the generic path (flags in CMakeLists.txt; see gemm_kernel.h).
#include <cstdint>

#define GROK_TRAIN_VECTOR_BYTES 16
namespace grok::train_generic {
#include "train/cpu/gemm_kernel.h"
}  // namespace grok::train_generic
