// Trains a SentencePiece vocabulary for a small model on plain-text files,
// laid out and normalised like Grok-1's tokenizer.model: BPE, [PAD] [BOS]
// [EOS] [UNK] at ids 0..3, Grok-1's 65 user-defined pieces next, then the 256
// byte pieces (byte fallback: any UTF-8 encodes), identity normalisation, a
// dummy-prefix space, digits split. Deterministic: the same files and options
// give the same bytes. Load the result with Tokenizer::from_serialized; it
// survives Tokenizer::gguf_vocabulary() -> Tokenizer::from_gguf unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace grok {

// Grok-1's user-defined pieces, in its order: "\n" runs of 1..10, the digits,
// "\t" runs of 1..8, space runs of 2..16, <|separator|>, <|mask|>,
// <|control1|>..<|control20|>.
std::vector<std::string> grok1_user_defined_symbols();

struct VocabTrainOptions {
  int32_t vocab_size = 4096;  // every piece: 4 special + user-defined + 256 bytes + characters + merges
  // Only "bpe": from_gguf rebuilds every GGUF vocabulary as a BPE model, so a
  // unigram vocabulary would tokenise differently once stored in a GGUF.
  std::string model_type = "bpe";
  // Share of the text's characters that get a piece of their own (Grok-1's
  // 0.9995); the rarest are spelled in byte pieces instead.
  double character_coverage = 0.9995;
  // Longest line, in bytes, the trainer sees (Grok-1's 4192). Longer lines
  // are cut at a space (or a character boundary); SentencePiece on its own
  // would drop them.
  int32_t max_sentence_length = 4192;
  // 0: train on every line; otherwise on a sample of this many lines.
  // SentencePiece samples with a fixed seed and its BPE trainer draws no
  // random numbers, so there is no seed to set: training is deterministic.
  uint64_t input_sentence_size = 0;
  // Pieces kept whole wherever they occur (matched before BPE); may not hold
  // '\0'. One holding a space never matches: SentencePiece turns spaces into
  // "▁" first (so Grok-1's space runs are never used, there or here).
  std::vector<std::string> user_defined_symbols = grok1_user_defined_symbols();
};

// The serialized SentencePiece ModelProto. Lines are the training sentences
// (SentencePiece's own reading of text files); empty lines are ignored.
// Throws grok::Error naming the file (and line) for a file that cannot be
// read or holds invalid UTF-8, and with SentencePiece's reason when training
// fails (e.g. a vocab_size too small for the characters, or larger than
// the text can fill). SentencePiece logs nothing: training sets its
// process-wide log level to errors only.
std::string train_vocabulary(const std::vector<std::string>& text_files, const VocabTrainOptions& o = {});

}  // namespace grok
