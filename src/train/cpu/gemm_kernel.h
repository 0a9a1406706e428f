// The float C = A·Bᵀ kernel, compiled once per instruction set (each
// gemm_<isa>.cc includes this inside its own namespace with its own compiler
// flags). GCC vector extensions of 16 floats become one AVX-512 register,
// two AVX2 registers or four SSE registers as the flags allow.
//
// Register blocking: 4 rows of A × 4 rows of B → 16 accumulators, 8 loads
// per 16 FMAs; K in blocks of kKBlock so a strip of B stays in L2 while the
// rows of A pass over it. Every C element sums its K products in the same
// order (lanes of 16, lane sums, then the tail) whatever M and N are.
// (the including file has <cstdint> and <cstring>)

using vf16 = float __attribute__((vector_size(64)));

[[gnu::always_inline]] static inline vf16 load16(const float* p) {
  vf16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

static inline float lane_sum(vf16 v) {
  float s = 0;
  for (int i = 0; i < 16; ++i) s += v[i];
  return s;
}

template <int MR, int NR>
static inline void block(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                         int64_t ldc) {
  vf16 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = vf16{};
  const int64_t K16 = K & ~int64_t(15);
  for (int64_t k = 0; k < K16; k += 16) {
    vf16 a[MR], b[NR];
    for (int i = 0; i < MR; ++i) a[i] = load16(A + i * lda + k);
    for (int j = 0; j < NR; ++j) b[j] = load16(B + j * ldb + k);
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float s = lane_sum(acc[i][j]);
      for (int64_t k = K16; k < K; ++k) s += A[i * lda + k] * B[j * ldb + k];
      C[i * ldc + j] += s;
    }
}

template <int MR>
static inline void row_strip(int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                             float* C, int64_t ldc) {
  int64_t j = 0;
  for (; j + 4 <= N; j += 4) block<MR, 4>(K, A, lda, B + j * ldb, ldb, C + j, ldc);
  for (; j < N; ++j) block<MR, 1>(K, A, lda, B + j * ldb, ldb, C + j, ldc);
}

static constexpr int64_t kKBlock = 512;

void gemm_nt_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float* C, int64_t ldc, bool accumulate) {
  if (!accumulate)
    for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, size_t(N) * sizeof(float));
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t kb = K - k0 < kKBlock ? K - k0 : kKBlock;
    int64_t i = 0;
    for (; i + 4 <= M; i += 4) row_strip<4>(N, kb, A + i * lda + k0, lda, B + k0, ldb, C + i * ldc, ldc);
    for (; i < M; ++i) row_strip<1>(N, kb, A + i * lda + k0, lda, B + k0, ldb, C + i * ldc, ldc);
  }
}
