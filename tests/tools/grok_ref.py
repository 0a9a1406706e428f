#!/usr/bin/python3
"""Float64 numpy reference of the Grok-1 forward pass (/work/shared/SPEC.md).

Independent of the C++ engine. Reads a GGUF (F32/F16/BF16/Q8_0 tensors) or a
Hugging Face folder in the grok-1-hf naming (config.json + model.safetensors, or
sharded with model.safetensors.index.json). Any size of the architecture.

  grok_ref.py logits MODEL --tokens 1,2,3 [--all-positions] -o out.npy
  grok_ref.py info MODEL
  grok_ref.py oracle-check [/work/shared/oracle/tiny]   (GGUF and HF vs ref_modelpy)

`logits` writes float32 .npy [positions, vocab] (last position only unless
--all-positions) and prints to stderr, per layer, the router's 2nd-vs-3rd
(generally k-th vs k+1-th) probability gap at every position plus the minimum
(tests use it to avoid prompts whose expert choice is fragile; pad positions
report inf).

Semantics (SPEC.md): x = E[t]*emb_scale; per layer sandwich norms
x += N1(Attn(N0(x))); x += N3(MoE(N2(x))); logits = N_f(x) @ E^T * out_scale.
RMSNorm scale multiplies directly. RoPE rotate-half over the full head dim.
q head h reads kv head h // (n_q/n_kv). Scores * attn_scale, then
cap*tanh(s/cap), causal + padding (t <= pad) key mask with -1e30, softmax.
Router: softmax over all experts (NO router softcap, even if the file has one),
p *= valid, top-k (ties -> lower index), gates NOT renormalised; expert
y = (gelu_tanh(m W1) * (m V)) W2.
"""
import json
import math
import os
import struct
import sys

import numpy as np

# ----------------------------------------------------------------------------
# GGUF reader (minimal)
# ----------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"

# gguf metadata value types
GT_UINT8, GT_INT8, GT_UINT16, GT_INT16, GT_UINT32, GT_INT32, GT_FLOAT32, \
    GT_BOOL, GT_STRING, GT_ARRAY, GT_UINT64, GT_INT64, GT_FLOAT64 = range(13)

_SCALAR_FMT = {
    GT_UINT8: "<B", GT_INT8: "<b", GT_UINT16: "<H", GT_INT16: "<h",
    GT_UINT32: "<I", GT_INT32: "<i", GT_FLOAT32: "<f", GT_BOOL: "<?",
    GT_UINT64: "<Q", GT_INT64: "<q", GT_FLOAT64: "<d",
}
_SCALAR_NP = {
    GT_UINT8: "<u1", GT_INT8: "<i1", GT_UINT16: "<u2", GT_INT16: "<i2",
    GT_UINT32: "<u4", GT_INT32: "<i4", GT_FLOAT32: "<f4", GT_BOOL: "?",
    GT_UINT64: "<u8", GT_INT64: "<i8", GT_FLOAT64: "<f8",
}

# ggml tensor types
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
GGML_TYPE_NAME = {GGML_F32: "F32", GGML_F16: "F16", GGML_Q8_0: "Q8_0", GGML_BF16: "BF16"}
QK8_0 = 32


