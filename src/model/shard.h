// Tensor parallelism's split of one model over N processes (xAI's mesh):
// attention by KV-head group (a rank's query heads are those of its KV
// heads), every expert's ffn dimension (w1 and v by rows, w2 by columns, so
// the down projection is a partial sum), and the output projection by
// vocabulary rows. Norms, router and the embedding stay whole on every rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace grok {

struct Shard {
  int rank = 0, ranks = 1;
  int64_t kv_begin = 0, kv_end = 0;        // KV heads [begin, end); may be empty when ranks > KV heads
  int64_t ffn_begin = 0, ffn_end = 0;      // every expert's ffn rows [begin, end)
  int64_t vocab_begin = 0, vocab_end = 0;  // output rows [begin, end)
  bool whole() const { return ranks == 1; }
  std::string describe() const;            // "rank 1/3: KV heads 3-5, ffn 1024-2047, vocab 43691-87381"
};

// Rank `rank`'s part of `ranks` (1 ≤ ranks ≤ 64): contiguous, as even as
// the weights' blocks allow (an ffn split falls on whole quantisation and
// scale blocks). Throws grok::Error when the ffn cannot be split that many
// ways.
Shard plan_shard(const GrokConfig& c, const GrokWeights& w, int rank, int ranks);

// Rank `rank`'s output rows [first, second): groups of 16 (the packed kernels' row groups).
std::pair<int64_t, int64_t> vocab_rows(int64_t vocab, int rank, int ranks);

// Replaces every matrix by this rank's slice of it (views into the same
// file pages where the layout allows; int8 output slices are copied into
// `copies`; with none, only the sizes are right) and records the rank's KV
// heads in c.kv_heads_local.
struct ShardCopies {
  std::vector<std::unique_ptr<std::byte[]>> buffers;
};
void apply_shard(GrokConfig& c, GrokWeights& w, const Shard& s, ShardCopies* copies);

// The config a rank's blocks compute with: its query and KV heads and ffn slice.
GrokConfig local_config(const GrokConfig& c, const Shard& s);

// Bytes of the weights a model keeps: after apply_shard, its slices plus
// what every rank keeps.
uint64_t weight_bytes(const GrokWeights& w);
// What weight_bytes will be for rank s's part, without splitting anything.
uint64_t shard_weight_bytes(const GrokConfig& c, const GrokWeights& w, const Shard& s);

}  // namespace grok
