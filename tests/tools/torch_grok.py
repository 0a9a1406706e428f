#!/usr/bin/python3
"""PyTorch reference of the training function of docs/training.md.

Independent of the C++ engine (Debian python3-torch 1.13, numpy; no network).
The C++ training tests compare their gradients and AdamW losses with it, and
the training benchmark times it. One implementation serves all subcommands,
parametrised by dtype (float64 for the tests, float32 for the benchmark), so
the benchmark measures the verified code.

  torch_grok.py grads --model M.gguf --batch B.npy --out DIR
                [--lb-coef 0.01] [--dtype float64|float32]
      B.npy: int32/int64 [B][T+1] token ids. Writes DIR/<gguf tensor name>.npy
      (the gradient of `loss`, float32 2-D [prod(leading dims)][last dim], 1-D
      tensors as [1][n]) for every parameter and DIR/loss.npy = [[loss, CE,
      sum of lb_layer]].
  torch_grok.py adamw --model M.gguf --batches S.npy --steps N --lr X
                --min-lr X --warmup W --total-steps K --wd X --clip X
                --beta1 X --beta2 X --eps X --lb-coef A --out losses.npy
                [--dtype float64|float32] [--params-out DIR]
      S.npy: [N][B][T+1]. Step t = 1..N trains on batch t-1 (loss, backward,
      clip, torch.optim.AdamW with the doc's learning-rate schedule, `K` being
      its `steps`); writes float32 [1][N] of the loss computed at each step
      (before that step's update); --params-out also writes the final
      parameters like `grads` writes gradients.
  torch_grok.py bench --config JSON --batch B --seq T --steps N --threads 2
                [--warmup-steps 2] [--seed S]
      float32 training steps (forward + backward + clip + AdamW) of a
      randomly initialised model; JSON is a file or an inline object with
      GrokConfig field names (attn_scale defaults to 1/sqrt(head_dim), the
      rest to Grok-1's values). Prints one JSON line with tokens_per_second,
      seconds_per_step, median_seconds_per_step, threads, torch, and the
      BLAS library torch is using (Debian's torch calls the system
      libblas.so.3, by default the slow reference netlib BLAS).
  torch_grok.py self-check --model M.gguf
      float64 logits vs grok_ref.py (max |d| < 1e-9), CE vs grok_ref's logits,
      autograd vs central finite differences; exits 1 on failure.

.npy files written are 2-D float32 ('<f4', C order): the C++ tests read them
with a minimal reader.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

# libgomp's threads otherwise spin while waiting; on a shared machine with
# as many busy processes as cores that made 2-thread steps ~2x slower than
# 1-thread ones here. Set OMP_WAIT_POLICY=ACTIVE to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grok_ref  # noqa: E402  (GGUF reader and model config; the float64 numpy forward)

DTYPES = {"float64": torch.float64, "float32": torch.float32}

# Per-layer GGUF tensor names (docs/training.md's table order) and the
# matching grok_ref.Model layer keys.
LAYER_TENSORS = [
    ("attn_norm.weight", "attn_norm"),
    ("attn_q.weight", "wq"),
    ("attn_k.weight", "wk"),
    ("attn_v.weight", "wv"),
    ("attn_output.weight", "wo"),
    ("attn_output_norm.weight", "attn_out_norm"),
    ("ffn_norm.weight", "ffn_norm"),
    ("ffn_gate_inp.weight", "router"),
    ("ffn_gate_exps.weight", "w1"),
    ("ffn_up_exps.weight", "wv_e"),
    ("ffn_down_exps.weight", "w2"),
    ("layer_output_norm.weight", "post_norm"),
]


# ----------------------------------------------------------------------------
# Configuration and parameters
# ----------------------------------------------------------------------------

class Config:
    """GrokConfig's fields (src/model/config.h); defaults are Grok-1's."""
    FIELDS = dict(vocab_size=131072, dim=6144, n_layers=64, n_heads=48, n_kv_heads=8,
                  head_dim=128, n_experts=8, n_experts_used=2, ffn_dim=32768,
                  rope_base=10000.0, rms_eps=1e-5, attn_scale=None, attn_cap=30.0,
                  embed_scale=78.38367176906169, logit_scale=0.5773502691896257, pad_id=0,
                  # accepted so the engine's config JSON loads; unused here
                  bos_id=1, eos_id=2, context_length=8192)

    def __init__(self, **kw):
        unknown = set(kw) - set(self.FIELDS)
        if unknown:
            raise ValueError("unknown config field(s): %s" % ", ".join(sorted(unknown)))
        for k, v in self.FIELDS.items():
            setattr(self, k, kw.get(k, v))
        if self.attn_scale is None:  # as preset_config(): 1/sqrt(head_dim)
            self.attn_scale = 1.0 / math.sqrt(self.head_dim)
        if self.n_heads % self.n_kv_heads or self.head_dim % 2 or \
                self.n_experts_used > self.n_experts:
            raise ValueError("impossible config: %r" % vars(self))

    @staticmethod
    def from_ref(m):
        """From a grok_ref.Model (which read the GGUF metadata)."""
        return Config(vocab_size=m.n_vocab, dim=m.n_embd, n_layers=m.n_layer,
                      n_heads=m.n_head, n_kv_heads=m.n_head_kv, head_dim=m.head_dim,
                      n_experts=m.n_expert, n_experts_used=m.n_expert_used, ffn_dim=m.n_ff,
                      rope_base=m.rope_base, rms_eps=m.eps, attn_scale=m.attn_scale,
                      attn_cap=m.attn_cap, embed_scale=m.emb_scale,
                      logit_scale=m.out_scale, pad_id=m.pad_id)


def param_shapes(c):
    """GGUF name -> shape (row-major, matrices [out][in]), in the doc's order."""
    qd, kvd = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    per_layer = {
        "attn_norm.weight": [c.dim], "attn_q.weight": [qd, c.dim],
        "attn_k.weight": [kvd, c.dim], "attn_v.weight": [kvd, c.dim],
        "attn_output.weight": [c.dim, qd], "attn_output_norm.weight": [c.dim],
        "ffn_norm.weight": [c.dim], "ffn_gate_inp.weight": [c.n_experts, c.dim],
        "ffn_gate_exps.weight": [c.n_experts, c.ffn_dim, c.dim],
        "ffn_up_exps.weight": [c.n_experts, c.ffn_dim, c.dim],
        "ffn_down_exps.weight": [c.n_experts, c.dim, c.ffn_dim],
        "layer_output_norm.weight": [c.dim],
    }
    shapes = {"token_embd.weight": [c.vocab_size, c.dim]}
    for i in range(c.n_layers):
        for name, _ in LAYER_TENSORS:
            shapes["blk.%d.%s" % (i, name)] = per_layer[name]
    shapes["output_norm.weight"] = [c.dim]
    return shapes