class GGUFFile:
    """Parsed GGUF: .version, .kv (key -> (type, value)), .tensors (name -> info),
    .data_offset, .alignment. Arrays of scalars are numpy arrays, arrays of
    strings are lists of bytes objects (exact bytes), strings are str."""

    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        self.mv = memoryview(self.buf)
        self.pos = 0
        if bytes(self.mv[0:4]) != GGUF_MAGIC:
            raise ValueError("%s: not a GGUF file" % path)
        self.pos = 4
        self.version = self._u32()
        if self.version not in (2, 3):
            raise ValueError("unsupported GGUF version %d" % self.version)
        n_tensors = self._u64()
        n_kv = self._u64()
        self.kv = {}
        self.kv_order = []
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u32()
            self.kv[key] = (vtype, self._value(vtype))
            self.kv_order.append(key)
        self.tensors = {}
        self.tensor_order = []
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u32()
            ne = [self._u64() for _ in range(nd)]
            ttype = self._u32()
            off = self._u64()
            self.tensors[name] = {"ne": ne, "type": ttype, "offset": off}
            self.tensor_order.append(name)
        self.alignment = int(self.get("general.alignment", 32))
        a = self.alignment
        self.data_offset = (self.pos + a - 1) // a * a

    # -- primitive readers
    def _take(self, n):
        b = self.mv[self.pos:self.pos + n]
        if len(b) != n:
            raise ValueError("truncated GGUF")
        self.pos += n
        return b

    def _u32(self):
        return struct.unpack("<I", self._take(4))[0]

    def _u64(self):
        return struct.unpack("<Q", self._take(8))[0]

    def _rawstr(self):
        n = self._u64()
        return bytes(self._take(n))

    def _str(self):
        return self._rawstr().decode("utf-8")

    def _value(self, vtype):
        if vtype in _SCALAR_FMT:
            fmt = _SCALAR_FMT[vtype]
            return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]
        if vtype == GT_STRING:
            raw = self._rawstr()
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw
        if vtype == GT_ARRAY:
            etype = self._u32()
            n = self._u64()
            if etype in _SCALAR_NP:
                dt = np.dtype(_SCALAR_NP[etype])
                arr = np.frombuffer(self._take(n * dt.itemsize), dtype=dt).copy()
                return (etype, arr)
            if etype == GT_STRING:
                return (etype, [self._rawstr() for _ in range(n)])
            if etype == GT_ARRAY:
                return (etype, [self._value(GT_ARRAY) for _ in range(n)])
            raise ValueError("bad gguf array elem type %d" % etype)
        raise ValueError("bad gguf value type %d" % vtype)

    # -- accessors
    def get(self, key, default=None):
        if key not in self.kv:
            return default
        vtype, v = self.kv[key]
        if vtype == GT_ARRAY:
            return v[1]
        return v

    def tensor_nbytes(self, name):
        t = self.tensors[name]
        n = int(np.prod(t["ne"], dtype=np.int64))
        ty = t["type"]
        if ty == GGML_F32:
            return n * 4
        if ty in (GGML_F16, GGML_BF16):
            return n * 2
        if ty == GGML_Q8_0:
            return n // QK8_0 * 34
        raise ValueError("tensor %s: unsupported ggml type %d" % (name, ty))

    def tensor(self, name, dtype=np.float64):
        """Dequantised tensor as numpy, shape = reversed(ne) (row-major)."""
        t = self.tensors[name]
        ne = t["ne"]
        n = int(np.prod(ne, dtype=np.int64))
        start = self.data_offset + t["offset"]
        nb = self.tensor_nbytes(name)
        raw = self.buf[start:start + nb]
        if len(raw) != nb:
            raise ValueError("tensor %s: data past end of file" % name)
        ty = t["type"]
        if ty == GGML_F32:
            a = raw.view("<f4")
        elif ty == GGML_F16:
            a = raw.view("<f2")
        elif ty == GGML_BF16:
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif ty == GGML_Q8_0:
            if ne[0] % QK8_0:
                raise ValueError("tensor %s: Q8_0 with ne0 %% 32 != 0" % name)
            blk = np.asarray(raw).reshape(-1, 34)
            d = blk[:, 0:2].copy().view("<f2").astype(np.float64)  # [nblk, 1]
            q = blk[:, 2:].copy().view(np.int8).astype(np.float64)  # [nblk, 32]
            a = (q * d).reshape(-1)
        else:
            raise ValueError("tensor %s: unsupported ggml type %d" % (name, ty))
        return np.asarray(a, dtype=dtype).reshape(list(reversed(ne)))


# ----------------------------------------------------------------------------
# safetensors reader (minimal)
# ----------------------------------------------------------------------------

_ST_DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "bf16",
              "I8": "<i1", "I32": "<i4", "I64": "<i8", "U8": "<u1"}


class SafeTensors:
    def __init__(self, path):
        self.path = path
        self.buf = np.memmap(path, dtype=np.uint8, mode="r")
        (hlen,) = struct.unpack("<Q", bytes(self.buf[0:8]))
        hdr = json.loads(bytes(self.buf[8:8 + hlen]).decode("utf-8"))
        self.meta = hdr.pop("__metadata__", None)
        self.header = hdr
        self.base = 8 + hlen

    def names(self):
        return list(self.header.keys())

    def tensor(self, name, dtype=np.float64):
        h = self.header[name]
        b, e = h["data_offsets"]
        raw = self.buf[self.base + b:self.base + e]
        dt = _ST_DTYPES[h["dtype"]]
        if dt == "bf16":
            a = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = raw.view(dt)
        return np.asarray(a, dtype=dtype).reshape(h["shape"])


