#include "train/grad_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/thread_pool.h"
#include "train/layer_ops.h"
#include "train/parallel.h"

namespace grok {

// What one layer's backward pass needs from its forward pass.
template <class S>
struct GradModel<S>::Acts {
  std::vector<S> x_in, a, rstd0, q, k, v, probs, att, o, rstd1, x_mid, m, rstd2;
  std::vector<S> p;               // [n][E] router probabilities (× valid)
  std::vector<int32_t> chosen;    // [n][k] experts, best first
  std::vector<S> gates;           // [n][k]
  std::vector<int32_t> row;       // [n][k] the token's row among its expert's tokens (−1: invalid token)
  struct Expert {
    std::vector<int64_t> token;   // tokens routed here, ascending
    std::vector<int32_t> slot;    // which of the token's k choices
    std::vector<S> m, h1, hv, t, u, y;  // gathered input, gelu branch, linear branch, GELU's tanh, product, output
  };
  std::vector<Expert> experts;
  std::vector<S> moe, rstd3;       // MoE output before its norm

  // fn(expert, slot, row) for token t's slots in ascending expert id (the
  // fixed order of its MoE sums), skipping an invalid token's. O(k²): k is
  // a handful.
  template <class Fn>
  void for_each_slot_by_expert(int64_t t, int64_t k, Fn fn) const {
    int32_t last = -1;
    for (int64_t done = 0; done < k; ++done) {
      int64_t best = -1;
      for (int64_t s = 0; s < k; ++s) {
        const int32_t e = chosen[size_t(t * k + s)];
        if (e > last && (best < 0 || e < chosen[size_t(t * k + best)])) best = s;
      }
      last = chosen[size_t(t * k + best)];
      if (row[size_t(t * k + best)] >= 0) fn(int64_t(last), best, int64_t(row[size_t(t * k + best)]));
    }
  }
};

namespace {
template <class S>
void resize(std::vector<S>& v, int64_t n) {
  v.resize(size_t(n));
}

// x[i] *= k for i < n.
template <class S>
void scale_in_place(ThreadPool* pool, S* x, int64_t n, S k) {
  for_each_range(pool, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] *= k;
  });
}

// dst[i] += src[i] for i < n.
template <class S>
void add_into(ThreadPool* pool, S* dst, const S* src, int64_t n) {
  for_each_range(pool, n, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dst[i] += src[i];
  });
}
}  // namespace

template <class S>
GradModel<S>::GradModel(const GrokConfig& c, ThreadPool* pool) : c_(c), layout_(c), pool_(pool) {
  if (c.n_heads % c.n_kv_heads != 0) fail("training: n_heads must be a multiple of n_kv_heads");
  if (c.head_dim % 2 != 0) fail("training: head_dim must be even (rotary embedding)");
}

template <class S>
GradModel<S>::~GradModel() = default;

