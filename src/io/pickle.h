// A reader for the few Python pickles that make up xAI's released Grok-1
// checkpoint (CHECKPOINT.md): one numpy array, or one QuantizedWeight8bit
// (an int8 array and its bf16 scales), per file.
//
// Hand-written because a pickle is a program: a general unpickler calls
// whatever its opcodes name. This one walks the opcodes of that one grammar,
// builds nothing but strings, small integers, tuples, dicts and the named
// numpy classes, and refuses every other opcode or callable before anything
// is constructed. Array payloads are not copied: the result says where
// they lie in the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace grok {

struct PickledArray {
  DType dtype = DType::F32;    // F32, BF16 or I8
  std::vector<int64_t> shape;  // C order, outermost first
  uint64_t offset = 0;         // of the raw little-endian bytes in the pickle
  uint64_t nbytes = 0;
};

struct PickledTensor {
  PickledArray array;                  // a plain array, or a quantised weight's int8 values
  std::optional<PickledArray> scales;  // a QuantizedWeight8bit's bf16 scales
};

// Parses one checkpoint file's bytes; throws grok::Error "<name>: ..." on
// anything outside the grammar, naming the opcode and its byte offset.
PickledTensor parse_checkpoint_pickle(std::span<const std::byte> bytes, const std::string& name);

}  // namespace grok
