#include "dist/mpi_cluster.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/error.h"

#ifdef GROK_HAVE_MPI
#include <mpi.h>
#endif

namespace grok {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool launched_by_mpirun() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  return size && *size;
}

#ifdef GROK_HAVE_MPI
// MPI_ERRORS_RETURN is set on the world communicator: a failed call (a peer
// gone) becomes an error naming the call instead of MPI's own abort.
void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, text, &len);
  fail("communication between the ranks failed in ", call, ": ", std::string(text, size_t(len)),
       " (did another rank stop?)");
}
#endif

}  // namespace

AllreduceAlgorithm parse_allreduce_algorithm(std::string_view name) {
  if (name == "ring") return AllreduceAlgorithm::kRing;
  if (name == "doubling") return AllreduceAlgorithm::kDoubling;
  if (name == "allgather") return AllreduceAlgorithm::kAllgather;
  if (name == "mpi") return AllreduceAlgorithm::kMpi;
  fail("unknown all-reduce algorithm '", name, "' (give ring, doubling, allgather or mpi)");
}

const char* allreduce_algorithm_name(AllreduceAlgorithm a) {
  switch (a) {
    case AllreduceAlgorithm::kRing: return "ring";
    case AllreduceAlgorithm::kDoubling: return "doubling";
    case AllreduceAlgorithm::kAllgather: return "allgather";
    case AllreduceAlgorithm::kMpi: return "mpi";
  }
  return "?";
}

MpiCluster& MpiCluster::world() {
  static MpiCluster cluster;
  return cluster;
}

// The default: recursive doubling, the fastest for the per-layer sums of
// decode in bench/REPORT.md's measurements; GROK_ALLREDUCE picks another.
MpiCluster::MpiCluster() : algorithm_(AllreduceAlgorithm::kDoubling) {
  if (const char* a = std::getenv("GROK_ALLREDUCE"); a && *a) algorithm_ = parse_allreduce_algorithm(a);
  if (!launched_by_mpirun()) return;
#ifdef GROK_HAVE_MPI
  int provided = 0;
  // The server calls MPI from its scheduler thread and main() from the main
  // thread, never at once.
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  mpi_ = true;
#else
  fail("started by mpirun, but this grok was built without OpenMPI (install libopenmpi-dev and rebuild)");
#endif
}

