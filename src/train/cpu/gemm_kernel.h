// The float C = A·B kernel, compiled once per instruction set: each
// gemm_<isa>.cc defines GROK_TRAIN_VECTOR_BYTES and includes this inside its
// own namespace with its own compiler flags (-ffp-contract=fast, so a·b + c
// is one fused multiply-add where the ISA has it).
//
// Broadcast form: a tile of MR rows × NV vectors of C lives in registers;
// each step k broadcasts MR elements of A and multiplies them into NV
// vectors loaded from row k of B. There is no horizontal sum, B is read
// along its rows as stored, and A may be read with any strides, so all three
// products of a linear layer's training (y = x·Wᵀ via Wᵀ, dx = dy·W,
// dW = dyᵀ·x) and of attention run on operands in place.
//
// Every C element is one chain of multiply-adds over k = 0..K−1 in order,
// started from C (accumulate) or 0: the same arithmetic whichever tile,
// row split or column split (gemm.cc splits columns at multiples of 64)
// computes it.
// (the including file has <cstdint>)

using vf = float __attribute__((vector_size(GROK_TRAIN_VECTOR_BYTES)));
static constexpr int kLanes = GROK_TRAIN_VECTOR_BYTES / 4;
// Tile shapes fill the register file: 6×4 zmm accumulators of 32 registers
// for AVX-512, 6×2 of 16 for AVX2 and SSE.
static constexpr int kRows = 6;
static constexpr int kVectors = kLanes == 16 ? 4 : 2;
static constexpr int64_t kKBlock = 256;  // A's micro-panel (kRows × kKBlock) stays in L1
static constexpr int64_t kNBlock = 512;  // B's panel (kKBlock × kNBlock) stays in L2

[[gnu::always_inline]] static inline vf load(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] static inline void store(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }

// C[MR][NV·kLanes] (+)= A(MR × K)·B(K × NV·kLanes).
template <int MR, int NV>
static inline void tile(int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B, int64_t ldb,
                        float* C, int64_t ldc, bool load_c) {
  vf acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = load_c ? load(C + r * ldc + v * kLanes) : vf{};
  for (int64_t k = 0; k < K; ++k) {
    vf b[NV];
    for (int v = 0; v < NV; ++v) b[v] = load(B + k * ldb + v * kLanes);
    for (int r = 0; r < MR; ++r) {
      const float a = A[r * a_rs + k * a_cs];
      for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) store(C + r * ldc + v * kLanes, acc[r][v]);
}

// The columns past the last whole vector, one element at a time.
template <int MR>
static inline void tail(int64_t K, int64_t cols, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
                        int64_t ldb, float* C, int64_t ldc, bool load_c) {
  for (int r = 0; r < MR; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      float s = load_c ? C[r * ldc + j] : 0.f;
      for (int64_t k = 0; k < K; ++k) s += A[r * a_rs + k * a_cs] * B[k * ldb + j];
      C[r * ldc + j] = s;
    }
}

// MR rows of C across N columns.
template <int MR>
static inline void row_strip(int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
                             int64_t ldb, float* C, int64_t ldc, bool load_c) {
  constexpr int64_t wide = int64_t(kVectors) * kLanes;
  int64_t j = 0;
  for (; j + wide <= N; j += wide) tile<MR, kVectors>(K, A, a_rs, a_cs, B + j, ldb, C + j, ldc, load_c);
  for (; j + kLanes <= N; j += kLanes) tile<MR, 1>(K, A, a_rs, a_cs, B + j, ldb, C + j, ldc, load_c);
  if (j < N) tail<MR>(K, N - j, A, a_rs, a_cs, B + j, ldb, C + j, ldc, load_c);
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t a_rs, int64_t a_cs, const float* B,
              int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (K == 0 && !accumulate) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = 0.f;
    return;
  }
  for (int64_t k0 = 0; k0 < K; k0 += kKBlock) {
    const int64_t kb = K - k0 < kKBlock ? K - k0 : kKBlock;
    const bool load_c = accumulate || k0 > 0;
    for (int64_t j0 = 0; j0 < N; j0 += kNBlock) {
      const int64_t nb = N - j0 < kNBlock ? N - j0 : kNBlock;
      const float* Ak = A + k0 * a_cs;
      const float* Bk = B + k0 * ldb + j0;
      int64_t i = 0;
      for (; i + kRows <= M; i += kRows)
        row_strip<kRows>(nb, kb, Ak + i * a_rs, a_rs, a_cs, Bk, ldb, C + i * ldc + j0, ldc, load_c);
      for (; i < M; ++i) row_strip<1>(nb, kb, Ak + i * a_rs, a_rs, a_cs, Bk, ldb, C + i * ldc + j0, ldc, load_c);
    }
  }
}
