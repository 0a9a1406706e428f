#include "train/layer_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/vector_ops.h"
#include "train/gemm.h"
#include "train/parallel.h"

namespace grok {

namespace {

// cap·tanh(p/cap) and e^(p − shift) over a row: float through the CPU's SIMD
// kernels (libm's scalar tanhf and expf were a third of a training step),
// double through libm for the finite-difference tests.
template <class S>
void soft_cap_row(S* p, int64_t n, S cap) {
  if constexpr (std::is_same_v<S, float>)
    soft_cap(p, n, cap);
  else
    for (int64_t i = 0; i < n; ++i) p[i] = cap * std::tanh(p[i] / cap);
}
template <class S>
void exp_row(S* p, int64_t n, S shift) {
  if constexpr (std::is_same_v<S, float>)
    exp_shifted(p, n, shift);
  else
    for (int64_t i = 0; i < n; ++i) p[i] = std::exp(p[i] - shift);
}

}  // namespace

template <class S>
void rmsnorm_forward(ThreadPool* pool, const S* x, const S* scale, S* y, S* rstd, int64_t n, int64_t d,
                     double eps) {
  for_each_range(pool, n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const S* xi = x + i * d;
      double ss = 0;
      for (int64_t j = 0; j < d; ++j) ss += double(xi[j]) * double(xi[j]);
      const S r = S(1.0 / std::sqrt(ss / double(d) + eps));
      rstd[i] = r;
      for (int64_t j = 0; j < d; ++j) y[i * d + j] = scale[j] * (xi[j] * r);
    }
  });
}

// y_j = s_j·x_j·r with r = (mean(x²)+eps)^-½, so with g = dy ⊙ s:
// dx_j = r·g_j − r³·x_j·(Σ_k g_k·x_k)/d. dscale sums over rows in fixed
// blocks of kNormRows, the blocks' sums then added in order: the same sum
// on any number of threads.
constexpr int64_t kNormRows = 64;

template <class S>
void rmsnorm_backward(ThreadPool* pool, const S* dy, const S* x, const S* scale, const S* rstd, S* dx, S* dscale,
                      int64_t n, int64_t d) {
  const int64_t blocks = (n + kNormRows - 1) / kNormRows;
  std::vector<S> partial(size_t(blocks * d), S(0));
  auto run = [&](int64_t b0, int64_t b1, int) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      S* ds = partial.data() + blk * d;
      for (int64_t i = blk * kNormRows; i < std::min(n, (blk + 1) * kNormRows); ++i) {
        const S* xi = x + i * d;
        const S* dyi = dy + i * d;
        const double r = double(rstd[i]);
        double gx = 0;
        for (int64_t j = 0; j < d; ++j) gx += double(dyi[j]) * double(scale[j]) * double(xi[j]);
        const double c = r * r * r * gx / double(d);
        for (int64_t j = 0; j < d; ++j) {
          ds[j] += dyi[j] * S(double(xi[j]) * r);
          dx[i * d + j] += S(r * double(dyi[j]) * double(scale[j]) - c * double(xi[j]));
        }
      }
    }
  };
  if (pool && blocks > 1)
    pool->parallel_for(blocks, run);
  else
    run(0, blocks, 0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t j = 0; j < d; ++j) dscale[j] += partial[size_t(blk * d + j)];
}

template <class S>
void linear_forward(ThreadPool* pool, const S* x, const S* W, S* y, int64_t n, int64_t in, int64_t out,
                    std::vector<S>& scratch) {
  if (n == 0) return;
  // y = x·(Wᵀ): the product reads B along its rows, so W is transposed
  // first, O(in·out) against the product's O(n·in·out).
  if (scratch.size() < size_t(in * out)) scratch.resize(size_t(in * out));
  transpose(pool, W, out, in, in, scratch.data());
  gemm(pool, n, out, in, x, in, 1, scratch.data(), out, y, out, false);
}

template <class S>
void linear_backward(ThreadPool* pool, const S* dy, const S* x, const S* W, S* dx, S* dW, int64_t n, int64_t in,
                     int64_t out) {
  if (n == 0) return;
  if (dx) gemm(pool, n, in, out, dy, out, 1, W, in, dx, in, true);  // dx[n][in] += dy[n][out]·W[out][in]
  gemm(pool, out, in, n, dy, 1, out, x, in, dW, in, true);          // dW[out][in] += dyᵀ·x[n][in]
}

template <class S>
RopeTable<S>::RopeTable(int64_t positions, int64_t head_dim, double base)
    : positions(positions), half(head_dim / 2) {
  cosines.resize(size_t(positions * half));
  sines.resize(size_t(positions * half));
  for (int64_t p = 0; p < positions; ++p)
    for (int64_t j = 0; j < half; ++j) {
      const double angle = double(p) * std::pow(base, -2.0 * double(j) / double(head_dim));
      cosines[size_t(p * half + j)] = S(std::cos(angle));
      sines[size_t(p * half + j)] = S(std::sin(angle));
    }
}