std::string MpiCluster::host() const {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

void MpiCluster::allreduce_sum(float* data, int64_t n) {
  if (size_ == 1 || n == 0) return;
  const auto t0 = Clock::now();
  switch (algorithm_) {
    case AllreduceAlgorithm::kRing: ring(data, n); break;
    case AllreduceAlgorithm::kDoubling: doubling(data, n); break;
    case AllreduceAlgorithm::kAllgather: allgather(data, n); break;
    case AllreduceAlgorithm::kMpi:
#ifdef GROK_HAVE_MPI
      check(MPI_Allreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
      stats_.bytes_sent += uint64_t(n) * 4 * 2 * uint64_t(size_ - 1) / uint64_t(size_);  // as a ring would
#endif
      break;
  }
  ++stats_.allreduces;
  stats_.allreduce_values += uint64_t(n);
  stats_.allreduce_seconds += seconds_since(t0);
}

// Each chunk is summed on one rank, in ring order, then passed on whole, so
// every rank ends with the same bits.
void MpiCluster::ring(float* data, int64_t n) {
#ifdef GROK_HAVE_MPI
  const int N = size_, right = (rank_ + 1) % N, left = (rank_ + N - 1) % N;
  // Chunk c (taken mod N) is values [n·c/N, n·(c+1)/N).
  auto lo = [&](int c) { return n * int64_t((c % N + N) % N) / N; };
  auto hi = [&](int c) { return n * int64_t((c % N + N) % N + 1) / N; };
  scratch_.resize(size_t(n / N + 1));
  for (int s = 0; s < N - 1; ++s) {
    const int send = rank_ - s, recv = rank_ - s - 1;
    const int64_t sb = lo(send), sn = hi(send) - sb, rb = lo(recv), rn = hi(recv) - rb;
    check(MPI_Sendrecv(data + sb, int(sn), MPI_FLOAT, right, 0, scratch_.data(), int(rn), MPI_FLOAT, left, 0,
                       MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Sendrecv");
    stats_.bytes_sent += uint64_t(sn) * 4;
    for (int64_t i = 0; i < rn; ++i) data[rb + i] += scratch_[size_t(i)];
  }
  for (int s = 0; s < N - 1; ++s) {
    const int send = rank_ + 1 - s, recv = rank_ - s;
    const int64_t sb = lo(send), sn = hi(send) - sb, rb = lo(recv), rn = hi(recv) - rb;
    check(MPI_Sendrecv(data + sb, int(sn), MPI_FLOAT, right, 1, data + rb, int(rn), MPI_FLOAT, left, 1,
                       MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Sendrecv");
    stats_.bytes_sent += uint64_t(sn) * 4;
  }
#else
  (void)data, (void)n;
#endif
}

// Ranks past the largest power of two first fold into a partner and get
// the result back at the end. Float addition commutes, so both partners of
// an exchange compute the same bits.
void MpiCluster::doubling(float* data, int64_t n) {
#ifdef GROK_HAVE_MPI
  int p2 = 1;
  while (p2 * 2 <= size_) p2 *= 2;
  scratch_.resize(size_t(n));
  const int bytes = int(n);
  if (rank_ >= p2) {
    check(MPI_Send(data, bytes, MPI_FLOAT, rank_ - p2, 2, MPI_COMM_WORLD), "MPI_Send");
    stats_.bytes_sent += uint64_t(n) * 4;
    check(MPI_Recv(data, bytes, MPI_FLOAT, rank_ - p2, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    return;
  }
  if (rank_ + p2 < size_) {
    check(MPI_Recv(scratch_.data(), bytes, MPI_FLOAT, rank_ + p2, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    for (int64_t i = 0; i < n; ++i) data[i] += scratch_[size_t(i)];
  }
  for (int mask = 1; mask < p2; mask *= 2) {
    const int partner = rank_ ^ mask;
    check(MPI_Sendrecv(data, bytes, MPI_FLOAT, partner, 4, scratch_.data(), bytes, MPI_FLOAT, partner, 4,
                       MPI_COMM_WORLD, MPI_STATUS_IGNORE),
          "MPI_Sendrecv");
    stats_.bytes_sent += uint64_t(n) * 4;
    for (int64_t i = 0; i < n; ++i) data[i] += scratch_[size_t(i)];
  }
  if (rank_ + p2 < size_) {
    check(MPI_Send(data, bytes, MPI_FLOAT, rank_ + p2, 3, MPI_COMM_WORLD), "MPI_Send");
    stats_.bytes_sent += uint64_t(n) * 4;
  }
#else
  (void)data, (void)n;
#endif
}

// One round: every rank receives every other's values and sums them all in
// rank order (the same order, so the same bits, everywhere).
void MpiCluster::allgather(float* data, int64_t n) {
#ifdef GROK_HAVE_MPI
  scratch_.resize(size_t(n) * size_t(size_));
  check(MPI_Allgather(data, int(n), MPI_FLOAT, scratch_.data(), int(n), MPI_FLOAT, MPI_COMM_WORLD), "MPI_Allgather");
  stats_.bytes_sent += uint64_t(n) * 4 * uint64_t(size_ - 1);
  for (int64_t i = 0; i < n; ++i) {
    float s = scratch_[size_t(i)];
    for (int r = 1; r < size_; ++r) s += scratch_[size_t(r) * size_t(n) + size_t(i)];
    data[i] = s;
  }
#else
  (void)data, (void)n;
#endif
}

void MpiCluster::broadcast(std::vector<int64_t>& words) {
  if (size_ == 1) return;
#ifdef GROK_HAVE_MPI
  const auto t0 = Clock::now();
  int64_t n = int64_t(words.size());
  check(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  words.resize(size_t(n));
  check(MPI_Bcast(words.data(), int(n), MPI_INT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  if (rank_ == 0) stats_.bytes_sent += uint64_t(n + 1) * 8 * uint64_t(size_ - 1);
  ++stats_.other_calls;
  stats_.other_seconds += seconds_since(t0);
#endif
}

void MpiCluster::gather(const void* send, int64_t bytes, void* recv) {
  if (size_ == 1) {
    std::memcpy(recv, send, size_t(bytes));
    return;
  }
#ifdef GROK_HAVE_MPI
  const auto t0 = Clock::now();
  check(MPI_Gather(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Gather");
  if (rank_ != 0) stats_.bytes_sent += uint64_t(bytes);
  ++stats_.other_calls;
  stats_.other_seconds += seconds_since(t0);
#endif
}

void MpiCluster::barrier() {
#ifdef GROK_HAVE_MPI
  if (mpi_) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void MpiCluster::abort_job(int code) {
#ifdef GROK_HAVE_MPI
  if (mpi_) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

void MpiCluster::finish() {
#ifdef GROK_HAVE_MPI
  if (mpi_) {
    mpi_ = false;
    MPI_Finalize();
  }
#endif
}

std::vector<RankReport> gather_rank_reports(MpiCluster& cluster, uint64_t weight_bytes) {
  RankReport mine;
  mine.rank = cluster.rank();
  mine.peak_rss = peak_resident_bytes();
  mine.weight_bytes = weight_bytes;
  mine.comm = cluster.stats();
  const std::string host = cluster.host();
  std::memcpy(mine.host, host.data(), std::min(host.size(), sizeof mine.host - 1));
  std::vector<RankReport> all(cluster.leader() ? size_t(cluster.size()) : 0);
  cluster.gather(&mine, int64_t(sizeof mine), all.data());
  return all;
}

uint64_t peak_resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      uint64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

}  // namespace grok
