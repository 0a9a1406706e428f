#include "tokenizer/sp_model_proto.h"

#include <cstring>

namespace grok::sp {
namespace {

// Protobuf wire format: each field is a varint key (number << 3 | wire type)
// followed by a varint (type 0), 4 little-endian bytes (type 5) or a
// length-delimited payload (type 2: strings and sub-messages); readers must
// also skip 8-byte fields (type 1).
enum Wire : uint32_t { VARINT = 0, FIXED64 = 1, LEN = 2, FIXED32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}

void put_key(std::string& out, uint32_t field, Wire wire) { put_varint(out, uint64_t(field) << 3 | wire); }

// int32/enum/bool: negative values are sign-extended to 64 bits (10 bytes).
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_key(out, field, VARINT);
  put_varint(out, uint64_t(v));
}

void put_float(std::string& out, uint32_t field, float v) {
  put_key(out, field, FIXED32);
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  for (int i = 0; i < 4; ++i) out.push_back(char(bits >> (8 * i)));
}

void put_bytes(std::string& out, uint32_t field, const std::string& payload) {
  put_key(out, field, LEN);
  put_varint(out, payload.size());
  out += payload;
}

// Field numbers of sentencepiece_model.proto.
namespace piece_field { enum : uint32_t { PIECE = 1, SCORE = 2, TYPE = 3 }; }
namespace trainer_field {
enum : uint32_t {
  MODEL_TYPE = 3, VOCAB_SIZE = 4, BYTE_FALLBACK = 35,
  UNK_ID = 40, BOS_ID = 41, EOS_ID = 42, PAD_ID = 43,
  UNK_PIECE = 45, BOS_PIECE = 46, EOS_PIECE = 47, PAD_PIECE = 48,
};
}
namespace normalizer_field {
enum : uint32_t { NAME = 1, ADD_DUMMY_PREFIX = 3, REMOVE_EXTRA_WHITESPACES = 4, ESCAPE_WHITESPACES = 5 };
}
namespace model_field { enum : uint32_t { PIECES = 1, TRAINER_SPEC = 2, NORMALIZER_SPEC = 3 }; }
constexpr int64_t kModelTypeBpe = 2;

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const uint8_t b = uint8_t(in.front());
    in.remove_prefix(1);
    v |= uint64_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Calls on_field(number, wire, varint value, payload) for each field of a
// message; returns false on malformed input.
template <typename F>
bool for_each_field(std::string_view in, F&& on_field) {
  while (!in.empty()) {
    uint64_t key, v = 0;
    if (!get_varint(in, key) || key >> 3 == 0) return false;  // field number 0 is never valid
    std::string_view payload;
    switch (key & 7) {
      case VARINT:
        if (!get_varint(in, v)) return false;
        break;
      case FIXED64:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        break;
      case LEN:
        if (!get_varint(in, v) || v > in.size()) return false;
        payload = in.substr(0, v);
        in.remove_prefix(v);
        break;
      case FIXED32:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        break;
      default:
        return false;
    }
    on_field(uint32_t(key >> 3), uint32_t(key & 7), v, payload);
  }
  return true;
}

}  // namespace