def load_params(path, dtype):
    """(Config, {gguf name: leaf tensor requiring grad}) from a GGUF."""
    g = grok_ref.GGUFFile(path)
    if "output.weight" in g.tensors:
        raise ValueError("%s: has output.weight; training ties the output to token_embd" % path)
    odd = [n for n, t in g.tensors.items() if t["type"] != grok_ref.GGML_F32]
    if odd:  # the doc's parameters are fp32; others are dequantised by grok_ref
        print("note: %d non-F32 tensors (e.g. %s) dequantised" % (len(odd), odd[0]),
              file=sys.stderr)
    m = grok_ref.load_gguf(path)  # float64 numpy, metadata with grok_ref's defaults
    cfg = Config.from_ref(m)
    arrays = {"token_embd.weight": m.embd, "output_norm.weight": m.out_norm}
    for i, L in enumerate(m.layers):
        for name, key in LAYER_TENSORS:
            arrays["blk.%d.%s" % (i, name)] = L[key]
    params = {}
    for name, shape in param_shapes(cfg).items():
        a = arrays[name]
        assert list(a.shape) == shape, (name, a.shape, shape)
        params[name] = torch.tensor(a, dtype=dtype).requires_grad_(True)
    return cfg, params


def random_params(cfg, dtype, seed, std=0.02):
    """Benchmark init: matrices N(0, std), norm scales 1."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if len(shape) == 1:
            t = torch.ones(shape, dtype=dtype)
        else:
            t = torch.randn(shape, generator=gen, dtype=torch.float32).mul_(std).to(dtype)
        params[name] = t.requires_grad_(True)
    return params


# ----------------------------------------------------------------------------
# Forward pass and loss (docs/training.md steps 1-4)
# ----------------------------------------------------------------------------

def rms_norm(x, scale, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * scale


def rope_tables(T, head_dim, base, dtype):
    """cos, sin [T, head_dim]: f_j = base^(-2j/head_dim), angle pos*f_j, both
    halves. Angles in float64 whatever dtype (most accurate tables)."""
    j = torch.arange(head_dim // 2, dtype=torch.float64)
    inv = 1.0 / (float(base) ** (2.0 * j / head_dim))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x [B, T, H, hd]; rotate-half: rope(x) = x*cos + [-x2, x1]*sin."""
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def attention(a, P, pre, c, cos, sin, mask_bias):
    """GQA attention with RoPE and the tanh cap. a [B, T, D]; mask_bias
    [B, 1, 1, T, T]: 0, or -1e30 for a future or padding key."""
    B, T, _ = a.shape
    nq, nkv, hd = c.n_heads, c.n_kv_heads, c.head_dim
    g = nq // nkv
    q = apply_rope(F.linear(a, P[pre + "attn_q.weight"]).view(B, T, nq, hd), cos, sin)
    k = apply_rope(F.linear(a, P[pre + "attn_k.weight"]).view(B, T, nkv, hd), cos, sin)
    v = F.linear(a, P[pre + "attn_v.weight"]).view(B, T, nkv, hd)
    # q head h reads kv head h // g: stack a kv group's g query heads along
    # the rows so one matmul per kv head serves them without copying k or v.
    # attn_scale/attn_cap is applied to q ([T, hd]) rather than to the
    # scores ([T, T]): cap*tanh(scale*(q.k)/cap) with one pass less (the
    # same function; only the rounding order differs).
    q = (q * (c.attn_scale / c.attn_cap)).permute(0, 2, 1, 3).reshape(B, nkv, g * T, hd)
    k = k.permute(0, 2, 3, 1)  # [B, nkv, hd, T]
    v = v.permute(0, 2, 1, 3)  # [B, nkv, T, hd]
    s = torch.tanh(torch.matmul(q, k)) * c.attn_cap
    # s + (-1e30) is exactly -1e30 (|s| <= cap), so adding the mask equals
    # setting it, and add's backward passes the gradient through uncopied
    s = s.view(B, nkv, g, T, T) + mask_bias
    pr = torch.softmax(s, dim=-1).view(B, nkv, g * T, T)
    o = torch.matmul(pr, v).view(B, nq, T, hd).transpose(1, 2).reshape(B, T, nq * hd)
    return F.linear(o, P[pre + "attn_output.weight"])