template <class S>
void GradModel<S>::layer_forward(int64_t l, const S* P, S* x, Acts& a, const LossOptions& o, LossReport& r) {
  const LayerParamOffsets& w = layout_.layers[size_t(l)];
  const int64_t n = n_, D = c_.dim, hd = c_.head_dim, qw = c_.n_heads * hd, kw = c_.n_kv_heads * hd;
  const int64_t E = c_.n_experts, K = c_.n_experts_used, F = c_.ffn_dim;
  a.x_in.assign(x, x + n * D);
  for (auto* b : {&a.a, &a.o, &a.x_mid, &a.m, &a.moe}) resize(*b, n * D);
  for (auto* b : {&a.rstd0, &a.rstd1, &a.rstd2, &a.rstd3}) resize(*b, n);
  resize(a.q, n * qw);
  resize(a.att, n * qw);
  resize(a.k, n * kw);
  resize(a.v, n * kw);
  resize(a.probs, rows_ * c_.n_heads * seq_ * seq_);

  // Attention block: x_mid = x + rms1(Wo·attention(rms0(x)))
  rmsnorm_forward(pool_, x, P + w.attn_norm, a.a.data(), a.rstd0.data(), n, D, c_.rms_eps);
  linear_forward(pool_, a.a.data(), P + w.wq, a.q.data(), n, D, qw, scratch_);
  linear_forward(pool_, a.a.data(), P + w.wk, a.k.data(), n, D, kw, scratch_);
  linear_forward(pool_, a.a.data(), P + w.wv, a.v.data(), n, D, kw, scratch_);
  rope_apply(pool_, a.q.data(), n, c_.n_heads, pos_.data(), rope_, false);
  rope_apply(pool_, a.k.data(), n, c_.n_kv_heads, pos_.data(), rope_, false);
  const AttentionShape shape{rows_, seq_, c_.n_heads, c_.n_kv_heads, hd, c_.attn_scale, c_.attn_cap};
  attention_forward(pool_, shape, a.q.data(), a.k.data(), a.v.data(), valid_.data(), a.att.data(), a.probs.data());
  linear_forward(pool_, a.att.data(), P + w.wo, a.o.data(), n, qw, D, scratch_);
  rmsnorm_forward(pool_, a.o.data(), P + w.attn_out_norm, a.x_mid.data(), a.rstd1.data(), n, D, c_.rms_eps);
  add_into(pool_, a.x_mid.data(), a.x_in.data(), n * D);

  // Router: p = softmax(W_router·m (+ noise))·valid, top-k gates.
  rmsnorm_forward(pool_, a.x_mid.data(), P + w.ffn_norm, a.m.data(), a.rstd2.data(), n, D, c_.rms_eps);
  resize(a.p, n * E);
  linear_forward(pool_, a.m.data(), P + w.router, a.p.data(), n, D, E, scratch_);
  resize(a.chosen, n * K);
  resize(a.gates, n * K);
  resize(a.row, n * K);
  for_each_range(pool_, n, 64, [&](int64_t b, int64_t end) {
    std::vector<int32_t> order(static_cast<size_t>(E));
    for (int64_t i = b; i < end; ++i) {
      S* p = a.p.data() + i * E;
      if (o.router_noise > 0)
        for (int64_t e = 0; e < E; ++e)
          p[e] += S(o.router_noise * gaussian(o.noise_seed, uint64_t(l), uint64_t(i * E + e)));
      softmax_rows(p, 1, E);
      if (!valid_[size_t(i)]) std::fill(p, p + E, S(0));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return p[x] > p[y]; });
      for (int64_t s = 0; s < K; ++s) {
        a.chosen[size_t(i * K + s)] = order[size_t(s)];
        a.gates[size_t(i * K + s)] = p[order[size_t(s)]];
      }
    }
  });
  // Each expert's tokens in ascending order (invalid ones go nowhere: their
  // gates are 0 and contribute nothing either way).
  a.experts.resize(size_t(E));
  for (auto& e : a.experts) {
    e.token.clear();
    e.slot.clear();
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = 0; s < K; ++s) {
      const int32_t e = a.chosen[size_t(i * K + s)];
      auto& X = a.experts[size_t(e)];
      a.row[size_t(i * K + s)] = valid_[size_t(i)] ? int32_t(X.token.size()) : -1;
      if (!valid_[size_t(i)]) continue;
      X.token.push_back(i);
      X.slot.push_back(int32_t(s));
      r.expert_tokens[size_t(l * E + e)] += 1;
    }
  // Load-balancing loss E·Σ f_e·P_e over the valid tokens.
  if (n_valid_ > 0) {
    double lb = 0;
    for (int64_t e = 0; e < E; ++e) {
      double pe = 0;
      for (int64_t i = 0; i < n; ++i) pe += double(a.p[size_t(i * E + e)]);
      const double f = double(a.experts[size_t(e)].token.size()) / double(K * n_valid_);
      lb += f * pe / double(n_valid_);
    }
    r.lb += double(E) * lb;
  }

  // Experts: each runs on the tokens routed to it, as one matrix product.
  for (int64_t e = 0; e < E; ++e) {
    auto& X = a.experts[size_t(e)];
    const int64_t cnt = int64_t(X.token.size());
    resize(X.m, cnt * D);
    for_each_range(pool_, cnt, 64, [&](int64_t b, int64_t end) {
      for (int64_t r2 = b; r2 < end; ++r2)
        std::memcpy(X.m.data() + r2 * D, a.m.data() + X.token[size_t(r2)] * D, size_t(D) * sizeof(S));
    });
    for (auto* b : {&X.h1, &X.hv, &X.t, &X.u}) resize(*b, cnt * F);
    resize(X.y, cnt * D);
    if (cnt == 0) continue;
    linear_forward(pool_, X.m.data(), P + w.w1 + e * F * D, X.h1.data(), cnt, D, F, scratch_);
    linear_forward(pool_, X.m.data(), P + w.v + e * F * D, X.hv.data(), cnt, D, F, scratch_);
    gated_gelu_forward(pool_, X.h1.data(), X.hv.data(), X.t.data(), X.u.data(), cnt * F);
    linear_forward(pool_, X.u.data(), P + w.w2 + e * D * F, X.y.data(), cnt, F, D, scratch_);
  }
  // moe[t] = Σ gate·y over the token's experts in ascending id order.
  for_each_range(pool_, n, 64, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      S* dst = a.moe.data() + t * D;
      std::fill(dst, dst + D, S(0));
      a.for_each_slot_by_expert(t, K, [&](int64_t e, int64_t s, int64_t row) {
        const S g = a.gates[size_t(t * K + s)];
        const S* y = a.experts[size_t(e)].y.data() + row * D;
        for (int64_t d = 0; d < D; ++d) dst[d] += g * y[d];
      });
    }
  });
  // x = x_mid + rms3(moe)
  rmsnorm_forward(pool_, a.moe.data(), P + w.ffn_out_norm, x, a.rstd3.data(), n, D, c_.rms_eps);
  add_into(pool_, x, a.x_mid.data(), n * D);
}

