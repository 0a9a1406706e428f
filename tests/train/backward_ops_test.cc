// Every backward function of src/train/layer_ops.h against central finite
// differences of its forward function, in double precision on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "train/layer_ops.h"

namespace grok {
namespace {

std::vector<double> randn(size_t n, std::mt19937_64& rng, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  std::vector<double> v(n);
  for (double& x : v) x = d(rng);
  return v;
}

// Checks analytic[i] against (f(x+h) − f(x−h))/2h for every entry of x.
void expect_matches_fd(std::vector<double>& x, const std::vector<double>& analytic,
                       const std::function<double()>& f, const char* what, double tol = 1e-7) {
  ASSERT_EQ(x.size(), analytic.size());
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = f();
    x[i] = keep - h;
    const double down = f();
    x[i] = keep;
    const double fd = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], fd, tol * (1 + std::abs(fd))) << what << "[" << i << "]";
  }
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(BackwardOps, RmsNorm) {
  std::mt19937_64 rng(1);
  const int64_t n = 150, d = 7;  // dscale's sum over several blocks of rows
  auto x = randn(n * d, rng), scale = randn(d, rng), dy = randn(n * d, rng);
  ThreadPool pool(2);
  std::vector<double> y(n * d), rstd(n), dx(n * d, 0), dscale(d, 0);
  auto f = [&] {
    rmsnorm_forward<double>(nullptr, x.data(), scale.data(), y.data(), rstd.data(), n, d, 1e-5);
    return dot(y, dy);
  };
  f();
  rmsnorm_backward<double>(&pool, dy.data(), x.data(), scale.data(), rstd.data(), dx.data(), dscale.data(), n, d);
  expect_matches_fd(x, dx, f, "dx");
  expect_matches_fd(scale, dscale, f, "dscale");
}

TEST(BackwardOps, Linear) {
  std::mt19937_64 rng(2);
  const int64_t n = 5, in = 6, out = 9;  // not multiples of the kernel's blocks
  auto x = randn(n * in, rng), W = randn(out * in, rng), dy = randn(n * out, rng);
  std::vector<double> y(n * out), dx(n * in, 0), dW(out * in, 0), scratch;
  auto f = [&] {
    linear_forward<double>(nullptr, x.data(), W.data(), y.data(), n, in, out, scratch);
    return dot(y, dy);
  };
  linear_backward<double>(nullptr, dy.data(), x.data(), W.data(), dx.data(), dW.data(), n, in, out);
  expect_matches_fd(x, dx, f, "dx");
  expect_matches_fd(W, dW, f, "dW");
}

TEST(BackwardOps, Rope) {
  std::mt19937_64 rng(3);
  const int64_t n = 4, heads = 3, hd = 8;
  auto x = randn(n * heads * hd, rng), dy = randn(n * heads * hd, rng);
  const std::vector<int32_t> pos = {0, 1, 5, 17};
  const RopeTable<double> table(18, hd, 10000.0);
  auto f = [&] {
    std::vector<double> y = x;
    rope_apply(nullptr, y.data(), n, heads, pos.data(), table, false);
    return dot(y, dy);
  };
  std::vector<double> dx = dy;
  rope_apply(nullptr, dx.data(), n, heads, pos.data(), table, true);
  expect_matches_fd(x, dx, f, "dx");
}

// attention_backward's dq, dk, dv against finite differences of f, which
// runs the forward pass (whose probs the backward reads) and returns out·dout.
void expect_attention_backward_matches_fd(const AttentionShape& a, std::vector<double>& q, std::vector<double>& k,
                                          std::vector<double>& v, const std::vector<double>& dout,
                                          const std::vector<double>& probs, const std::function<double()>& f) {
  std::vector<double> dq(q.size(), 0), dk(k.size(), 0), dv(v.size(), 0);
  attention_backward<double>(nullptr, a, dout.data(), q.data(), k.data(), v.data(), probs.data(), dq.data(),
                             dk.data(), dv.data());
  expect_matches_fd(q, dq, f, "dq");
  expect_matches_fd(k, dk, f, "dk");
  expect_matches_fd(v, dv, f, "dv");
}