def moe(m, valid, P, pre, c):
    """Top-k MoE over flattened tokens m [N, D], valid [N] bool. Only the
    chosen experts run: the (token, expert) pairs are sorted by expert, their
    rows gathered once (index_select), split into per-expert chunks, and the
    gated outputs scattered back once (index_add_): one gather and one
    scatter per layer in both passes. Returns (y [N, D], lb_layer scalar)."""
    N = m.shape[0]
    E, k = c.n_experts, c.n_experts_used
    r = F.linear(m, P[pre + "ffn_gate_inp.weight"])
    p = torch.softmax(r, dim=-1) * valid[:, None].to(m.dtype)
    # top-k with ties to the lower expert id: a stable descending sort keeps
    # equal p in index order (torch.topk's tie order is unspecified).
    sel = torch.sort(p.detach(), dim=-1, descending=True, stable=True).indices[:, :k]
    gates = p.gather(1, sel)  # not renormalised; gradient flows to the router
    flat_e = sel.reshape(-1)  # pair j is (token j // k, expert flat_e[j])
    order = torch.sort(flat_e, stable=True).indices
    tok = torch.div(order, k, rounding_mode="floor")
    counts = torch.bincount(flat_e, minlength=E).tolist()
    xs = m.index_select(0, tok).split(counts)
    w1 = P[pre + "ffn_gate_exps.weight"].unbind(0)  # unbind: one stacked grad, not E
    wv = P[pre + "ffn_up_exps.weight"].unbind(0)
    w2 = P[pre + "ffn_down_exps.weight"].unbind(0)
    outs = []
    for e in range(E):
        if counts[e]:
            u = F.gelu(F.linear(xs[e], w1[e]), approximate="tanh") * F.linear(xs[e], wv[e])
            outs.append(F.linear(u, w2[e]))
    ye = torch.cat(outs) * gates.reshape(-1).index_select(0, order)[:, None]
    y = torch.zeros_like(m).index_add_(0, tok, ye)
    # Switch load-balancing loss over the valid tokens; f is a constant.
    n_valid = int(valid.sum())
    if n_valid == 0:
        return y, p.sum() * 0.0
    f = torch.bincount(sel[valid].reshape(-1), minlength=E).to(m.dtype) / (k * n_valid)
    Pm = p.sum(0) / n_valid  # pad rows of p are 0
    return y, E * (f * Pm).sum()


