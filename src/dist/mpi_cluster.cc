#include "dist/mpi_cluster.h"

#include <sched.h>
#include <unistd.h>

#include <atomic>
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

std::atomic<bool> abandoned{false};

}  // namespace

#ifdef GROK_HAVE_MPI
// Every wait polls, so that abandon() can end it: a rank that died leaves
// the others' shared-memory transfers waiting forever otherwise.
static void wait_all(int n, MPI_Request* requests, const char* call) {
  for (int polls = 0;; ++polls) {
    int done = 0;
    check(MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE), call);
    if (done) return;
    if (abandoned) fail("the other ranks of this tensor-parallel job stopped during ", call);
    if (polls > 1000) sched_yield();
  }
}
#endif

namespace {

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
    {
      MPI_Request r;
      check(MPI_Iallreduce(MPI_IN_PLACE, data, int(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r), "MPI_Iallreduce");
      wait_all(1, &r, "MPI_Iallreduce");
    }
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
    sendrecv(data + sb, sn, right, scratch_.data(), rn, left, 0);
    for (int64_t i = 0; i < rn; ++i) data[rb + i] += scratch_[size_t(i)];
  }
  for (int s = 0; s < N - 1; ++s) {
    const int send = rank_ + 1 - s, recv = rank_ - s;
    const int64_t sb = lo(send), sn = hi(send) - sb, rb = lo(recv), rn = hi(recv) - rb;
    sendrecv(data + sb, sn, right, data + rb, rn, left, 1);
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
  if (rank_ >= p2) {
    sendrecv(data, n, rank_ - p2, nullptr, 0, -1, 2);
    sendrecv(nullptr, 0, -1, data, n, rank_ - p2, 3);
    return;
  }
  if (rank_ + p2 < size_) {
    sendrecv(nullptr, 0, -1, scratch_.data(), n, rank_ + p2, 2);
    for (int64_t i = 0; i < n; ++i) data[i] += scratch_[size_t(i)];
  }
  for (int mask = 1; mask < p2; mask *= 2) {
    const int partner = rank_ ^ mask;
    sendrecv(data, n, partner, scratch_.data(), n, partner, 4);
    for (int64_t i = 0; i < n; ++i) data[i] += scratch_[size_t(i)];
  }
  if (rank_ + p2 < size_) {
    sendrecv(data, n, rank_ + p2, nullptr, 0, -1, 3);
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
  MPI_Request r;
  check(MPI_Iallgather(data, int(n), MPI_FLOAT, scratch_.data(), int(n), MPI_FLOAT, MPI_COMM_WORLD, &r),
        "MPI_Iallgather");
  wait_all(1, &r, "MPI_Iallgather");
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
  // One message for most plans (a decode step's is a few dozen words):
  // its length and first words together; the rest, if any, after.
  constexpr int64_t kHead = 512;
  std::vector<int64_t> head(static_cast<size_t>(kHead));
  int64_t n = int64_t(words.size());
  if (rank_ == 0) {
    head[0] = n;
    std::copy_n(words.begin(), std::min(n, kHead - 1), head.begin() + 1);
  }
  MPI_Request r;
  check(MPI_Ibcast(head.data(), int(kHead), MPI_INT64_T, 0, MPI_COMM_WORLD, &r), "MPI_Ibcast");
  wait_all(1, &r, "MPI_Ibcast");
  n = head[0];
  if (rank_ != 0) {
    words.resize(size_t(n));
    std::copy_n(head.begin() + 1, std::min(n, kHead - 1), words.begin());
  }
  if (n > kHead - 1) {
    check(MPI_Ibcast(words.data() + (kHead - 1), int(n - (kHead - 1)), MPI_INT64_T, 0, MPI_COMM_WORLD, &r),
          "MPI_Ibcast");
    wait_all(1, &r, "MPI_Ibcast");
  }
  if (rank_ == 0) stats_.bytes_sent += uint64_t(std::max(n + 1, kHead)) * 8 * uint64_t(size_ - 1);
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
  MPI_Request r;
  check(MPI_Igather(send, int(bytes), MPI_BYTE, recv, int(bytes), MPI_BYTE, 0, MPI_COMM_WORLD, &r), "MPI_Igather");
  wait_all(1, &r, "MPI_Igather");
  if (rank_ != 0) stats_.bytes_sent += uint64_t(bytes);
  ++stats_.other_calls;
  stats_.other_seconds += seconds_since(t0);
#endif
}

void MpiCluster::barrier() {
#ifdef GROK_HAVE_MPI
  if (!mpi_) return;
  MPI_Request r;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &r), "MPI_Ibarrier");
  wait_all(1, &r, "MPI_Ibarrier");
#endif
}

// Not MPI_Abort: Debian's mpirun 4.1 can crash tearing down after one.
// mpirun ends the job when a rank exits non-zero without finalising.
void MpiCluster::abort_job(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

void MpiCluster::abandon() { abandoned = true; }

// One exchange of floats: a send to `to` and a receive from `from`, either
// left out with a null buffer.
void MpiCluster::sendrecv(const float* send, int64_t send_n, int to, float* recv, int64_t recv_n, int from, int tag) {
#ifdef GROK_HAVE_MPI
  MPI_Request r[2];
  int n = 0;
  if (recv) check(MPI_Irecv(recv, int(recv_n), MPI_FLOAT, from, tag, MPI_COMM_WORLD, &r[n++]), "MPI_Irecv");
  if (send) check(MPI_Isend(send, int(send_n), MPI_FLOAT, to, tag, MPI_COMM_WORLD, &r[n++]), "MPI_Isend");
  wait_all(n, r, "an all-reduce");
  if (send) stats_.bytes_sent += uint64_t(send_n) * 4;
#else
  (void)send, (void)send_n, (void)to, (void)recv, (void)recv_n, (void)from, (void)tag;
#endif
}

void MpiCluster::finish() {
#ifdef GROK_HAVE_MPI
  // After abandon() the other ranks may never reach MPI_Finalize (which
  // waits for all of them): leave, and let mpirun end the job.
  if (mpi_ && !abandoned) {
    mpi_ = false;
    MPI_Finalize();
  }
#endif
}

std::vector<AllreduceTiming> measure_allreduce(MpiCluster& cluster, int64_t n, int rounds, int calls) {
  std::vector<AllreduceTiming> out;
  const AllreduceAlgorithm chosen = cluster.algorithm();
  std::vector<float> data(static_cast<size_t>(n));
  for (AllreduceAlgorithm a : {AllreduceAlgorithm::kRing, AllreduceAlgorithm::kDoubling, AllreduceAlgorithm::kAllgather,
                               AllreduceAlgorithm::kMpi}) {
    cluster.set_algorithm(a);
    std::vector<double> per_call;
    const uint64_t sent0 = cluster.stats().bytes_sent;
    for (int r = 0; r < rounds; ++r) {
      for (size_t i = 0; i < data.size(); ++i) data[i] = float(i % 7) * 1e-3f;  // finite sums, call after call
      cluster.barrier();
      const auto t0 = Clock::now();
      for (int c = 0; c < calls; ++c) cluster.allreduce_sum(data.data(), n);
      per_call.push_back(seconds_since(t0) / calls);
    }
    std::sort(per_call.begin(), per_call.end());
    out.push_back({a, per_call[per_call.size() / 2],
                   double(cluster.stats().bytes_sent - sent0) / double(rounds * calls)});
  }
  cluster.set_algorithm(chosen);
  return out;
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