TEST(BackwardOps, AttentionWithCapGroupsAndPadding) {
  std::mt19937_64 rng(4);
  AttentionShape a;
  a.batch = 2, a.seq = 5, a.heads = 4, a.kv_heads = 2, a.head_dim = 4, a.scale = 0.7, a.cap = 2.0;  // the cap bites
  const int64_t n = a.batch * a.seq, qw = a.heads * a.head_dim, kw = a.kv_heads * a.head_dim;
  auto q = randn(n * qw, rng, 1.5), k = randn(n * kw, rng, 1.5), v = randn(n * kw, rng), dout = randn(n * qw, rng);
  const std::vector<uint8_t> valid = {1, 1, 0, 1, 1, 1, 1, 1, 1, 0};  // padding inside and at the end
  std::vector<double> out(n * qw), probs(a.batch * a.heads * a.seq * a.seq);
  auto f = [&] {
    attention_forward<double>(nullptr, a, q.data(), k.data(), v.data(), valid.data(), out.data(), probs.data());
    return dot(out, dout);
  };
  f();
  expect_attention_backward_matches_fd(a, q, k, v, dout, probs, f);
  // Causality: a future key gets no weight.
  EXPECT_EQ(probs[1], 0.0);
}

// Past one band of the causal products (48 rows): three bands, the last
// partial. The forward pass against a plain loop over every (query, key),
// the backward against finite differences.
TEST(BackwardOps, AttentionAcrossSeveralBands) {
  std::mt19937_64 rng(9);
  AttentionShape a;
  a.batch = 1, a.seq = 100, a.heads = 2, a.kv_heads = 1, a.head_dim = 4, a.scale = 0.6, a.cap = 2.5;
  const int64_t T = a.seq, hd = a.head_dim, qw = a.heads * hd, kw = a.kv_heads * hd;
  auto q = randn(T * qw, rng, 1.5), k = randn(T * kw, rng, 1.5), v = randn(T * kw, rng), dout = randn(T * qw, rng);
  std::vector<uint8_t> valid(size_t(T), 1);
  valid[50] = 0;  // a masked key in the second band
  std::vector<double> out(T * qw), probs(a.heads * T * T);
  auto f = [&] {
    attention_forward<double>(nullptr, a, q.data(), k.data(), v.data(), valid.data(), out.data(), probs.data());
    return dot(out, dout);
  };
  f();
  for (int64_t h = 0; h < a.heads; ++h)
    for (int64_t i = 0; i < T; ++i) {
      std::vector<double> w(size_t(i + 1), 0.0);
      double mx = -1e300, sum = 0;
      for (int64_t j = 0; j <= i; ++j) {
        if (!valid[size_t(j)]) continue;
        double s = 0;
        for (int64_t d = 0; d < hd; ++d) s += q[size_t(i * qw + h * hd + d)] * k[size_t(j * kw + d)];
        w[size_t(j)] = a.cap * std::tanh(s * a.scale / a.cap);
        mx = std::max(mx, w[size_t(j)]);
      }
      for (int64_t j = 0; j <= i; ++j)
        if (valid[size_t(j)]) sum += w[size_t(j)] = std::exp(w[size_t(j)] - mx);
      for (int64_t d = 0; d < hd; ++d) {
        double o = 0;
        for (int64_t j = 0; j <= i; ++j)
          if (valid[size_t(j)]) o += w[size_t(j)] / sum * v[size_t(j * kw + d)];
        ASSERT_NEAR(out[size_t(i * qw + h * hd + d)], o, 1e-12) << "head " << h << " query " << i;
      }
    }
  expect_attention_backward_matches_fd(a, q, k, v, dout, probs, f);
}

TEST(BackwardOps, GatedGelu) {
  std::mt19937_64 rng(4);
  const int64_t n = 9;
  auto h = randn(n, rng, 2.0), v = randn(n, rng), du = randn(n, rng);
  h[0] = 0.0;
  h[1] = 6.0;
  h[2] = -4.0;
  std::vector<double> t(n), u(n), dh(n, 0), dv(n, 0);
  auto f = [&] {
    gated_gelu_forward<double>(nullptr, h.data(), v.data(), t.data(), u.data(), n);
    return dot(u, du);
  };
  f();
  gated_gelu_backward<double>(nullptr, du.data(), h.data(), v.data(), t.data(), dh.data(), dv.data(), n);
  expect_matches_fd(h, dh, f, "dh");
  expect_matches_fd(v, dv, f, "dv");
}