template <class S>
void rope_apply(ThreadPool* pool, S* x, int64_t n, int64_t heads, const int32_t* pos, const RopeTable<S>& t,
                bool inverse) {
  const int64_t half = t.half, head_dim = 2 * half;
  for (int64_t i = 0; i < n; ++i)
    if (pos[i] < 0 || pos[i] >= t.positions)
      fail("rope: position ", pos[i], " outside the table's ", t.positions);
  for_each_range(pool, n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const S* c = t.cosines.data() + pos[i] * half;
      const S* s = t.sines.data() + pos[i] * half;
      const S sign = inverse ? S(-1) : S(1);
      for (int64_t h = 0; h < heads; ++h) {
        S* v = x + (i * heads + h) * head_dim;
        for (int64_t j = 0; j < half; ++j) {  // [x1, x2] → [x1·c − x2·s, x2·c + x1·s]
          const S x1 = v[j], x2 = v[j + half], sj = sign * s[j];
          v[j] = x1 * c[j] - x2 * sj;
          v[j + half] = x2 * c[j] + x1 * sj;
        }
      }
    }
  });
}

namespace {

// One (sequence, kv head) pair's scratch: scores (seq × seq) and Kᵀ
// (head_dim × seq); the backward pass also the scores' gradient and Vᵀ.
template <class S>
struct AttentionScratch {
  std::vector<S> scores, dp, kt, vt;
  void size(int64_t T, int64_t hd, bool backward) {
    scores.resize(size_t(T * T));
    kt.resize(size_t(hd * T));
    if (!backward) return;
    dp.resize(size_t(T * T));
    vt.resize(size_t(hd * T));
  }
};

// Each thread's scratch, one for both passes, kept across calls (no fresh
// pages per layer).
template <class S>
AttentionScratch<S>& thread_scratch() {
  thread_local AttentionScratch<S> scratch;
  return scratch;
}

// Every (sequence, kv head) pair is one task: its q heads read only its k
// and v, so tasks write disjoint gradients and the split cannot change a sum.
template <class S, class Fn>
void for_each_group(ThreadPool* pool, const AttentionShape& a, bool backward, Fn fn) {
  const int64_t tasks = a.batch * a.kv_heads;
  auto run = [&](int64_t b, int64_t e, int) {
    AttentionScratch<S>& scratch = thread_scratch<S>();
    scratch.size(a.seq, a.head_dim, backward);
    for (int64_t t = b; t < e; ++t) fn(t / a.kv_heads, t % a.kv_heads, scratch);
  };
  if (pool)
    pool->parallel_for(tasks, run);
  else
    run(0, tasks, 0);
}

// Causal products skip the masked triangle: rows in bands of kBand, each
// band's products limited to the keys (or queries) it can see. The skipped
// terms are exact zeros, so the sums are those of the whole product.
constexpr int64_t kBand = 48;  // a multiple of the kernels' 6 rows and 16 lanes (for speed only)

template <class Fn>
void for_each_band(int64_t T, Fn fn) {
  for (int64_t i0 = 0; i0 < T; i0 += kBand) fn(i0, std::min(T, i0 + kBand));
}

}  // namespace

template <class S>
void attention_forward(ThreadPool* pool, const AttentionShape& a, const S* q, const S* k, const S* v,
                       const uint8_t* valid, S* out, S* probs) {
  const int64_t T = a.seq, hd = a.head_dim, qw = a.heads * hd, kw = a.kv_heads * hd;
  const int64_t group = a.heads / a.kv_heads;
  for_each_group<S>(pool, a, false, [&](int64_t b, int64_t g, AttentionScratch<S>& s) {
    const S* kb = k + b * T * kw + g * hd;
    const S* vb = v + b * T * kw + g * hd;
    const uint8_t* ok = valid + b * T;
    transpose(kb, T, hd, kw, s.kt.data());
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const S* qb = q + b * T * qw + h * hd;
      S* P = probs + (b * a.heads + h) * T * T;
      S* ob = out + b * T * qw + h * hd;
      // scores = Q·Kᵀ for the keys each band sees
      for_each_band(T, [&](int64_t i0, int64_t i1) {
        gemm(i1 - i0, i1, hd, qb + i0 * qw, qw, 1, s.kt.data(), T, s.scores.data() + i0 * T, T, false);
      });
      const S cap = S(a.cap), scale = S(a.scale);
      for (int64_t i = 0; i < T; ++i) {
        S* row = P + i * T;
        const S* sc = s.scores.data() + i * T;
        for (int64_t j = 0; j <= i; ++j) row[j] = sc[j] * scale;
        soft_cap_row(row, i + 1, cap);
        S mx = -std::numeric_limits<S>::infinity();
        for (int64_t j = 0; j <= i; ++j)
          if (ok[j]) mx = std::max(mx, row[j]);
        if (mx == -std::numeric_limits<S>::infinity()) {  // every key masked: no attention, output 0
          std::fill(row, row + T, S(0));
          continue;
        }
        exp_row(row, i + 1, mx);
        double sum = 0;
        for (int64_t j = 0; j <= i; ++j)
          if (ok[j]) sum += double(row[j]);
        for (int64_t j = 0; j < T; ++j) row[j] = (j <= i && ok[j]) ? S(double(row[j]) / sum) : S(0);
      }
      // out = P·V over the keys each band sees
      for_each_band(T, [&](int64_t i0, int64_t i1) {
        gemm(i1 - i0, hd, i1, P + i0 * T, T, 1, vb, kw, ob + i0 * qw, qw, false);
      });
    }
  });
}

