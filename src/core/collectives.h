// What tensor parallelism needs from the processes it runs on, kept apart
// from how they talk (dist/mpi_cluster.h implements it over OpenMPI), so the
// model depends on no transport.
#pragma once

#include <cstdint>
#include <vector>

namespace grok {

// Time and bytes this rank has spent communicating.
struct CommStats {
  int64_t allreduces = 0;
  uint64_t allreduce_values = 0;  // floats summed (payload)
  uint64_t bytes_sent = 0;        // by this rank, every call
  double allreduce_seconds = 0;
  int64_t other_calls = 0;        // broadcasts and gathers
  double other_seconds = 0;
};

class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool leader() const { return rank() == 0; }
  bool distributed() const { return size() > 1; }

  // data[0..n) becomes the sum over ranks, bit-for-bit the same on every
  // rank (every rank must route tokens alike).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  // The leader's `words` to every rank (others' vectors are resized).
  virtual void broadcast(std::vector<int64_t>& words) = 0;
  // Rank r's `bytes` bytes at send land at recv + r·bytes on the leader
  // (recv: size()·bytes, leader only).
  virtual void gather(const void* send, int64_t bytes, void* recv) = 0;
  virtual CommStats stats() const = 0;
};

}  // namespace grok