# ----------------------------------------------------------------------------
# Model (canonical float64 parameters)
# ----------------------------------------------------------------------------

class Model:
    """Canonical parameters, all float64, torch layout [out, in]:
    embd [V, D]; layers[i] = dict(attn_norm, wq [nq*hd, D], wk, wv [nkv*hd, D],
    wo [D, nq*hd], attn_out_norm, ffn_norm, router [E, D], w1 [E, F, D] (gelu
    branch), wv_e [E, F, D] (linear branch), w2 [E, D, F], post_norm);
    out_norm [D]; output [V, D] (None: tied to embd)."""

    def __init__(self):
        self.layers = []
        self.output = None
        self.source = ""
        self.notes = []

    def finalize(self):
        V, D = self.embd.shape
        self.n_vocab, self.n_embd = V, D
        self.n_layer = len(self.layers)
        L0 = self.layers[0]
        qdim = L0["wq"].shape[0]
        kvdim = L0["wk"].shape[0]
        if self.head_dim is None:
            self.head_dim = qdim // self.n_head
        assert self.n_head * self.head_dim == qdim, "q dim mismatch"
        if self.n_head_kv is None:
            self.n_head_kv = kvdim // self.head_dim
        assert self.n_head_kv * self.head_dim == kvdim, "kv dim mismatch"
        assert self.n_head % self.n_head_kv == 0, "n_head % n_head_kv != 0"
        self.n_expert = L0["router"].shape[0]
        self.n_ff = L0["w1"].shape[1]
        if self.n_expert_used is None:
            self.n_expert_used = 2
        for L in self.layers:
            assert L["wq"].shape == (qdim, D)
            assert L["wk"].shape == (kvdim, D) and L["wv"].shape == (kvdim, D)
            assert L["wo"].shape == (D, qdim)
            assert L["router"].shape == (self.n_expert, D)
            assert L["w1"].shape == (self.n_expert, self.n_ff, D)
            assert L["wv_e"].shape == (self.n_expert, self.n_ff, D)
            assert L["w2"].shape == (self.n_expert, D, self.n_ff)
            for k in ("attn_norm", "attn_out_norm", "ffn_norm", "post_norm"):
                assert L[k].shape == (D,)
        assert self.out_norm.shape == (D,)
        return self

    def describe(self):
        return ("layers=%d dim=%d heads=%d kv_heads=%d head_dim=%d experts=%d top_k=%d "
                "ffn=%d vocab=%d | attn_scale=%r attn_cap=%r emb_scale=%r out_scale=%r "
                "rope_base=%r eps=%r pad=%d tied=%s" % (
                    self.n_layer, self.n_embd, self.n_head, self.n_head_kv, self.head_dim,
                    self.n_expert, self.n_expert_used, self.n_ff, self.n_vocab,
                    self.attn_scale, self.attn_cap, self.emb_scale, self.out_scale,
                    self.rope_base, self.eps, self.pad_id, self.output is None))


def _f(x):
    return None if x is None else float(x)


