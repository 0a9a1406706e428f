// The processes of one `mpirun -np N grok ...` job (Collectives over
// OpenMPI). A grok started without mpirun is a cluster of one and never
// initialises MPI, so single-process use pays nothing for it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/collectives.h"

namespace grok {

// How allreduce_sum moves the data (bench/REPORT.md measures each):
//   ring:      reduce-scatter then allgather, 2(N-1) steps of n/N values;
//   doubling:  recursive doubling, log2(N) exchanges of all n values;
//   allgather: one MPI_Allgather of all n values, each rank sums in rank order;
//   mpi:       MPI_Allreduce as the MPI library chooses.
enum class AllreduceAlgorithm { kRing, kDoubling, kAllgather, kMpi };
AllreduceAlgorithm parse_allreduce_algorithm(std::string_view name);  // throws grok::Error
const char* allreduce_algorithm_name(AllreduceAlgorithm a);

class MpiCluster final : public Collectives {
 public:
  // The job this process belongs to: MPI is initialised on the first call
  // when mpirun started the process (OMPI_COMM_WORLD_SIZE is set), else a
  // cluster of one. Throws grok::Error under mpirun when built without MPI.
  static MpiCluster& world();

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, int64_t n) override;
  void broadcast(std::vector<int64_t>& words) override;
  void gather(const void* send, int64_t bytes, void* recv) override;
  void barrier();

  AllreduceAlgorithm algorithm() const { return algorithm_; }
  void set_algorithm(AllreduceAlgorithm a) { algorithm_ = a; }
  CommStats stats() const override { return stats_; }
  void reset_stats() { stats_ = {}; }
  std::string host() const;  // this rank's machine, for reports

  // Ends the job from any rank (the others are stopped by mpirun), after
  // this rank has said why. Never returns.
  [[noreturn]] void abort_job(int code);
  // From any thread (a signal's, say): every communication waiting now or
  // later throws grok::Error instead of waiting for ranks that are gone.
  void abandon();
  // MPI_Finalize once every rank is done; nothing for a cluster of one or
  // after abandon().
  void finish();

 private:
  MpiCluster();
  void ring(float* data, int64_t n);
  void doubling(float* data, int64_t n);
  void allgather(float* data, int64_t n);
  void sendrecv(const float* send, int64_t send_n, int to, float* recv, int64_t recv_n, int from, int tag);

  int rank_ = 0, size_ = 1;
  bool mpi_ = false;
  AllreduceAlgorithm algorithm_;
  CommStats stats_;
  std::vector<float> scratch_;
};

// Peak resident memory of this process so far (VmHWM), in bytes.
uint64_t peak_resident_bytes();

// Each all-reduce algorithm over `n` floats, timed on every rank together:
// the median of `rounds` rounds of `calls` back-to-back calls, per call,
// as rank 0 saw it. Every rank must call it.
struct AllreduceTiming {
  AllreduceAlgorithm algorithm;
  double seconds_per_call = 0;
  double bytes_sent_per_call = 0;  // by rank 0
};
std::vector<AllreduceTiming> measure_allreduce(MpiCluster& cluster, int64_t n, int rounds = 9, int calls = 50);

// What each rank reports when the leader asks at the end of a job.
struct RankReport {
  int rank = 0;
  uint64_t peak_rss = 0;      // bytes
  uint64_t weight_bytes = 0;  // of its slice and the replicated tensors
  CommStats comm;
  char host[64] = {};
};
// Every rank calls it; the leader gets them all in rank order, others nothing.
std::vector<RankReport> gather_rank_reports(MpiCluster& cluster, uint64_t weight_bytes);

}  // namespace grok