template <class S>
void attention_backward(ThreadPool* pool, const AttentionShape& a, const S* dout, const S* q, const S* k,
                        const S* v, const S* probs, S* dq, S* dk, S* dv) {
  const int64_t T = a.seq, hd = a.head_dim, qw = a.heads * hd, kw = a.kv_heads * hd;
  const int64_t group = a.heads / a.kv_heads;
  for_each_group<S>(pool, a, true, [&](int64_t b, int64_t g, AttentionScratch<S>& s) {
    const S* kb = k + b * T * kw + g * hd;
    const S* vb = v + b * T * kw + g * hd;
    S* dkb = dk + b * T * kw + g * hd;
    S* dvb = dv + b * T * kw + g * hd;
    transpose(kb, T, hd, kw, s.kt.data());
    transpose(vb, T, hd, kw, s.vt.data());
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const S* qb = q + b * T * qw + h * hd;
      const S* dob = dout + b * T * qw + h * hd;
      S* dqb = dq + b * T * qw + h * hd;
      const S* P = probs + (b * a.heads + h) * T * T;
      for_each_band(T, [&](int64_t i0, int64_t i1) {
        // dV += Pᵀ·dO: key rows i0..i1 are seen by queries i0..T
        gemm(i1 - i0, hd, T - i0, P + i0 * T + i0, 1, T, dob + i0 * qw, qw, dvb + i0 * kw, kw, true);
        // dP = dO·Vᵀ, and the raw scores again (recomputed rather than saved)
        gemm(i1 - i0, i1, hd, dob + i0 * qw, qw, 1, s.vt.data(), T, s.dp.data() + i0 * T, T, false);
        gemm(i1 - i0, i1, hd, qb + i0 * qw, qw, 1, s.kt.data(), T, s.scores.data() + i0 * T, T, false);
      });
      // Through the softmax, the cap (d cap·tanh(u/cap) = 1 − tanh²) and
      // the scale; the capped scores recomputed as the forward pass made them.
      const S cap = S(a.cap), scale = S(a.scale);
      for (int64_t i = 0; i < T; ++i) {
        const S* p = P + i * T;
        S* d = s.dp.data() + i * T;
        S* capped = s.scores.data() + i * T;
        for (int64_t j = 0; j <= i; ++j) capped[j] *= scale;
        soft_cap_row(capped, i + 1, cap);
        double dot = 0;
        for (int64_t j = 0; j <= i; ++j) dot += double(p[j]) * double(d[j]);
        for (int64_t j = 0; j < T; ++j) {
          if (j > i || p[j] == S(0)) {
            d[j] = 0;
            continue;
          }
          const S t = capped[j] / cap;
          d[j] = p[j] * (d[j] - S(dot)) * (S(1) - t * t) * scale;
        }
      }
      for_each_band(T, [&](int64_t i0, int64_t i1) {
        // dQ += dS·K over the keys each query sees; dK += dSᵀ·Q over the
        // queries that see each key
        gemm(i1 - i0, hd, i1, s.dp.data() + i0 * T, T, 1, kb, kw, dqb + i0 * qw, qw, true);
        gemm(i1 - i0, hd, T - i0, s.dp.data() + i0 * T + i0, 1, T, qb + i0 * qw, qw, dkb + i0 * kw, kw, true);
      });
    }
  });
}

// GELU's tanh goes through soft_cap_row (cap 1: tanh itself), so float runs
// the SIMD kernel; the rest is element-wise arithmetic.
constexpr double kGeluK = 0.7978845608028654;  // sqrt(2/π)
constexpr double kGeluC = 0.044715;

