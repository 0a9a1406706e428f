// Builds a serialized SentencePiece ModelProto (sentencepiece_model.proto) for
// a BPE vocabulary, to be loaded with
// SentencePieceProcessor::LoadFromSerializedProto, and reads the normalizer
// flags back out of one. Written by hand: the few fields we need take ~60
// lines of wire format, where the generated code would add a protobuf
// dependency to the build (libsentencepiece does not export its own).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grok::sp {

// ModelProto.SentencePiece.Type; the numbering is also GGUF's token_type.
enum class PieceType : int32_t {
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
};

struct Piece {
  std::string text;
  float score = 0;
  PieceType type = PieceType::NORMAL;
};

struct BpeModel {
  std::vector<Piece> pieces;
  // Special ids (-1: none). Their pieces are written as trainer_spec's
  // unk/bos/eos/pad_piece, which is how the library looks the ids up.
  int32_t unk_id = -1, bos_id = -1, eos_id = -1, pad_id = -1;
  bool byte_fallback = true;
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = false;
};

// ModelProto { pieces = 1; trainer_spec = 2; normalizer_spec = 3 } with an
// "identity" normalizer (no precompiled character map) and model_type BPE.
std::string serialize(const BpeModel& model);

// The normalizer flags of any serialized ModelProto (proto defaults when a
// field is absent, or the proto is malformed).
struct NormalizerFlags {
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
};
NormalizerFlags read_normalizer_flags(std::string_view serialized_model);

// The type of every piece of a serialized ModelProto, in id order (NORMAL
// where a piece gives none). The library's API cannot tell USER_DEFINED
// pieces from normal ones; the proto can.
std::vector<PieceType> read_piece_types(std::string_view serialized_model);

// Why `serialized_model` is not a usable SentencePiece ModelProto, or "" when
// it looks like one: well-formed wire format, pieces that each have their
// text, and the trainer_spec and normalizer_spec that SentencePiece's trainer
// always writes (they come last, so a file cut short loses them, and the
// library would then load it as a different model type without a word).
// Checked before the library sees the bytes: its protobuf parser logs to
// stderr on bad input.
std::string model_proto_problem(std::string_view serialized_model);

}  // namespace grok::sp
