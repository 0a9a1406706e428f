// The forward and backward functions of every operation in a Grok layer, in
// pairs (llm.c style): each backward takes what its forward saw and ADDS its
// gradients into the buffers it is given (callers zero them), so residual
// branches and shared weights need no extra code. Templated on the scalar:
// float for training, double for the finite-difference tests.
//
// Shapes: n tokens, row-major [n][width]; attention sees the tokens as
// `batch` independent sequences of `seq` positions.
#pragma once

#include <cstdint>
#include <vector>

namespace grok {

class ThreadPool;

// y = scale ⊙ x / sqrt(mean(x²) + eps) per row; rstd[n] saves 1/sqrt(...).
// Rows on the pool (may be null, like every pool argument here); the
// backward's dscale sums rows in fixed blocks, the same on any thread count.
template <class S>
void rmsnorm_forward(ThreadPool* pool, const S* x, const S* scale, S* y, S* rstd, int64_t n, int64_t d,
                     double eps);
template <class S>
void rmsnorm_backward(ThreadPool* pool, const S* dy, const S* x, const S* scale, const S* rstd, S* dx, S* dscale,
                      int64_t n, int64_t d);

// y[n][out] = x[n][in]·W[out][in]ᵀ. `scratch` holds Wᵀ (kept between
// calls so it is not fresh memory each time).
template <class S>
void linear_forward(ThreadPool* pool, const S* x, const S* W, S* y, int64_t n, int64_t in, int64_t out,
                    std::vector<S>& scratch);
// dx += dy·W (skipped when dx is null), dW += dyᵀ·x, reading all operands
// in place.
template <class S>
void linear_backward(ThreadPool* pool, const S* dy, const S* x, const S* W, S* dx, S* dW, int64_t n, int64_t in,
                     int64_t out);

// Rotary embedding, rotate-half layout. The table holds cos and sin of
// position·base^(−2j/head_dim) for positions below `positions`, j < head_dim/2.
template <class S>
struct RopeTable {
  RopeTable() = default;
  RopeTable(int64_t positions, int64_t head_dim, double base);
  int64_t positions = 0, half = 0;
  std::vector<S> cosines, sines;  // [position][j]
};
// Rotates x[n][heads][2·t.half] in place; pos[n] is each token's position.
// inverse = rotation by −angle, which is the backward of the forward
// rotation (its transpose).
template <class S>
void rope_apply(ThreadPool* pool, S* x, int64_t n, int64_t heads, const int32_t* pos, const RopeTable<S>& t,
                bool inverse);

struct AttentionShape {
  int64_t batch = 1, seq = 1, heads = 1, kv_heads = 1, head_dim = 1;
  double scale = 1, cap = 30;
};
// out[n][heads·head_dim] from q[n][heads·hd], k, v[n][kv_heads·hd]: causal
// within each sequence, keys with valid[j] == 0 masked, scores scale·q·k
// capped cap·tanh(s/cap). probs[batch][heads][seq][seq] saves the softmax
// (0 above the diagonal and at masked keys; a row whose keys are all masked
// is all 0 and its output 0).
template <class S>
void attention_forward(ThreadPool* pool, const AttentionShape& a, const S* q, const S* k, const S* v,
                       const uint8_t* valid, S* out, S* probs);
template <class S>
void attention_backward(ThreadPool* pool, const AttentionShape& a, const S* dout, const S* q, const S* k,
                        const S* v, const S* probs, S* dq, S* dk, S* dv);

// The experts' gated activation u = gelu_tanh(h)·v element-wise (pool may
// be null); t[n] saves tanh(sqrt(2/π)·(h + 0.044715·h³)) for the backward,
// which adds dh += du·v·gelu'(h) and dv += du·gelu(h).
template <class S>
void gated_gelu_forward(ThreadPool* pool, const S* h, const S* v, S* t, S* u, int64_t n);
template <class S>
void gated_gelu_backward(ThreadPool* pool, const S* du, const S* h, const S* v, const S* t, S* dh, S* dv,
                         int64_t n);

// Row softmax in place (max subtracted, double sums).
template <class S>
void softmax_rows(S* x, int64_t n, int64_t d);

// Σ over rows with scored[i] of −log softmax(logits_i)[target_i], in double.
// When dlogits is given it receives grad_scale·(softmax − onehot) on scored
// rows and 0 elsewhere (it may alias logits).
template <class S>
double cross_entropy(ThreadPool* pool, const S* logits, const int32_t* targets, const uint8_t* scored, int64_t n,
                     int64_t vocab, S* dlogits, double grad_scale);

}  // namespace grok