template <class S>
void gated_gelu_forward(ThreadPool* pool, const S* h, const S* v, S* t, S* u, int64_t n) {
  for_each_range(pool, n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) t[i] = S(kGeluK) * (h[i] + S(kGeluC) * h[i] * h[i] * h[i]);
    soft_cap_row(t + b, e - b, S(1));
    for (int64_t i = b; i < e; ++i) u[i] = S(0.5) * h[i] * (S(1) + t[i]) * v[i];
  });
}

template <class S>
void gated_gelu_backward(ThreadPool* pool, const S* du, const S* h, const S* v, const S* t, S* dh, S* dv,
                         int64_t n) {
  for_each_range(pool, n, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const S x = h[i], ti = t[i];
      const S dinner = S(kGeluK) * (S(1) + S(3 * kGeluC) * x * x);
      const S grad = S(0.5) * (S(1) + ti) + S(0.5) * x * (S(1) - ti * ti) * dinner;  // gelu'(x)
      dh[i] += du[i] * v[i] * grad;
      dv[i] += du[i] * S(0.5) * x * (S(1) + ti);  // du·gelu(x)
    }
  });
}

template <class S>
void softmax_rows(S* x, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; ++i) {
    S* r = x + i * d;
    const double mx = double(*std::max_element(r, r + d));
    double sum = 0;
    for (int64_t j = 0; j < d; ++j) sum += std::exp(double(r[j]) - mx);
    for (int64_t j = 0; j < d; ++j) r[j] = S(std::exp(double(r[j]) - mx) / sum);
  }
}

template <class S>
double cross_entropy(ThreadPool* pool, const S* logits, const int32_t* targets, const uint8_t* scored, int64_t n,
                     int64_t vocab, S* dlogits, double grad_scale) {
  std::vector<double> row_loss(size_t(n), 0.0);
  auto rows = [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const S* l = logits + i * vocab;
      S* d = dlogits ? dlogits + i * vocab : nullptr;
      if (!scored[i]) {
        if (d) std::fill(d, d + vocab, S(0));
        continue;
      }
      // exp through exp_row (float: the SIMD kernel), sums in double.
      const S mx = *std::max_element(l, l + vocab);
      const S target_logit = l[targets[i]];
      thread_local std::vector<S> row;  // the exponentials when no gradient is asked for
      S* ex = d;
      if (!d) {
        row.resize(size_t(vocab));
        ex = row.data();
      }
      if (ex != l) std::copy(l, l + vocab, ex);  // (d may be l)
      exp_row(ex, vocab, mx);
      double sum = 0;
      for (int64_t j = 0; j < vocab; ++j) sum += double(ex[j]);
      if (d) {
        const S k = S(grad_scale / sum);
        for (int64_t j = 0; j < vocab; ++j) d[j] *= k;
        d[targets[i]] -= S(grad_scale);
      }
      row_loss[size_t(i)] = double(mx) + std::log(sum) - double(target_logit);
    }
  };
  if (pool)
    pool->parallel_for(n, rows);
  else
    rows(0, n, 0);
  double total = 0;
  for (double l : row_loss) total += l;
  return total;
}

#define GROK_INSTANTIATE(S)                                                                                        \
  template void rmsnorm_forward<S>(ThreadPool*, const S*, const S*, S*, S*, int64_t, int64_t, double);            \
  template void rmsnorm_backward<S>(ThreadPool*, const S*, const S*, const S*, const S*, S*, S*, int64_t,         \
                                    int64_t);                                                                     \
  template void linear_forward<S>(ThreadPool*, const S*, const S*, S*, int64_t, int64_t, int64_t,                \
                                  std::vector<S>&);                                                               \
  template void linear_backward<S>(ThreadPool*, const S*, const S*, const S*, S*, S*, int64_t, int64_t, int64_t); \
  template struct RopeTable<S>;                                                                                   \
  template void rope_apply<S>(ThreadPool*, S*, int64_t, int64_t, const int32_t*, const RopeTable<S>&, bool);      \
  template void attention_forward<S>(ThreadPool*, const AttentionShape&, const S*, const S*, const S*,            \
                                     const uint8_t*, S*, S*);                                                     \
  template void attention_backward<S>(ThreadPool*, const AttentionShape&, const S*, const S*, const S*, const S*, \
                                      const S*, S*, S*, S*);                                                      \
  template void gated_gelu_forward<S>(ThreadPool*, const S*, const S*, S*, S*, int64_t);                          \
  template void gated_gelu_backward<S>(ThreadPool*, const S*, const S*, const S*, const S*, S*, S*, int64_t);     \
  template void softmax_rows<S>(S*, int64_t, int64_t);                                                            \
  template double cross_entropy<S>(ThreadPool*, const S*, const int32_t*, const uint8_t*, int64_t, int64_t, S*,   \
                                   double);
GROK_INSTANTIATE(float)
GROK_INSTANTIATE(double)
#undef GROK_INSTANTIATE

}  // namespace grok