template <class S>
void GradModel<S>::layer_backward(int64_t l, const S* P, S* G, Acts& a, S* dx) {
  const LayerParamOffsets& w = layout_.layers[size_t(l)];
  const int64_t n = n_, D = c_.dim, hd = c_.head_dim, qw = c_.n_heads * hd, kw = c_.n_kv_heads * hd;
  const int64_t E = c_.n_experts, K = c_.n_experts_used, F = c_.ffn_dim;

  // x_out = x_mid + rms3(moe): dx flows to x_mid unchanged and through the norm to moe.
  std::vector<S>& dmoe = b_.dmoe;
  dmoe.assign(size_t(n * D), S(0));
  rmsnorm_backward(pool_, dx, a.moe.data(), P + w.ffn_out_norm, a.rstd3.data(), dmoe.data(), G + w.ffn_out_norm, n, D);
  std::vector<S>& dxmid = b_.dxmid;
  dxmid.assign(dx, dx + n * D);

  // Experts, and each chosen gate's gradient dot(dmoe, y). Each expert's
  // input gradient is kept (at its offset in dme) until every expert is
  // done, then each token sums its experts' in ascending id order.
  std::vector<S>& dm = b_.dm;
  std::vector<S>& dp = b_.dp;
  dp.assign(size_t(n * E), S(0));
  std::vector<S>&dy = b_.dy, &du = b_.du, &dh1 = b_.dh1, &dhv = b_.dhv, &dme = b_.dme;
  std::vector<int64_t> offset(size_t(E) + 1, 0);
  for (int64_t e = 0; e < E; ++e) offset[size_t(e) + 1] = offset[size_t(e)] + int64_t(a.experts[size_t(e)].token.size());
  dme.assign(size_t(offset[size_t(E)] * D), S(0));
  for (int64_t e = 0; e < E; ++e) {
    auto& X = a.experts[size_t(e)];
    const int64_t cnt = int64_t(X.token.size());
    if (cnt == 0) continue;
    dy.resize(size_t(cnt * D));
    for_each_range(pool_, cnt, 64, [&](int64_t b, int64_t end) {
      for (int64_t r2 = b; r2 < end; ++r2) {
        const int64_t t = X.token[size_t(r2)];
        const S g = a.gates[size_t(t * K + X.slot[size_t(r2)])];
        const S* dmo = dmoe.data() + t * D;
        const S* y = X.y.data() + r2 * D;
        double dg = 0;
        for (int64_t d = 0; d < D; ++d) {
          dy[size_t(r2 * D + d)] = g * dmo[d];
          dg += double(dmo[d]) * double(y[d]);
        }
        dp[size_t(t * E + e)] += S(dg);  // one (token, expert) pair per row: no other writer
      }
    });
    du.assign(size_t(cnt * F), S(0));
    linear_backward(pool_, dy.data(), X.u.data(), P + w.w2 + e * D * F, du.data(), G + w.w2 + e * D * F, cnt, F, D);
    dh1.assign(size_t(cnt * F), S(0));
    dhv.assign(size_t(cnt * F), S(0));
    gated_gelu_backward(pool_, du.data(), X.h1.data(), X.hv.data(), X.t.data(), dh1.data(), dhv.data(), cnt * F);
    S* dme_e = dme.data() + offset[size_t(e)] * D;
    linear_backward(pool_, dh1.data(), X.m.data(), P + w.w1 + e * F * D, dme_e, G + w.w1 + e * F * D, cnt, D, F);
    linear_backward(pool_, dhv.data(), X.m.data(), P + w.v + e * F * D, dme_e, G + w.v + e * F * D, cnt, D, F);
  }
  dm.resize(size_t(n * D));
  for_each_range(pool_, n, 64, [&](int64_t b, int64_t end) {
    for (int64_t t = b; t < end; ++t) {
      S* dst = dm.data() + t * D;
      std::fill(dst, dst + D, S(0));
      a.for_each_slot_by_expert(t, K, [&](int64_t e, int64_t, int64_t row) {
        const S* src = dme.data() + (offset[size_t(e)] + row) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] += src[d];
      });
    }
  });
  // Load-balancing loss: d(coef·E·Σ f_e P_e)/dp_e = coef·E·f_e/N_v on valid tokens.
  if (lb_coef_ != 0 && n_valid_ > 0)
    for (int64_t e = 0; e < E; ++e) {
      const double f = double(a.experts[size_t(e)].token.size()) / double(K * n_valid_);
      const S g = S(lb_coef_ * double(E) * f / double(n_valid_));
      for (int64_t i = 0; i < n; ++i)
        if (valid_[size_t(i)]) dp[size_t(i * E + e)] += g;
    }
  // Softmax: dr = p ⊙ (dp − Σ p·dp) (p is 0 on invalid tokens: no gradient).
  for (int64_t i = 0; i < n; ++i) {
    const S* p = a.p.data() + i * E;
    S* d = dp.data() + i * E;
    double s = 0;
    for (int64_t e = 0; e < E; ++e) s += double(p[e]) * double(d[e]);
    for (int64_t e = 0; e < E; ++e) d[e] = S(double(p[e]) * (double(d[e]) - s));
  }
  linear_backward(pool_, dp.data(), a.m.data(), P + w.router, dm.data(), G + w.router, n, D, E);
  rmsnorm_backward(pool_, dm.data(), a.x_mid.data(), P + w.ffn_norm, a.rstd2.data(), dxmid.data(), G + w.ffn_norm, n, D);

  // x_mid = x_in + rms1(o)
  std::vector<S>& dout = b_.dout;
  dout.assign(size_t(n * D), S(0));
  rmsnorm_backward(pool_, dxmid.data(), a.o.data(), P + w.attn_out_norm, a.rstd1.data(), dout.data(), G + w.attn_out_norm,
                   n, D);
  std::vector<S>& datt = b_.datt;
  datt.assign(size_t(n * qw), S(0));
  linear_backward(pool_, dout.data(), a.att.data(), P + w.wo, datt.data(), G + w.wo, n, qw, D);
  std::vector<S>&dq = b_.dq, &dk = b_.dk, &dv = b_.dv;
  dq.assign(size_t(n * qw), S(0));
  dk.assign(size_t(n * kw), S(0));
  dv.assign(size_t(n * kw), S(0));
  const AttentionShape shape{rows_, seq_, c_.n_heads, c_.n_kv_heads, hd, c_.attn_scale, c_.attn_cap};
  attention_backward(pool_, shape, datt.data(), a.q.data(), a.k.data(), a.v.data(), a.probs.data(), dq.data(),
                     dk.data(), dv.data());
  rope_apply(pool_, dq.data(), n, c_.n_heads, pos_.data(), rope_, true);
  rope_apply(pool_, dk.data(), n, c_.n_kv_heads, pos_.data(), rope_, true);
  std::vector<S>& da = b_.da;
  da.assign(size_t(n * D), S(0));
  linear_backward(pool_, dq.data(), a.a.data(), P + w.wq, da.data(), G + w.wq, n, D, qw);
  linear_backward(pool_, dk.data(), a.a.data(), P + w.wk, da.data(), G + w.wk, n, D, kw);
  linear_backward(pool_, dv.data(), a.a.data(), P + w.wv, da.data(), G + w.wv, n, D, kw);
  // dx (the layer input's gradient) = dx_mid + the attention branch's.
  std::memcpy(dx, dxmid.data(), size_t(n * D) * sizeof(S));
  rmsnorm_backward(pool_, da.data(), a.x_in.data(), P + w.attn_norm, a.rstd0.data(), dx, G + w.attn_norm, n, D);
}