std::string serialize(const BpeModel& m) {
  std::string out;
  std::string buf;
  for (const Piece& p : m.pieces) {
    buf.clear();
    put_bytes(buf, piece_field::PIECE, p.text);
    put_float(buf, piece_field::SCORE, p.score);
    put_int(buf, piece_field::TYPE, int64_t(p.type));
    put_bytes(out, model_field::PIECES, buf);
  }

  const auto in_range = [&](int32_t id) { return id >= 0 && size_t(id) < m.pieces.size(); };
  buf.clear();
  put_int(buf, trainer_field::MODEL_TYPE, kModelTypeBpe);
  put_int(buf, trainer_field::VOCAB_SIZE, int64_t(m.pieces.size()));
  put_int(buf, trainer_field::BYTE_FALLBACK, m.byte_fallback);
  put_int(buf, trainer_field::UNK_ID, m.unk_id);
  put_int(buf, trainer_field::BOS_ID, m.bos_id);
  put_int(buf, trainer_field::EOS_ID, m.eos_id);
  put_int(buf, trainer_field::PAD_ID, m.pad_id);
  if (in_range(m.unk_id)) put_bytes(buf, trainer_field::UNK_PIECE, m.pieces[m.unk_id].text);
  if (in_range(m.bos_id)) put_bytes(buf, trainer_field::BOS_PIECE, m.pieces[m.bos_id].text);
  if (in_range(m.eos_id)) put_bytes(buf, trainer_field::EOS_PIECE, m.pieces[m.eos_id].text);
  if (in_range(m.pad_id)) put_bytes(buf, trainer_field::PAD_PIECE, m.pieces[m.pad_id].text);
  put_bytes(out, model_field::TRAINER_SPEC, buf);

  buf.clear();
  put_bytes(buf, normalizer_field::NAME, "identity");
  put_int(buf, normalizer_field::ADD_DUMMY_PREFIX, m.add_dummy_prefix);
  put_int(buf, normalizer_field::REMOVE_EXTRA_WHITESPACES, m.remove_extra_whitespaces);
  put_int(buf, normalizer_field::ESCAPE_WHITESPACES, 1);
  put_bytes(out, model_field::NORMALIZER_SPEC, buf);
  return out;
}

NormalizerFlags read_normalizer_flags(std::string_view serialized_model) {
  NormalizerFlags flags;
  for_each_field(serialized_model, [&](uint32_t field, uint32_t wire, uint64_t, std::string_view msg) {
    if (field != model_field::NORMALIZER_SPEC || wire != LEN) return;
    for_each_field(msg, [&](uint32_t f, uint32_t w, uint64_t v, std::string_view) {
      if (w != VARINT) return;
      if (f == normalizer_field::ADD_DUMMY_PREFIX) flags.add_dummy_prefix = v != 0;
      if (f == normalizer_field::REMOVE_EXTRA_WHITESPACES) flags.remove_extra_whitespaces = v != 0;
    });
  });
  return flags;
}

std::vector<PieceType> read_piece_types(std::string_view serialized_model) {
  std::vector<PieceType> types;
  for_each_field(serialized_model, [&](uint32_t field, uint32_t wire, uint64_t, std::string_view msg) {
    if (field != model_field::PIECES || wire != LEN) return;
    PieceType t = PieceType::NORMAL;
    for_each_field(msg, [&](uint32_t f, uint32_t w, uint64_t v, std::string_view) {
      if (f == piece_field::TYPE && w == VARINT && v >= 1 && v <= 6) t = PieceType(int32_t(v));
    });
    types.push_back(t);
  });
  return types;
}

std::string model_proto_problem(std::string_view serialized_model) {
  size_t pieces = 0;
  bool trainer = false, normalizer = false, bad_piece = false, bad_spec = false;
  const bool well_formed =
      for_each_field(serialized_model, [&](uint32_t field, uint32_t wire, uint64_t, std::string_view msg) {
        const bool is_message = wire == LEN && for_each_field(msg, [](uint32_t, uint32_t, uint64_t, std::string_view) {});
        if (field == model_field::PIECES) {
          bool has_text = false;
          if (is_message)
            for_each_field(msg, [&](uint32_t f, uint32_t w, uint64_t, std::string_view) {
              has_text |= f == piece_field::PIECE && w == LEN;
            });
          bad_piece |= !has_text;
          ++pieces;
        } else if (field == model_field::TRAINER_SPEC || field == model_field::NORMALIZER_SPEC) {
          bad_spec |= !is_message;
          (field == model_field::TRAINER_SPEC ? trainer : normalizer) = true;
        }
      });
  if (!well_formed) return "malformed or truncated protobuf data";
  if (pieces == 0) return "no vocabulary pieces";
  if (bad_piece) return "a vocabulary piece without its text";
  if (bad_spec) return "a malformed trainer_spec or normalizer_spec";
  if (!trainer || !normalizer)
    return std::string("no ") + (trainer ? "normalizer_spec" : "trainer_spec") + " (is the file truncated?)";
  return "";
}

}  // namespace grok::sp
