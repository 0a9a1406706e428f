// Packed Q8_0 / Q4_0 / Q6_K / I8 matrices: the lane-per-row kernels against the
// canonical arithmetic written out in scalar code (bit for bit), and matmul
// on packed matrices against the double product of the same activation blocks.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/quant.h"
#include "kernels/cpu/dot.h"
#include "kernels/dequantize.h"
#include "kernels/matmul.h"
#include "kernels/packed_matrix.h"

namespace grok {
namespace {

struct QuantMatrix {
  std::vector<std::byte> bytes;
  std::vector<uint16_t> scales;  // I8's
  WeightMatrix w;
};

QuantMatrix random_matrix(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 0.1f);
  std::vector<float> values(size_t(rows * cols));
  for (float& v : values) v = dist(rng);
  QuantMatrix m;
  if (t == DType::I8) {  // the checkpoint's layout: [cols][rows] int8, bf16 scales per 2 blocks of 64 inputs
    std::uniform_int_distribution<int> q(-128, 127);
    std::uniform_real_distribution<float> scale(1e-3f, 2e-3f);
    m.bytes.resize(size_t(rows * cols));
    for (auto& b : m.bytes) b = std::byte(uint8_t(q(rng)));
    const int64_t blocks = cols / 64;
    m.scales.resize(size_t(blocks * rows));
    for (auto& v : m.scales) v = f32_to_bf16(scale(rng));
    m.w = WeightMatrix{t, rows, cols, m.bytes.data(), uint64_t(rows)};
    m.w.scales = m.scales.data();
    m.w.scale_blocks = blocks;
    return m;
  }
  m.bytes = quantize(t, values.data(), rows * cols);
  m.w = WeightMatrix{t, rows, cols, m.bytes.data(), dtype_bytes(t, cols)};
  return m;
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

// Both activation formats of the same values: 16-bit blocks for most
// packed kernels, 8-bit ones (packed Q4_0's lane order) for Q4_0's.
struct Activations {
  std::vector<BlockQ16Act> q16;
  std::vector<BlockQ8Act> q8;
  explicit Activations(const std::vector<float>& x) : q16(x.size() / 32), q8(x.size() / 32) {
    quantize_act_scalar(x.data(), q16.data(), int64_t(q16.size()));
    quantize_act8_scalar(x.data(), q8.data(), int64_t(q8.size()));
  }
};

// Activation k of a block as an integer, whatever the format.
int act_int(const BlockQ16Act& b, int k) { return b.q[k]; }
int act_int(const BlockQ8Act& b, int k) {
  for (int j = 0; j < 8; ++j)
    if (kQ4_0LaneOrder[j] == k % 8) return b.q[8 * (k / 8) + j];
  return 0;
}

// Weight k of row r's block b as the integer the block scale d multiplies.
int weight_int(const WeightMatrix& w, int64_t r, int64_t b, int k, float& d) {
  if (w.dtype == DType::I8) {
    const int64_t i = 32 * b + k;
    d = bf16_to_f32(w.scales[(i / w.scale_block_cols()) * w.rows + r]);
    return int8_t(w.data[uint64_t(i) * w.row_bytes + uint64_t(r)]);
  }
  if (w.dtype == DType::Q8_0) {
    BlockQ8_0 blk;
    std::memcpy(&blk, w.row(r) + b * sizeof blk, sizeof blk);
    d = f16_to_f32(blk.d);
    return blk.q[k];
  }
  BlockQ4_0 blk;
  std::memcpy(&blk, w.row(r) + b * sizeof blk, sizeof blk);
  d = f16_to_f32(blk.d);
  return (k < 16 ? blk.qs[k] & 0x0F : blk.qs[k - 16] >> 4) - 8;
}

// Q6_K's: per 16-weight sub-block, its exact integer sum times
// (d·scale)·(activation d), fused-added in order.
float canonical_q6_k(const WeightMatrix& w, int64_t r, const BlockQ16Act* x) {
  float acc = 0;
  for (int64_t sb = 0; sb < w.cols / 256; ++sb) {
    BlockQ6_K blk;
    std::memcpy(&blk, w.row(r) + sb * sizeof blk, sizeof blk);
    for (int j = 0; j < 16; ++j) {
      int32_t sum = 0;
      for (int e = 16 * j; e < 16 * j + 16; ++e) {
        const int h = e / 128, g = (e % 128) / 32, l = e % 32;
        const uint8_t low = blk.ql[64 * h + l + 32 * (g & 1)];
        const int q = ((g < 2 ? low & 0x0F : low >> 4) | (((blk.qh[32 * h + l] >> (2 * g)) & 3) << 4)) - 32;
        sum += q * x[sb * 8 + e / 32].q[e % 32];
      }
      const float dsc = f16_to_f32(blk.d) * float(blk.scales[j]);
      acc = std::fma(float(sum), dsc * x[sb * 8 + j / 2].d, acc);
    }
  }
  return acc;
}

// The packed kernels' documented arithmetic (dot.h), one output at a time.
template <typename Act>
float canonical_blocks(const WeightMatrix& w, int64_t r, const Act* x) {
  float acc = 0;
  for (int64_t b = 0; b < w.cols / 32; ++b) {
    int32_t sum = 0;
    float d = 0;
    for (int k = 0; k < 32; ++k) sum += weight_int(w, r, b, k, d) * act_int(x[b], k);
    acc = std::fma(float(sum), d * x[b].d, acc);
  }
  return acc;
}
float canonical(const WeightMatrix& w, int64_t r, const Activations& a, int64_t block) {
  if (w.dtype == DType::Q6_K) return canonical_q6_k(w, r, a.q16.data() + block);
  if (w.dtype == DType::Q4_0 || w.activations8) return canonical_blocks(w, r, a.q8.data() + block);
  return canonical_blocks(w, r, a.q16.data() + block);
}

TEST(QuantizeAct8, RoundsEachValueToTheBlockScaleInLaneOrder) {
  std::mt19937 rng(5);
  std::vector<float> x = random_floats(96, rng);
  x[40] = 0;  // a zero block would give d = 0: check one with a zero value too
  for (int i = 64; i < 96; ++i) x[size_t(i)] = 0;
  const Activations a(x);
  for (int64_t b = 0; b < 3; ++b) {
    float amax = 0;
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::abs(x[size_t(32 * b + k)]));
    ASSERT_EQ(a.q8[size_t(b)].d, amax / 127.0f);
    int32_t sum = 0;
    for (int k = 0; k < 32; ++k) {
      const int q = act_int(a.q8[size_t(b)], k);
      sum += q;
      ASSERT_LE(std::abs(q), 127);
      if (amax > 0) EXPECT_NEAR(q * a.q8[size_t(b)].d, x[size_t(32 * b + k)], 0.5001 * a.q8[size_t(b)].d);
      else EXPECT_EQ(q, 0);
    }
    EXPECT_EQ(a.q8[size_t(b)].sum, sum);
  }
}

class PackedKernelsTest : public ::testing::TestWithParam<Isa> {};

// Every token count a tile takes, a full group and a partial one (rows
// 16..20): each output equals the canonical arithmetic bit for bit, and the
// rows past the matrix are not written.
TEST_P(PackedKernelsTest, TilesEqualTheCanonicalArithmetic) {
  const DotKernels& k = dot_kernels(GetParam());
  if (!k.q8_0_packed) GTEST_SKIP() << "no packed kernels on this ISA";
  std::mt19937 rng(23);
  const int64_t rows = 21;
  // Q8_0 twice: against 16-bit activations, then 8-bit ones.
  for (int kase = 0; kase < 5; ++kase) {
    const DType t = std::array{DType::Q8_0, DType::Q8_0, DType::Q4_0, DType::Q6_K, DType::I8}[size_t(kase)];
    const int64_t cols = t == DType::Q6_K ? 512 : 320, nb = cols / 32;
    QuantMatrix m = random_matrix(t, rows, cols, rng);
    m.w.activations8 = kase == 1;
    PackedStorage packed(packed_matrix_bytes(m.w));
    pack_groups(m.w, 0, 2, packed.data());
    const Activations xq(random_floats(kPackedTokens * cols, rng));
    for (int tokens = 1; tokens <= kPackedTokens; ++tokens)
      for (int64_t g = 0; g < 2; ++g) {
        const int valid = int(std::min<int64_t>(kPackedRows, rows - g * kPackedRows));
        std::vector<float> y(size_t(tokens * kPackedRows), -1234.0f);
        const std::byte* group = packed.data() + g * packed_group_bytes(t, cols);
        if (t == DType::Q4_0) {
          k.q4_0_packed(group, nb, valid, xq.q8.data(), tokens, y.data(), kPackedRows);
        } else if (m.w.activations8) {
          k.q8_0_packed8(group, nb, valid, xq.q8.data(), tokens, y.data(), kPackedRows);
        } else {
          auto tile = t == DType::Q8_0 ? k.q8_0_packed : t == DType::Q6_K ? k.q6_k_packed : k.i8_packed;
          tile(group, nb, valid, xq.q16.data(), tokens, y.data(), kPackedRows);
        }
        for (int tk = 0; tk < tokens; ++tk)
          for (int r = 0; r < kPackedRows; ++r) {
            const float got = y[size_t(tk * kPackedRows + r)];
            if (r >= valid) {
              ASSERT_EQ(got, -1234.0f) << "row past the matrix written";
              continue;
            }
            ASSERT_EQ(got, canonical(m.w, g * kPackedRows + r, xq, tk * nb))
                << dtype_name(t) << (m.w.activations8 ? " (8-bit activations)" : "") << " tokens " << tokens
                << " token " << tk << " row " << g * kPackedRows + r;
          }
      }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, PackedKernelsTest, ::testing::ValuesIn(supported_isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

// matmul on a packed matrix (threads, 16-row tasks, 8-token tiles and their
// edges) against the double-precision product of the same weights and the
// same activation blocks (16-bit; Q4_0's and activations8 Q8_0's 8-bit),
// and each token's output equal to what it gets alone.
TEST(PackedMatmul, MatchesTheDoubleProductAndGivesEachTokenItsOwnResult) {
  if (!active_dot_kernels().i8_packed) GTEST_SKIP() << "this CPU's kernels have no packed layouts";
  std::mt19937 rng(29);
  ThreadPool pool(3);
  const int64_t rows = 70, cols = 256, tokens = 13, nb = cols / 32;
  const std::vector<float> x = random_floats(tokens * cols, rng);
  const Activations xq(x);
  for (int kase = 0; kase < 5; ++kase) {
    const DType t = std::array{DType::Q8_0, DType::Q8_0, DType::Q4_0, DType::Q6_K, DType::I8}[size_t(kase)];
    QuantMatrix m = random_matrix(t, rows, cols, rng);
    m.w.activations8 = kase == 1;
    const bool act8 = t == DType::Q4_0 || (m.w.activations8 && active_dot_kernels().q8_0_packed8);
    std::vector<float> weights(size_t(rows * cols)), packed_y(size_t(tokens * rows)), alone(static_cast<size_t>(rows));
    dequantize_rows(m.w, 0, rows, weights.data());
    PackedStorage packed(packed_matrix_bytes(m.w));
    pack_groups(m.w, 0, (rows + kPackedRows - 1) / kPackedRows, packed.data());
    m.w.packed = packed.data();
    matmul(m.w, x.data(), tokens, packed_y.data(), pool);
    for (int64_t tk = 0; tk < tokens; ++tk)
      for (int64_t r = 0; r < rows; ++r) {
        double want = 0, size = 0;
        for (int64_t c = 0; c < cols; ++c) {
          const size_t b = size_t(tk * nb + c / 32);
          const double a = act8 ? double(act_int(xq.q8[b], int(c % 32))) * xq.q8[b].d
                                : double(xq.q16[b].q[c % 32]) * xq.q16[b].d;
          const double term = double(weights[size_t(r * cols + c)]) * a;
          want += term;
          size += std::abs(term);
        }
        ASSERT_NEAR(packed_y[size_t(tk * rows + r)], want, 1e-6 * size + 1e-7)
            << dtype_name(t) << " token " << tk << " row " << r;
      }
    for (int64_t tk = 0; tk < tokens; ++tk) {
      matmul(m.w, x.data() + tk * cols, 1, alone.data(), pool);
      for (int64_t r = 0; r < rows; ++r)
        ASSERT_EQ(alone[size_t(r)], packed_y[size_t(tk * rows + r)]) << dtype_name(t) << " token " << tk << " row " << r;
    }
  }
}

// Matrices sharing an input (attention's q, k, v) give what matmul() gives
// each, bit for bit: packed and not, with tasks straddling two matrices,
// mixed activation kinds (which fall back to matmul), and inputs small
// enough to be prepared on the calling thread or large enough for the pool.
TEST(MatmulSharedInput, EqualsOneMatmulEach) {
  std::mt19937 rng(37);
  ThreadPool pool(3);
  const int64_t cols = 256;
  struct Case { std::vector<DType> types; bool pack; };
  for (const Case& c : {Case{{DType::Q8_0, DType::Q8_0, DType::Q8_0}, true},
                        Case{{DType::Q8_0, DType::Q6_K, DType::Q8_0}, false},
                        Case{{DType::Q8_0, DType::Q4_0, DType::I8}, true},
                        Case{{DType::F32, DType::F16}, false}})
    for (int64_t tokens : {1, 5, 80}) {
      const std::vector<float> x = random_floats(tokens * cols, rng);
      std::vector<QuantMatrix> ms;
      ms.reserve(c.types.size());
      std::vector<std::unique_ptr<PackedStorage>> packed;
      const int64_t rows[] = {70, 20, 33};
      for (size_t i = 0; i < c.types.size(); ++i) {
        ms.push_back(random_matrix(c.types[i], rows[i], cols, rng));
        if (c.pack && packable(ms.back().w)) {
          packed.push_back(std::make_unique<PackedStorage>(packed_matrix_bytes(ms.back().w)));
          pack_groups(ms.back().w, 0, (rows[i] + kPackedRows - 1) / kPackedRows, packed.back()->data());
          ms.back().w.packed = packed.back()->data();
        }
      }
      std::vector<const WeightMatrix*> ws;
      std::vector<std::vector<float>> ys, expected;
      for (const QuantMatrix& m : ms) {
        ws.push_back(&m.w);
        ys.emplace_back(size_t(tokens * m.w.rows), -1.0f);
        expected.emplace_back(size_t(tokens * m.w.rows));
        matmul(m.w, x.data(), tokens, expected.back().data(), pool);
      }
      std::vector<float*> outs;
      for (auto& y : ys) outs.push_back(y.data());
      matmul_shared_input(ws, x.data(), tokens, outs, pool);
      for (size_t i = 0; i < ms.size(); ++i)
        for (size_t j = 0; j < ys[i].size(); ++j)
          ASSERT_EQ(ys[i][j], expected[i][j]) << dtype_name(c.types[i]) << " matrix " << i << " of " << ms.size()
                                              << ", " << tokens << " tokens, value " << j;
    }
  std::vector<float> y(16);
  float* one[] = {y.data()};
  EXPECT_THROW(matmul_shared_input(std::span<const WeightMatrix* const>(), nullptr, 1, one, pool), Error);
}

// Row ranges (what the MoE block runs from its own pool tasks) give every
// (row, token) exactly what the whole product gives, whatever the range and
// however the input was prepared (whole rows through the pool, or column
// ranges one at a time); for every format, packed or in the file's layout.
TEST(MatmulRows, RangesEqualTheWholeProductBitForBit) {
  std::mt19937 rng(31);
  ThreadPool pool(3);
  const int64_t rows = 70, cols = 256, tokens = 5;
  const std::vector<float> x = random_floats(tokens * cols, rng);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q6_K, DType::Q5_0, DType::I8})
    for (bool pack : {false, true}) {
      QuantMatrix m = random_matrix(t, rows, cols, rng);
      PackedStorage packed(pack && packable(m.w) ? packed_matrix_bytes(m.w) : 64);
      if (pack && packable(m.w)) {
        pack_groups(m.w, 0, (rows + kPackedRows - 1) / kPackedRows, packed.data());
        m.w.packed = packed.data();
      }
      const std::string what = std::string(dtype_name(t)) + (m.w.packed ? " packed" : "");
      if (!matmul_rows_supported(m.w)) {
        EXPECT_TRUE(t == DType::I8 && !(m.w.packed && active_dot_kernels().i8_packed)) << what;
        continue;
      }
      std::vector<float> whole(size_t(tokens * rows));
      matmul(m.w, x.data(), tokens, whole.data(), pool);

      MatmulInput by_rows, by_columns;
      by_rows.set_all(MatmulInput::kind_for(m.w), x.data(), tokens, cols, pool);
      by_columns.reset(MatmulInput::kind_for(m.w), tokens, cols);
      for (int64_t tk = 0; tk < tokens; ++tk) {
        by_columns.set(tk, x.data() + tk * cols, 96, cols);
        by_columns.set(tk, x.data() + tk * cols, 0, 96);
      }
      for (const MatmulInput* in : {&by_rows, &by_columns}) {
        const int64_t stride = rows + 3;
        std::vector<float> y(size_t(tokens * stride), -1.0f);
        for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 16}, {16, 48}, {48, rows}})
          matmul_rows(m.w, *in, r0, r1, y.data() + r0, stride);
        for (int64_t tk = 0; tk < tokens; ++tk)
          for (int64_t r = 0; r < rows; ++r)
            ASSERT_EQ(y[size_t(tk * stride + r)], whole[size_t(tk * rows + r)]) << what << " token " << tk << " row " << r;
      }
      std::vector<float> y(size_t(tokens * rows));
      EXPECT_THROW(matmul_rows(m.w, by_rows, 8, 24, y.data(), rows), Error) << what << ": a range inside a group";
      MatmulInput other;
      other.reset(MatmulInput::kind_for(m.w) == MatmulInput::Kind::kQ16 ? MatmulInput::Kind::kQ8
                                                                          : MatmulInput::Kind::kQ16,
                  tokens, cols);
      try {
        matmul_rows(m.w, other, 0, 16, y.data(), rows);
        ADD_FAILURE() << what << ": activations of the wrong kind were taken";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::string(dtype_name(t))), std::string::npos) << e.what();
      }
    }
}

}  // namespace
}  // namespace grok