template <class S>
LossReport GradModel<S>::run(const S* P, S* G, const TokenBatch& b, const LossOptions& o) {
  if (b.rows <= 0 || b.seq <= 0 || int64_t(b.tokens.size()) != b.rows * (b.seq + 1))
    fail("training batch: expected rows × (seq + 1) tokens");
  rows_ = b.rows;
  seq_ = b.seq;
  n_ = rows_ * seq_;
  lb_coef_ = o.lb_coef;
  const int64_t n = n_, D = c_.dim, V = c_.vocab_size, L = c_.n_layers;
  inputs_.resize(size_t(n));
  targets_.resize(size_t(n));
  pos_.resize(size_t(n));
  if (rope_.positions < seq_) rope_ = RopeTable<S>(seq_, c_.head_dim, c_.rope_base);
  valid_.resize(size_t(n));
  scored_.resize(size_t(n));
  n_valid_ = 0;
  int64_t scored = 0;
  for (int64_t r = 0; r < rows_; ++r)
    for (int64_t t = 0; t < seq_; ++t) {
      const int64_t i = r * seq_ + t;
      inputs_[size_t(i)] = b.tokens[size_t(r * (seq_ + 1) + t)];
      targets_[size_t(i)] = b.tokens[size_t(r * (seq_ + 1) + t + 1)];
      for (int32_t id : {inputs_[size_t(i)], targets_[size_t(i)]})
        if (id < 0 || id >= V) fail("training batch: token id ", id, " outside the vocabulary of ", V);
      pos_[size_t(i)] = int32_t(t);
      valid_[size_t(i)] = inputs_[size_t(i)] > c_.pad_id;
      scored_[size_t(i)] = valid_[size_t(i)] && targets_[size_t(i)] != c_.pad_id;
      n_valid_ += valid_[size_t(i)];
      scored += scored_[size_t(i)];
    }

  LossReport r;
  r.scored = scored;
  r.expert_tokens.assign(size_t(L * c_.n_experts), 0);
  const bool keep_all = !o.checkpointing || !G;
  acts_.resize(size_t(keep_all && G ? L : 1));
  for (auto& a : acts_)
    if (!a) a = std::make_unique<Acts>();
  if (o.checkpointing && G) layer_inputs_.resize(size_t(L));

  // Forward.
  // Buffers live across calls: a step's largest (the logits) would
  // otherwise be fresh pages, faulted in and zeroed by the kernel each step.
  std::vector<S>& x = x_;
  x.resize(size_t(n * D));
  const S* E = P + layout_.embed;
  for_each_range(pool_, n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t d = 0; d < D; ++d) x[size_t(i * D + d)] = E[inputs_[size_t(i)] * D + d] * S(c_.embed_scale);
  });
  for (int64_t l = 0; l < L; ++l) {
    if (o.checkpointing && G) layer_inputs_[size_t(l)] = x;
    Acts& a = *acts_[size_t(keep_all && G ? l : 0)];
    layer_forward(l, P, x.data(), a, o, r);
  }
  std::vector<S>& h = h_;
  std::vector<S>& rstd_f = rstd_f_;
  h.resize(size_t(n * D));
  rstd_f.resize(size_t(n));
  rmsnorm_forward(pool_, x.data(), P + layout_.final_norm, h.data(), rstd_f.data(), n, D, c_.rms_eps);
  std::vector<S>& logits = logits_;
  logits.resize(size_t(n * V));
  linear_forward(pool_, h.data(), E, logits.data(), n, D, V, scratch_);
  scale_in_place(pool_, logits.data(), n * V, S(c_.logit_scale));
  const double grad_scale = scored > 0 ? 1.0 / double(scored) : 0.0;
  r.ce_sum = cross_entropy(pool_, logits.data(), targets_.data(), scored_.data(), n, V, G ? logits.data() : nullptr,
                           grad_scale);
  r.ce = scored > 0 ? r.ce_sum / double(scored) : 0.0;
  r.loss = r.ce + o.lb_coef * r.lb;
  if (!G) return r;

  // Backward: logits = logit_scale·(h·Eᵀ).
  scale_in_place(pool_, logits.data(), n * V, S(c_.logit_scale));
  std::vector<S>& dh = dh_;
  dh.assign(size_t(n * D), S(0));
  linear_backward(pool_, logits.data(), h.data(), E, dh.data(), G + layout_.embed, n, D, V);
  std::vector<S>& dx = dx_;
  dx.assign(size_t(n * D), S(0));
  rmsnorm_backward(pool_, dh.data(), x.data(), P + layout_.final_norm, rstd_f.data(), dx.data(), G + layout_.final_norm, n,
                   D);
  for (int64_t l = L - 1; l >= 0; --l) {
    Acts& a = *acts_[size_t(keep_all ? l : 0)];
    if (o.checkpointing) {  // recompute this layer from its saved input
      std::vector<S>& xin = layer_inputs_[size_t(l)];
      LossReport again;
      again.expert_tokens.assign(r.expert_tokens.size(), 0);
      layer_forward(l, P, xin.data(), a, o, again);
      xin = {};
    }
    layer_backward(l, P, G, a, dx.data());
  }
  S* dE = G + layout_.embed;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) dE[inputs_[size_t(i)] * D + d] += dx[size_t(i * D + d)] * S(c_.embed_scale);
  return r;
}

template class GradModel<float>;
template class GradModel<double>;

}  // namespace grok