def load_gguf(path):
    g = GGUFFile(path)
    arch = g.get("general.architecture")
    if arch != "grok":
        raise ValueError("%s: general.architecture is %r, expected 'grok'" % (path, arch))
    m = Model()
    m.source = path
    a = arch + "."
    n_layer = int(g.get(a + "block_count"))
    m.n_head = int(g.get(a + "attention.head_count"))
    hkv = g.get(a + "attention.head_count_kv")
    m.n_head_kv = None if hkv is None else int(hkv)
    kl = g.get(a + "attention.key_length")
    m.head_dim = None if kl is None else int(kl)
    eu = g.get(a + "expert_used_count")
    m.n_expert_used = None if eu is None else int(eu)
    m.rope_base = _f(g.get(a + "rope.freq_base", 10000.0))
    m.eps = _f(g.get(a + "attention.layer_norm_rms_epsilon", 1e-5))
    # llama.cpp defaults for grok when a key is absent (Grok-1 values)
    m.attn_scale = _f(g.get(a + "attention.output_scale"))
    m.attn_cap = _f(g.get(a + "attn_logit_softcapping", 30.0))
    m.emb_scale = _f(g.get(a + "embedding_scale", 78.38367176906169))
    m.out_scale = _f(g.get(a + "logit_scale", 0.5773502691896257))
    m.pad_id = int(g.get("tokenizer.ggml.padding_token_id", 0))
    if g.get(a + "router_logit_softcapping") is not None:
        m.notes.append("ignoring %srouter_logit_softcapping=%r (Grok-1 has no router cap)"
                       % (a, g.get(a + "router_logit_softcapping")))
    T = g.tensor
    m.embd = T("token_embd.weight")
    m.out_norm = T("output_norm.weight")
    if "output.weight" in g.tensors:
        m.output = T("output.weight")
        m.notes.append("GGUF has output.weight: used as the (untied) output projection")
    for i in range(n_layer):
        p = "blk.%d." % i
        m.layers.append(dict(
            attn_norm=T(p + "attn_norm.weight"),
            wq=T(p + "attn_q.weight"), wk=T(p + "attn_k.weight"),
            wv=T(p + "attn_v.weight"), wo=T(p + "attn_output.weight"),
            attn_out_norm=T(p + "attn_output_norm.weight"),
            ffn_norm=T(p + "ffn_norm.weight"),
            router=T(p + "ffn_gate_inp.weight"),
            w1=T(p + "ffn_gate_exps.weight"), wv_e=T(p + "ffn_up_exps.weight"),
            w2=T(p + "ffn_down_exps.weight"),
            post_norm=T(p + "layer_output_norm.weight"),
        ))
    if m.attn_scale is None:
        # llama.cpp default for grok when absent: 1/sqrt(head_dim) (Grok-1: 128^-0.5)
        hd = m.head_dim or (m.layers[0]["wq"].shape[0] // m.n_head)
        m.attn_scale = 1.0 / math.sqrt(hd)
        m.notes.append("no attention.output_scale: using 1/sqrt(head_dim)")
    return m.finalize()


def load_hf(folder):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    idx = os.path.join(folder, "model.safetensors.index.json")
    files = {}
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        name2file = {}
        for name, fn in wm.items():
            if fn not in files:
                files[fn] = SafeTensors(os.path.join(folder, fn))
            name2file[name] = files[fn]
    else:
        st = SafeTensors(os.path.join(folder, "model.safetensors"))
        name2file = {n: st for n in st.names()}

    def T(name):
        if name not in name2file:
            raise KeyError("%s: tensor %s missing" % (folder, name))
        return name2file[name].tensor(name)

    m = Model()
    m.source = folder
    n_layer = int(cfg["num_hidden_layers"])
    n_expert = int(cfg["num_local_experts"])
    m.n_head = int(cfg["num_attention_heads"])
    m.n_head_kv = int(cfg.get("num_key_value_heads", m.n_head))
    m.head_dim = int(cfg["head_dim"]) if cfg.get("head_dim") else None
    m.n_expert_used = int(cfg.get("num_experts_per_tok", 2))
    m.rope_base = float(cfg.get("rope_theta", 10000.0))
    m.eps = float(cfg.get("rms_norm_eps", 1e-5))
    m.attn_scale = _f(cfg.get("attn_output_multiplier"))
    cap = cfg.get("max_attn_value", cfg.get("attn_logit_softcapping", 30.0))
    m.attn_cap = float(cap)
    m.emb_scale = float(cfg.get("embedding_multiplier_scale", 78.38367176906169))
    m.out_scale = float(cfg.get("output_multiplier_scale", 0.5773502691896257))
    m.pad_id = int(cfg.get("pad_token_id", 0) or 0)
    m.embd = T("transformer.in_out_embed.weight")
    m.out_norm = T("transformer.rms_norm.weight")
    if "lm_head.weight" in name2file:
        m.output = T("lm_head.weight")
        m.notes.append("HF folder has lm_head.weight: used as the output projection")
    for i in range(n_layer):
        p = "transformer.decoder_layer.%d." % i
        a = p + "multi_head_attention."
        w1 = np.stack([T(p + "moe.%d.linear.weight" % e) for e in range(n_expert)])
        wv = np.stack([T(p + "moe.%d.linear_v.weight" % e) for e in range(n_expert)])
        w2 = np.stack([T(p + "moe.%d.linear_1.weight" % e) for e in range(n_expert)])
        m.layers.append(dict(
            attn_norm=T(p + "rms_norm.weight"),
            wq=T(a + "query.weight"), wk=T(a + "key.weight"),
            wv=T(a + "value.weight"), wo=T(a + "linear.weight"),
            attn_out_norm=T(p + "rms_norm_1.weight"),
            ffn_norm=T(p + "rms_norm_2.weight"),
            router=T(p + "router.weight"),
            w1=w1, wv_e=wv, w2=w2,
            post_norm=T(p + "rms_norm_3.weight"),
        ))
    if m.attn_scale is None:
        hd = m.head_dim or (m.layers[0]["wq"].shape[0] // m.n_head)
        m.attn_scale = 1.0 / math.sqrt(hd)
        m.notes.append("no attn_output_multiplier: using 1/sqrt(head_dim)")
    return m.finalize()


def load_model(path):
    if os.path.isdir(path):
        return load_hf(path)
    return load_gguf(path)


# ----------------------------------------------------------------------------
# Forward pass (float64)
# ----------------------------------------------------------------------------

def rms_norm(x, scale, eps):
    return scale * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def rope(x, pos, base):
    """x: [T, H, d]; rotate-half (NeoX) over the full head dim d."""
    d = x.shape[-1]
    inv = 1.0 / (base ** (np.arange(0, d, 2, dtype=np.float64) / d))  # [d/2]
    ang = np.asarray(pos, dtype=np.float64)[:, None] * inv[None, :]  # [T, d/2]
    ang = np.concatenate([ang, ang], axis=-1)[:, None, :]  # [T, 1, d]
    x1, x2 = x[..., :d // 2], x[..., d // 2:]
    rot = np.concatenate([-x2, x1], axis=-1)
    return x * np.cos(ang) + rot * np.sin(ang)


def softmax(s, axis=-1):
    s = s - np.max(s, axis=axis, keepdims=True)
    e = np.exp(s)
    return e / np.sum(e, axis=axis, keepdims=True)


def forward(m, tokens, all_positions=False, want_gaps=True):
    """Returns (logits [rows, V] float64, gaps [n_layer, T] float64,
    experts [n_layer, T, k] int)."""
    t = np.asarray(tokens, dtype=np.int64)
    T = len(t)
    if T == 0:
        raise ValueError("empty token list")
    if t.min() < 0 or t.max() >= m.n_vocab:
        raise ValueError("token id out of range [0, %d)" % m.n_vocab)
    valid = (t > m.pad_id).astype(np.float64)  # [T]
    pos = np.arange(T)
    causal = np.tril(np.ones((T, T), dtype=bool))
    mask = causal & (valid[None, :] > 0)  # [Tq, Tk]
    nq, nkv, hd = m.n_head, m.n_head_kv, m.head_dim
    group = nq // nkv
    k_used = m.n_expert_used
    x = m.embd[t] * m.emb_scale  # [T, D]
    gaps = np.zeros((m.n_layer, T))
    experts = np.zeros((m.n_layer, T, k_used), dtype=np.int64)
    for li, L in enumerate(m.layers):
        # --- attention
        a = rms_norm(x, L["attn_norm"], m.eps)
        q = (a @ L["wq"].T).reshape(T, nq, hd)
        k = (a @ L["wk"].T).reshape(T, nkv, hd)
        v = (a @ L["wv"].T).reshape(T, nkv, hd)
        q = rope(q, pos, m.rope_base)
        k = rope(k, pos, m.rope_base)
        kh = k[:, np.arange(nq) // group, :]  # [T, nq, hd]
        vh = v[:, np.arange(nq) // group, :]
        s = np.einsum("thd,Thd->htT", q, kh) * m.attn_scale  # [nq, Tq, Tk]
        s = m.attn_cap * np.tanh(s / m.attn_cap)
        s = np.where(mask[None], s, -1e30)
        pr = softmax(s, axis=-1)
        o = np.einsum("htT,Thd->thd", pr, vh).reshape(T, nq * hd)
        attn = o @ L["wo"].T
        x = x + rms_norm(attn, L["attn_out_norm"], m.eps)
        # --- MoE
        h = rms_norm(x, L["ffn_norm"], m.eps)
        r = h @ L["router"].T  # [T, E]  (no router softcap)
        p = softmax(r, axis=-1) * valid[:, None]
        order = np.argsort(-p, axis=-1, kind="stable")  # ties -> lower index
        sel = order[:, :k_used]
        experts[li] = sel
        if p.shape[1] > k_used:
            ps = np.take_along_axis(p, order, axis=-1)
            gaps[li] = ps[:, k_used - 1] - ps[:, k_used]
        else:
            gaps[li] = np.inf
        gaps[li][valid == 0] = np.inf  # pad positions: no routing (p = 0)
        y = np.zeros_like(h)
        for e in range(m.n_expert):
            rows, slot = np.nonzero(sel == e)
            if len(rows) == 0:
                continue
            he = h[rows]
            u = gelu_tanh(he @ L["w1"][e].T) * (he @ L["wv_e"][e].T)
            ye = u @ L["w2"][e].T
            y[rows] += p[rows, e][:, None] * ye
        x = x + rms_norm(y, L["post_norm"], m.eps)
    hf = rms_norm(x if all_positions else x[-1:], m.out_norm, m.eps)
    W = m.embd if m.output is None else m.output
    logits = (hf @ W.T) * m.out_scale
    return logits, gaps, experts


# ----------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------

def _parse_tokens(s):
    s = s.strip()
    if os.path.exists(s):
        s = open(s).read()
    return [int(v) for v in s.replace(",", " ").split()]


def oracle_check(odir, tol):
    idx = json.load(open(os.path.join(odir, "f32", "index.json")))
    worst_all = 0.0
    for src in (os.path.join(odir, idx["model_gguf"]), os.path.join(odir, "hf")):
        m = load_model(src)
        worst = 0.0
        for p in idx["prompts"]:
            logits, gaps, _ = forward(m, p["ids"])
            ref = np.fromfile(os.path.join(odir, "f32", p["ref_modelpy_file"]), "<f4")
            d = float(np.abs(logits[-1] - ref).max())
            worst = max(worst, d)
            print("%s %-10s T=%3d max|d|=%.3g router_gap_min=%.6g (recorded %.6g)" % (
                os.path.basename(src), p["id"], len(p["ids"]), d, gaps.min(),
                p.get("router_gap_min", float("nan"))))
        print("%s: max |d| vs ref_modelpy = %.3g" % (src, worst))
        worst_all = max(worst_all, worst)
    ok = worst_all <= tol
    print("oracle-check %s (max |d| %.3g, tol %.3g)" % ("PASS" if ok else "FAIL", worst_all, tol))
    return 0 if ok else 1


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("logits", help="compute logits")
    pl.add_argument("model", help="GGUF file or HF folder")
    pl.add_argument("--tokens", required=True,
                    help="comma/space separated ids (or a file holding them)")
    pl.add_argument("--all-positions", action="store_true",
                    help="logits for every position (default: last only)")
    pl.add_argument("-o", "--out", required=True, help="output .npy (float32 [rows, vocab])")
    pl.add_argument("--f64", action="store_true", help="write float64 instead of float32")
    pl.add_argument("--gaps-out", help="also save router gaps [layers, positions] .npy")
    pl.add_argument("--experts-out", help="also save chosen experts [layers, positions, k] .npy")
    pl.add_argument("--quiet-gaps", action="store_true",
                    help="only print the per-layer/overall minimum, not every position")
    pi = sub.add_parser("info", help="print hyperparameters")
    pi.add_argument("model")
    po = sub.add_parser("oracle-check",
                        help="compare with the oracle's ref_modelpy logits (GGUF and HF)")
    po.add_argument("oracle", nargs="?", default="/work/shared/oracle/tiny")
    po.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args(argv)
    if args.cmd == "oracle-check":
        return oracle_check(args.oracle, args.tol)

    m = load_model(args.model)
    for n in m.notes:
        print("note: " + n, file=sys.stderr)
    if args.cmd == "info":
        print(m.describe())
        return 0
    toks = _parse_tokens(args.tokens)
    logits, gaps, experts = forward(m, toks, all_positions=args.all_positions)
    out = logits if args.f64 else logits.astype(np.float32)
    tmp = args.out + ".tmp.npy"
    np.save(tmp, out)
    os.replace(tmp, args.out)
    if args.gaps_out:
        np.save(args.gaps_out, gaps)
    if args.experts_out:
        np.save(args.experts_out, experts)
    # router 2nd-vs-3rd probability gaps
    T = len(toks)
    for li in range(m.n_layer):
        j = int(np.argmin(gaps[li]))
        line = "router_gap layer=%d min=%.6g pos=%d" % (li, gaps[li, j], j)
        if not args.quiet_gaps:
            line += " gaps=" + ",".join("%.6g" % g for g in gaps[li])
        print(line, file=sys.stderr)
    li, j = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
    print("router_gap_min=%.6g layer=%d pos=%d (positions=%d)" % (gaps[li, j], li, j, T),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