def forward(P, c, inputs):
    """inputs [B, T] long. Returns (logits [B, T, V], [lb_layer], valid [B, T])."""
    B, T = inputs.shape
    dtype = P["token_embd.weight"].dtype
    valid = inputs > c.pad_id
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    allowed = (causal[None] & valid[:, None, :])[:, None, None]  # [B, 1, 1, Tq, Tk]
    mask_bias = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, -1e30)
    cos, sin = rope_tables(T, c.head_dim, c.rope_base, dtype)
    E = P["token_embd.weight"]
    x = F.embedding(inputs, E) * c.embed_scale
    lbs = []
    for i in range(c.n_layers):
        pre = "blk.%d." % i
        a = rms_norm(x, P[pre + "attn_norm.weight"], c.rms_eps)
        att = attention(a, P, pre, c, cos, sin, mask_bias)
        x = x + rms_norm(att, P[pre + "attn_output_norm.weight"], c.rms_eps)
        m = rms_norm(x, P[pre + "ffn_norm.weight"], c.rms_eps)
        y, lb = moe(m.reshape(B * T, -1), valid.reshape(-1), P, pre, c)
        x = x + rms_norm(y.view(B, T, -1), P[pre + "layer_output_norm.weight"], c.rms_eps)
        lbs.append(lb)
    # logit_scale on h ([T, D]) rather than on the logits ([T, V])
    h = rms_norm(x, P["output_norm.weight"], c.rms_eps) * c.logit_scale
    return F.linear(h, E), lbs, valid


def loss_fn(P, c, batch, lb_coef):
    """batch [B, T+1] long -> (loss, CE, sum of lb_layer) scalar tensors."""
    inputs, targets = batch[:, :-1], batch[:, 1:]
    logits, lbs, valid = forward(P, c, inputs)
    scored = valid & (targets != c.pad_id)
    if bool(scored.any()):
        # unscored positions as ignore_index: the mean is over scored ones
        tgt = targets.masked_fill(~scored, -100).reshape(-1)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt, ignore_index=-100)
    else:
        ce = logits.sum() * 0.0
    lb_sum = torch.stack(lbs).sum()
    return ce + lb_coef * lb_sum, ce, lb_sum


# ----------------------------------------------------------------------------
# Optimiser (docs/training.md steps 5-7)
# ----------------------------------------------------------------------------