// The float path runs tanh and exp through the SIMD kernels: it must give
// the double path's values to float accuracy.
TEST(BackwardOps, FloatPathMatchesDouble) {
  std::mt19937_64 rng(6);
  const int64_t n = 5000;  // several pool chunks and a tail
  auto h = randn(n, rng, 3.0), v = randn(n, rng), du = randn(n, rng);
  std::vector<double> t(n), u(n), dh(n, 0), dv(n, 0);
  gated_gelu_forward<double>(nullptr, h.data(), v.data(), t.data(), u.data(), n);
  gated_gelu_backward<double>(nullptr, du.data(), h.data(), v.data(), t.data(), dh.data(), dv.data(), n);
  auto f32 = [](const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); };
  std::vector<float> hf = f32(h), vf = f32(v), duf = f32(du), tf(n), uf(n), dhf(n, 0), dvf(n, 0);
  ThreadPool pool(2);
  gated_gelu_forward<float>(&pool, hf.data(), vf.data(), tf.data(), uf.data(), n);
  gated_gelu_backward<float>(&pool, duf.data(), hf.data(), vf.data(), tf.data(), dhf.data(), dvf.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(uf[size_t(i)], u[size_t(i)], 1e-5 * (1 + std::abs(u[size_t(i)]))) << i;
    ASSERT_NEAR(dhf[size_t(i)], dh[size_t(i)], 1e-5 * (1 + std::abs(dh[size_t(i)]))) << i;
    ASSERT_NEAR(dvf[size_t(i)], dv[size_t(i)], 1e-5 * (1 + std::abs(dv[size_t(i)]))) << i;
  }

  // Attention with the cap and a masked key, forward and backward.
  const AttentionShape shape{2, 100, 4, 2, 8, 0.3, 3.0};  // three bands of rows; a small cap so tanh bends
  const int64_t tokens = shape.batch * shape.seq, qw = shape.heads * shape.head_dim,
                kw = shape.kv_heads * shape.head_dim, pn = shape.batch * shape.heads * shape.seq * shape.seq;
  auto q = randn(tokens * qw, rng, 2.0), k = randn(tokens * kw, rng, 2.0), vv = randn(tokens * kw, rng),
       dout = randn(tokens * qw, rng);
  std::vector<uint8_t> valid(size_t(tokens), 1);
  valid[3] = 0;
  std::vector<double> out(tokens * qw), probs(pn), dq(tokens * qw, 0), dk(tokens * kw, 0), dvv(tokens * kw, 0);
  attention_forward<double>(nullptr, shape, q.data(), k.data(), vv.data(), valid.data(), out.data(), probs.data());
  attention_backward<double>(nullptr, shape, dout.data(), q.data(), k.data(), vv.data(), probs.data(), dq.data(),
                             dk.data(), dvv.data());
  std::vector<float> qf = f32(q), kf = f32(k), vvf = f32(vv), doutf = f32(dout), outf(tokens * qw), probsf(pn),
                     dqf(tokens * qw, 0), dkf(tokens * kw, 0), dvvf(tokens * kw, 0);
  attention_forward<float>(&pool, shape, qf.data(), kf.data(), vvf.data(), valid.data(), outf.data(), probsf.data());
  attention_backward<float>(&pool, shape, doutf.data(), qf.data(), kf.data(), vvf.data(), probsf.data(), dqf.data(),
                            dkf.data(), dvvf.data());
  auto near = [](const std::vector<float>& a, const std::vector<double>& b, const char* what) {
    for (size_t i = 0; i < b.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-5 * (1 + std::abs(b[i]))) << what << " " << i;
  };
  near(outf, out, "out");
  near(probsf, probs, "probs");
  near(dqf, dq, "dq");
  near(dkf, dk, "dk");
  near(dvvf, dvv, "dv");
}

TEST(BackwardOps, CrossEntropy) {
  std::mt19937_64 rng(5);
  const int64_t n = 4, vocab = 11;
  auto logits = randn(n * vocab, rng, 2.0);
  const std::vector<int32_t> targets = {3, 0, 10, 7};
  const std::vector<uint8_t> scored = {1, 0, 1, 1};
  auto f = [&] { return cross_entropy<double>(nullptr, logits.data(), targets.data(), scored.data(), n, vocab, nullptr, 1.0); };
  std::vector<double> d(n * vocab);
  const double loss = cross_entropy<double>(nullptr, logits.data(), targets.data(), scored.data(), n, vocab, d.data(), 1.0);
  EXPECT_NEAR(loss, f(), 1e-12);
  expect_matches_fd(logits, d, f, "dlogits");
  for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(d[size_t(vocab + j)], 0.0);  // unscored row
}

}  // namespace
}  // namespace grok