def learning_rate(t, lr, min_lr, warmup, steps):
    """lr of step t (1-based): linear warm-up then cosine to min_lr at `steps`
    (edge cases as src/train/adamw.cc: steps <= warmup keeps lr, progress
    is capped at 1)."""
    if warmup > 0 and t <= warmup:
        return lr * t / warmup
    if steps <= warmup:
        return lr
    progress = min(1.0, (t - warmup) / (steps - warmup))
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def clip_grads(params, clip):
    """Global-norm clipping exactly as the doc (scale when ‖g‖ > clip; torch's
    clip_grad_norm_ instead tests ‖g‖ + 1e-6 > clip). Returns ‖g‖."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))
    if clip > 0 and norm > clip:
        s = clip / (norm + 1e-6)
        for g in grads:
            g.mul_(s)
    return norm


def make_optimizer(P, a):
    """torch.optim.AdamW; weight decay only on parameters with >= 2 dims."""
    decay = [p for p in P.values() if p.dim() >= 2]
    no_decay = [p for p in P.values() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(a.beta1, a.beta2), eps=a.eps, foreach=True)


def train_step(P, c, opt, batch, t, a):
    """One step t (1-based); returns the loss before the update."""
    opt.zero_grad(set_to_none=True)
    loss, _, _ = loss_fn(P, c, batch, a.lb_coef)
    loss.backward()
    clip_grads(list(P.values()), a.clip)
    lr_t = learning_rate(t, a.lr, a.min_lr, a.warmup, a.total_steps)
    for group in opt.param_groups:
        group["lr"] = lr_t
    opt.step()
    return float(loss)


# ----------------------------------------------------------------------------
# I/O helpers
# ----------------------------------------------------------------------------

def save_2d(path, t):
    """2-D float32 little-endian C-order .npy (the C++ tests' minimal reader)."""
    a = t.detach().cpu().to(torch.float64).numpy()
    a = a.reshape(1, -1) if a.ndim <= 1 else a.reshape(-1, a.shape[-1])
    tmp = path + ".tmp.npy"
    np.save(tmp, np.ascontiguousarray(a, dtype="<f4"))
    os.replace(tmp, path)


def load_tokens(path, ndim, vocab):
    a = np.load(path)
    if a.dtype not in (np.int32, np.int64) or a.ndim != ndim:
        raise ValueError("%s: expected int32/int64 %d-D, got %s %s" % (path, ndim, a.dtype, a.shape))
    if a.shape[-1] < 2:
        raise ValueError("%s: rows need at least 2 tokens (T+1)" % path)
    if a.size and (a.min() < 0 or a.max() >= vocab):
        raise ValueError("%s: token id out of range [0, %d)" % (path, vocab))
    return torch.from_numpy(a.astype(np.int64))


def save_params(out_dir, P, use_grad):
    os.makedirs(out_dir, exist_ok=True)
    for name, p in P.items():
        t = p.grad if use_grad else p
        if t is None:  # cannot happen (every parameter is used), but be safe
            t = torch.zeros_like(p)
        save_2d(os.path.join(out_dir, name + ".npy"), t)


# ----------------------------------------------------------------------------
# Subcommands
# ----------------------------------------------------------------------------

def cmd_grads(a):
    c, P = load_params(a.model, DTYPES[a.dtype])
    batch = load_tokens(a.batch, 2, c.vocab_size)
    loss, ce, lb = loss_fn(P, c, batch, a.lb_coef)
    loss.backward()
    save_params(a.out, P, use_grad=True)
    save_2d(os.path.join(a.out, "loss.npy"), torch.tensor([[float(loss), float(ce), float(lb)]]))
    print("loss=%.10g ce=%.10g lb_sum=%.10g (%d tensors -> %s)" % (
        float(loss), float(ce), float(lb), len(P), a.out))
    return 0


def cmd_adamw(a):
    c, P = load_params(a.model, DTYPES[a.dtype])
    batches = load_tokens(a.batches, 3, c.vocab_size)
    if batches.shape[0] < a.steps:
        raise ValueError("%s holds %d batches, --steps is %d" % (a.batches, batches.shape[0], a.steps))
    if a.total_steps is None:
        a.total_steps = a.steps
    opt = make_optimizer(P, a)
    losses = []
    for t in range(1, a.steps + 1):
        losses.append(train_step(P, c, opt, batches[t - 1], t, a))
        print("step %d loss %.10g" % (t, losses[-1]), file=sys.stderr)
    save_2d(a.out, torch.tensor([losses], dtype=torch.float64))
    if a.params_out:
        save_params(a.params_out, P, use_grad=False)
    return 0


def parse_config(s):
    s = s.strip()
    d = json.loads(s) if s.startswith("{") else json.load(open(s))
    return Config(**d)


def blas_libraries():
    """The BLAS/LAPACK shared libraries this process has mapped: Debian's
    torch calls whichever libblas.so.3 the alternatives system (or
    LD_LIBRARY_PATH) provides, and the reference netlib BLAS is far slower
    than OpenBLAS."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                base = os.path.basename(path)
                if path.startswith("/") and ("blas" in base or "mkl" in base or "lapack" in base):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def cmd_bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    c = parse_config(a.config)
    P = random_params(c, torch.float32, a.seed)
    opt_args = argparse.Namespace(lr=1e-4, min_lr=1e-5, warmup=0, total_steps=a.steps + a.warmup_steps,
                                  wd=0.1, beta1=0.9, beta2=0.95, eps=1e-8, clip=1.0, lb_coef=0.01)
    opt = make_optimizer(P, opt_args)
    gen = torch.Generator().manual_seed(a.seed + 1)
    n = a.warmup_steps + a.steps
    # token ids 1..vocab-1: no padding, every position scored
    data = torch.randint(1, c.vocab_size, (n, a.batch, a.seq + 1), generator=gen)
    times = []
    for t in range(1, n + 1):
        t0 = time.perf_counter()
        train_step(P, c, opt, data[t - 1], t, opt_args)
        if t > a.warmup_steps:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({"tokens_per_second": a.batch * a.seq / med, "seconds_per_step": times,
                      "median_seconds_per_step": med, "threads": a.threads,
                      "torch": torch.__version__, "batch": a.batch, "seq": a.seq,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "blas": blas_libraries(),
                      "config": {k: getattr(c, k) for k in Config.FIELDS}}))
    return 0


def cmd_self_check(a):
    """float64: logits vs grok_ref.forward, CE vs grok_ref's logits, autograd
    vs central finite differences."""
    ok = True
    c, P = load_params(a.model, torch.float64)
    ref = grok_ref.load_gguf(a.model)
    gen = np.random.default_rng(a.seed)
    B, T = 3, 12
    toks = gen.integers(c.pad_id + 1, c.vocab_size, size=(B, T + 1))
    toks[1, 4] = toks[1, 9] = c.pad_id  # padding inside a row (masked key; unscored target)
    toks[2, 0] = c.pad_id               # a leading pad: a query with every key masked
    batch = torch.from_numpy(toks)

    # 1. logits against the numpy reference, row by row
    with torch.no_grad():
        logits, _, _ = forward(P, c, batch[:, :-1])
    worst, gap_min, ce_terms = 0.0, math.inf, []
    for b in range(B):
        rl, gaps, _ = grok_ref.forward(ref, toks[b, :-1], all_positions=True)
        worst = max(worst, float(np.abs(logits[b].numpy() - rl).max()))
        gap_min = min(gap_min, float(gaps.min()))
        lsm = rl - rl.max(-1, keepdims=True)
        lsm = lsm - np.log(np.exp(lsm).sum(-1, keepdims=True))
        for i in range(T):
            if toks[b, i] > c.pad_id and toks[b, i + 1] != c.pad_id:
                ce_terms.append(-lsm[i, toks[b, i + 1]])
    good = worst < 1e-9
    ok &= good
    print("logits vs grok_ref: max |d| = %.3g (tol 1e-9) %s; router k-th gap min %.3g" % (
        worst, "ok" if good else "FAIL", gap_min))
    if gap_min < 1e-6:
        print("  note: near tie in the router; pick another --seed", file=sys.stderr)

    # CE definition against the reference's logits (lb_coef 0 -> loss == CE)
    with torch.no_grad():
        loss0, ce0, lb0 = loss_fn(P, c, batch, 0.0)
    d_ce = abs(float(ce0) - float(np.mean(ce_terms)))
    good = d_ce < 1e-9 and float(loss0) == float(ce0)
    ok &= good
    print("CE vs grok_ref logits: |d| = %.3g %s (CE %.6f, lb_sum %.6f)" % (
        d_ce, "ok" if good else "FAIL", float(ce0), float(lb0)))

    # 2. gradients against central differences, a few entries per tensor,
    # with a large lb_coef so the load-balancing term's gradient counts
    lb_coef, h = 0.5, 1e-6
    loss, _, _ = loss_fn(P, c, batch, lb_coef)
    loss.backward()
    worst_rel, n, bad = 0.0, 0, []
    with torch.no_grad():
        for name, p in P.items():
            flat, gflat = p.view(-1), p.grad.view(-1)
            # mostly entries with a non-zero gradient (unchosen experts and
            # unused rows have none), plus one anywhere
            nz = torch.nonzero(gflat).view(-1).numpy()
            picks = list(gen.choice(nz, size=min(a.fd_per_tensor - 1, len(nz)), replace=False))
            picks.append(gen.integers(flat.numel()))
            for idx in picks:
                idx = int(idx)
                old = float(flat[idx])
                flat[idx] = old + h
                lp = float(loss_fn(P, c, batch, lb_coef)[0])
                flat[idx] = old - h
                lm = float(loss_fn(P, c, batch, lb_coef)[0])
                flat[idx] = old
                fd, ad = (lp - lm) / (2 * h), float(gflat[idx])
                err = abs(fd - ad) / max(1.0, abs(ad), abs(fd))
                worst_rel = max(worst_rel, err)
                n += 1
                if err > 1e-6:
                    bad.append("%s[%d]: autograd %.9g fd %.9g" % (name, idx, ad, fd))
    good = not bad
    ok &= good
    print("gradients vs central differences: %d entries, max rel err %.3g (tol 1e-6) %s" % (
        n, worst_rel, "ok" if good else "FAIL"))
    for line in bad:
        print("  " + line)

    # float32 path (the benchmark's) stays close to float64
    c32, P32 = load_params(a.model, torch.float32)
    with torch.no_grad():
        l32 = forward(P32, c32, batch[:, :-1])[0].double()
    d32 = float((l32 - logits).abs().max())
    good = d32 < 1e-3
    ok &= good
    print("float32 vs float64 logits: max |d| = %.3g (tol 1e-3) %s" % (d32, "ok" if good else "FAIL"))
    print("self-check %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    sub = ap.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser("grads", help="loss and gradients of one batch")
    g.add_argument("--model", required=True, help="F32 GGUF")
    g.add_argument("--batch", required=True, help="int32/int64 .npy [B][T+1]")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--lb-coef", type=float, default=0.01)
    g.add_argument("--dtype", choices=DTYPES, default="float64")

    w = sub.add_parser("adamw", help="N AdamW steps; losses before each update")
    w.add_argument("--model", required=True)
    w.add_argument("--batches", required=True, help="int32/int64 .npy [N][B][T+1]")
    w.add_argument("--steps", type=int, required=True)
    w.add_argument("--lr", type=float, default=1e-3)
    w.add_argument("--min-lr", type=float, default=1e-4)
    w.add_argument("--warmup", type=int, default=100)
    w.add_argument("--total-steps", type=int, default=None,
                   help="the schedule's `steps` (default --steps)")
    w.add_argument("--wd", type=float, default=0.1)
    w.add_argument("--clip", type=float, default=1.0, help="0: no clipping")
    w.add_argument("--beta1", type=float, default=0.9)
    w.add_argument("--beta2", type=float, default=0.95)
    w.add_argument("--eps", type=float, default=1e-8)
    w.add_argument("--lb-coef", type=float, default=0.01)
    w.add_argument("--out", required=True, help="losses .npy, float32 [1][N]")
    w.add_argument("--params-out", help="also write the final parameters here")
    w.add_argument("--dtype", choices=DTYPES, default="float64")

    b = sub.add_parser("bench", help="time float32 training steps")
    b.add_argument("--config", required=True, help="JSON file or inline JSON object")
    b.add_argument("--batch", type=int, required=True)
    b.add_argument("--seq", type=int, required=True)
    b.add_argument("--steps", type=int, required=True)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--warmup-steps", type=int, default=2)
    b.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("self-check", help="verify against grok_ref.py and finite differences")
    s.add_argument("--model", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--fd-per-tensor", type=int, default=3)

    a = ap.parse_args(argv)
    return {"grads": cmd_grads, "adamw": cmd_adamw, "bench": cmd_bench,
            "self-check": cmd_self_check}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
