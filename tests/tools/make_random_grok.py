#!/usr/bin/python3
"""Write a random-weight model of the Grok-1 architecture, any size, as a GGUF v3
(the keys and tensor names llama.cpp's converter writes for arch `grok`) and/or a
Hugging Face folder in the grok-1-hf naming (config.json + safetensors).

  make_random_grok.py --layers 3 --dim 96 --heads 6 --kv-heads 2 --head-dim 16 \
      --experts 4 --top-k 2 --ffn 160 --vocab 1000 --seed 1 \
      --gguf /tmp/m.gguf [--dtype f32|f16|bf16|q8_0] [--vocab-from SRC.gguf] \
      --hf /tmp/m_hf [--hf-dtype f32|bf16|f16] [--shards K]

Both files hold the same function: the random f32 master weights are rounded
to --hf-dtype, then to the type the GGUF stores them in (f16/bf16/q8_0; norms and
the router stay f32 as in llama.cpp's converter), and the HF folder gets those
values. They are bit-identical for every combination except q8_0 with a 16-bit
--hf-dtype (q8_0 values need ~19 mantissa bits); the tool prints which. The
files depend only on the arguments (seed, shapes, --dtype, --hf-dtype), so
separate runs for --gguf and --hf with the same arguments match too.
Constants that the GGUF stores as float32 are written to config.json with the
same float32 values (--f64-config for the exact Grok-1 decimals).

Weight scales follow the oracle manifest's init_knobs (emb_rms 0.5, c_qk 1.7,
c_router 1.2, c_gate 1.2, post_norm 1.5, logit_std 4): logits have std ~4,
attention and routing are non-degenerate, norm scales ~ 1 +- 0.1 (the two
post-block norms 1.5 +- 0.15, the final norm sized for the logit std).
Constants are Grok-1's (embedding 78.38367176906169, output 0.5773502691896257,
attention cap 30, eps 1e-5, rope 10000); attention scale = head_dim^-0.5.
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grok_ref  # noqa: E402  (GGUF reader, used for --vocab-from and checks)

GT = grok_ref
GGML_F32, GGML_F16, GGML_Q8_0, GGML_BF16 = 0, 1, 8, 30
# llama_ftype values for general.file_type
FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7, "bf16": 32}
ALIGN = 32

GROK1 = dict(
    emb_scale=78.38367176906169,
    out_scale=0.5773502691896257,
    attn_cap=30.0,
    router_cap=30.0,
    eps=1e-5,
    rope_base=10000.0,
    ctx=8192,
)
KNOBS = dict(emb_rms=0.5, c_qk=1.7, c_router=1.2, c_gate=1.2, post_norm=1.5, logit_std=4.0)


# ----------------------------------------------------------------------------
# rounding / quantisation
# ----------------------------------------------------------------------------

def to_bf16_bits(x):
    """float32 -> bf16 bits (uint16), round to nearest even (as gguf-py)."""
    n = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    nan = (n & 0x7fffffff) > 0x7f800000
    n = n.astype(np.uint64)
    r = ((n + (0x7fff + ((n >> 16) & 1))) >> 16).astype(np.uint16)
    if nan.any():
        r = np.where(nan, ((n >> 16) | 64).astype(np.uint16), r)
    return r


def round_bf16(x):
    return (to_bf16_bits(x).astype(np.uint32) << 16).view(np.float32)


def roundf(v):
    """C roundf: half away from zero."""
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def quant_q8_0(x):
    """x: float32 array, last dim % 32 == 0 -> (bytes of blocks, dequantised f32)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    blocks = x.reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(d == 0, np.float32(0), blocks / d)
    q = np.clip(roundf(q), -127, 127).astype(np.int8)
    d16 = d.astype(np.float16)
    raw = np.concatenate([d16.view(np.uint8), q.view(np.uint8)], axis=1)  # [nblk, 34]
    deq = (q.astype(np.float32) * d16.astype(np.float32)).reshape(x.shape)
    return raw.tobytes(), deq


def gguf_type_for(name, arr, dtype):
    """Storage type the llama.cpp converter would pick."""
    if arr.ndim <= 1 or name.endswith("_norm.weight") or "ffn_gate_inp" in name:
        return GGML_F32
    if dtype == "f32":
        return GGML_F32
    if dtype == "f16":
        return GGML_F16
    if dtype == "bf16":
        return GGML_BF16
    if dtype == "q8_0":
        return GGML_Q8_0 if arr.shape[-1] % 32 == 0 else GGML_F16  # converter falls back to f16
    raise ValueError(dtype)


def round_to_gguf(arr, ttype):
    if ttype == GGML_F32:
        return arr
    if ttype == GGML_F16:
        return arr.astype(np.float16).astype(np.float32)
    if ttype == GGML_BF16:
        return round_bf16(arr)
    if ttype == GGML_Q8_0:
        return quant_q8_0(arr)[1]
    raise ValueError(ttype)


def gguf_bytes(arr, ttype):
    if ttype == GGML_F32:
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if ttype == GGML_F16:
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if ttype == GGML_BF16:
        return to_bf16_bits(arr).astype("<u2").tobytes()
    if ttype == GGML_Q8_0:
        return quant_q8_0(arr)[0]
    raise ValueError(ttype)


def round_to_hf(arr, hf_dtype):
    if hf_dtype == "f32":
        return arr
    if hf_dtype == "f16":
        return arr.astype(np.float16).astype(np.float32)
    if hf_dtype == "bf16":
        return round_bf16(arr)
    raise ValueError(hf_dtype)


def hf_bytes(arr, hf_dtype):
    if hf_dtype == "f32":
        return np.ascontiguousarray(arr, dtype="<f4").tobytes()
    if hf_dtype == "f16":
        return np.ascontiguousarray(arr, dtype="<f2").tobytes()
    if hf_dtype == "bf16":
        return to_bf16_bits(arr).astype("<u2").tobytes()
    raise ValueError(hf_dtype)


HF_ST_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
HF_TORCH_DTYPE = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}


# ----------------------------------------------------------------------------
# random weights
# ----------------------------------------------------------------------------

def make_weights(a, n_vocab):
    """Returns an ordered list of (gguf_name, hf_names, array float32) in the
    llama.cpp converter's order. Experts: gguf array [E, out, in], hf_names a
    list of per-expert names."""
    rng = np.random.default_rng(a.seed)
    D, nq, nkv, hd = a.dim, a.heads, a.kv_heads, a.head_dim
    E, F = a.experts, a.ffn
    k = KNOBS

    def normal(shape, std, mean=0.0):
        w = rng.standard_normal(size=shape, dtype=np.float32)
        w *= np.float32(std)
        if mean:
            w += np.float32(mean)
        return w

    emb_std = k["emb_rms"] / a.emb_scale
    out = []
    out.append(("token_embd.weight", "transformer.in_out_embed.weight",
                normal((n_vocab, D), emb_std)))
    for i in range(a.layers):
        g, h = "blk.%d." % i, "transformer.decoder_layer.%d." % i
        at = h + "multi_head_attention."
        out.append((g + "attn_norm.weight", h + "rms_norm.weight", normal((D,), 0.1, 1.0)))
        out.append((g + "attn_q.weight", at + "query.weight",
                    normal((nq * hd, D), k["c_qk"] / math.sqrt(D))))
        out.append((g + "attn_k.weight", at + "key.weight",
                    normal((nkv * hd, D), k["c_qk"] / math.sqrt(D))))
        out.append((g + "attn_v.weight", at + "value.weight",
                    normal((nkv * hd, D), 1.0 / math.sqrt(D))))
        out.append((g + "attn_output.weight", at + "linear.weight",
                    normal((D, nq * hd), 1.0 / math.sqrt(nq * hd))))
        pn = k["post_norm"]
        out.append((g + "attn_output_norm.weight", h + "rms_norm_1.weight",
                    normal((D,), 0.1 * pn, pn)))
        out.append((g + "ffn_norm.weight", h + "rms_norm_2.weight", normal((D,), 0.1, 1.0)))
        out.append((g + "ffn_gate_inp.weight", h + "router.weight",
                    normal((E, D), k["c_router"] / math.sqrt(D))))
        out.append((g + "ffn_gate_exps.weight",
                    [h + "moe.%d.linear.weight" % e for e in range(E)],
                    normal((E, F, D), k["c_gate"] / math.sqrt(D))))
        out.append((g + "ffn_up_exps.weight",
                    [h + "moe.%d.linear_v.weight" % e for e in range(E)],
                    normal((E, F, D), 1.0 / math.sqrt(D))))
        out.append((g + "ffn_down_exps.weight",
                    [h + "moe.%d.linear_1.weight" % e for e in range(E)],
                    normal((E, D, F), 1.0 / math.sqrt(F))))
        out.append((g + "layer_output_norm.weight", h + "rms_norm_3.weight",
                    normal((D,), 0.1 * pn, pn)))
    # final norm sized so that logits have std ~ logit_std:
    # std(logit) ~ s * emb_std * sqrt(D) * out_scale
    fn = k["logit_std"] / (a.out_scale * emb_std * math.sqrt(D))
    out.append(("output_norm.weight", "transformer.rms_norm.weight", normal((D,), 0.1 * fn, fn)))
    return out


# ----------------------------------------------------------------------------
# GGUF writer
# ----------------------------------------------------------------------------

def _gstr(s):
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


_FMT = {GT.GT_UINT8: "<B", GT.GT_INT8: "<b", GT.GT_UINT16: "<H", GT.GT_INT16: "<h",
        GT.GT_UINT32: "<I", GT.GT_INT32: "<i", GT.GT_FLOAT32: "<f", GT.GT_BOOL: "<?",
        GT.GT_UINT64: "<Q", GT.GT_INT64: "<q", GT.GT_FLOAT64: "<d"}


def _gval(vtype, v):
    if vtype in _FMT:
        return struct.pack(_FMT[vtype], v)
    if vtype == GT.GT_STRING:
        return _gstr(v)
    if vtype == GT.GT_ARRAY:
        etype, items = v
        b = struct.pack("<IQ", etype, len(items))
        if etype in GT._SCALAR_NP:
            return b + np.asarray(items, dtype=GT._SCALAR_NP[etype]).tobytes()
        if etype == GT.GT_STRING:
            return b + b"".join(_gstr(s) for s in items)
        return b + b"".join(_gval(GT.GT_ARRAY, s) for s in items)
    raise ValueError(vtype)


def write_gguf(path, kvs, tensors):
    """kvs: list of (key, vtype, value); tensors: list of (name, ne list, ggml type, bytes)."""
    head = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kvs))]
    for key, vtype, v in kvs:
        head.append(_gstr(key) + struct.pack("<I", vtype) + _gval(vtype, v))
    off = 0
    offsets = []
    for name, ne, ttype, data in tensors:
        offsets.append(off)
        head.append(_gstr(name) + struct.pack("<I", len(ne)) +
                    struct.pack("<%dQ" % len(ne), *ne) + struct.pack("<IQ", ttype, off))
        off += (len(data) + ALIGN - 1) // ALIGN * ALIGN
    head = b"".join(head)
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(b"\0" * ((-len(head)) % ALIGN))
        for name, ne, ttype, data in tensors:
            f.write(data)
            f.write(b"\0" * ((-len(data)) % ALIGN))
    os.replace(tmp, path)


def gguf_kvs(a, n_vocab, dtype, vocab_src):
    A = "grok."
    U32, F32, STR = GT.GT_UINT32, GT.GT_FLOAT32, GT.GT_STRING
    kv = [
        ("general.architecture", STR, "grok"),
        ("general.type", STR, "model"),
        ("general.name", STR, a.name),
        (A + "block_count", U32, a.layers),
        (A + "context_length", U32, a.ctx),
        (A + "embedding_length", U32, a.dim),
        (A + "feed_forward_length", U32, a.ffn),
        (A + "attention.head_count", U32, a.heads),
        (A + "attention.head_count_kv", U32, a.kv_heads),
    ]
    if a.head_dim * a.heads != a.dim:
        kv.append((A + "attention.key_length", U32, a.head_dim))
        kv.append((A + "attention.value_length", U32, a.head_dim))
    kv += [
        (A + "rope.freq_base", F32, a.rope_base),
        (A + "attention.layer_norm_rms_epsilon", F32, a.eps),
        (A + "expert_count", U32, a.experts),
        (A + "expert_used_count", U32, a.top_k),
        ("general.file_type", U32, FILE_TYPE[dtype]),
        (A + "attn_logit_softcapping", F32, a.attn_cap),
        (A + "router_logit_softcapping", F32, GROK1["router_cap"]),
        (A + "attention.output_scale", F32, a.attn_scale),
        (A + "embedding_scale", F32, a.emb_scale),
        (A + "logit_scale", F32, a.out_scale),
        ("general.quantization_version", U32, 2),
    ]
    if vocab_src is not None:
        for key in vocab_src.kv_order:
            if key.startswith("tokenizer.ggml."):
                vtype, v = vocab_src.kv[key]
                kv.append((key, vtype, v))
    return kv


# ----------------------------------------------------------------------------
# HF writer
# ----------------------------------------------------------------------------

def write_safetensors(path, items):
    """items: list of (name, shape, st dtype, bytes)."""
    hdr = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, dt, data in items:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in items:
            f.write(data)
    os.replace(tmp, path)
    return off


def _write_text(path, text):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def hf_config(a, n_vocab, hf_dtype):
    c = {
        "architectures": ["Grok1ForCausalLM"],
        "model_type": "grok-1",
        "vocab_size": n_vocab,
        "hidden_size": a.dim,
        "intermediate_size": a.ffn,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
    }
    if a.head_dim * a.heads != a.dim:
        c["head_dim"] = a.head_dim
    c.update({
        "num_local_experts": a.experts,
        "num_experts_per_tok": a.top_k,
        "attn_output_multiplier": a.attn_scale,
        "embedding_multiplier_scale": a.emb_scale,
        "output_multiplier_scale": a.out_scale,
        "max_attn_value": a.attn_cap,
        "attn_logit_softcapping": a.attn_cap,
        "max_position_embeddings": a.ctx,
        "rms_norm_eps": a.eps,
        "rope_theta": int(a.rope_base) if float(a.rope_base).is_integer() else a.rope_base,
        "hidden_act": "gelu",
        "tie_word_embeddings": True,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "unk_token_id": 3,
        "torch_dtype": HF_TORCH_DTYPE[hf_dtype],
    })
    return c


_HF_SUB = {"rms_norm": 0, "multi_head_attention.query": 1, "multi_head_attention.key": 2,
           "multi_head_attention.value": 3, "multi_head_attention.linear": 4,
           "rms_norm_1": 5, "rms_norm_2": 6, "router": 7, "rms_norm_3": 9}
_MOE_SUB = {"linear": 0, "linear_v": 1, "linear_1": 2}


def hf_sort_key(name):
    if name == "transformer.in_out_embed.weight":
        return (0,)
    if name == "transformer.rms_norm.weight":
        return (2,)
    rest = name[len("transformer.decoder_layer."):-len(".weight")]
    layer, sub = rest.split(".", 1)
    if sub.startswith("moe."):
        _, e, kind = sub.split(".")
        return (1, int(layer), 8, int(e), _MOE_SUB[kind])
    return (1, int(layer), _HF_SUB[sub])


def split_shards(items, shards):
    """Contiguous split of items into `shards` non-empty groups of similar bytes."""
    if shards > len(items):
        raise ValueError("more shards (%d) than tensors (%d)" % (shards, len(items)))
    groups, i = [], 0
    remaining = sum(len(it[3]) for it in items)
    for s in range(shards, 0, -1):
        if s == 1:
            groups.append(items[i:])
            break
        target = remaining / s
        g, acc = [items[i]], len(items[i][3])
        i += 1
        while len(items) - i > s - 1 and acc + len(items[i][3]) / 2 <= target:
            acc += len(items[i][3])
            g.append(items[i])
            i += 1
        groups.append(g)
        remaining -= acc
    return groups


def write_hf(outdir, a, n_vocab, items, hf_dtype, shards, tokenizer_model):
    os.makedirs(outdir, exist_ok=True)
    _write_text(os.path.join(outdir, "config.json"),
                json.dumps(hf_config(a, n_vocab, hf_dtype), indent=2))
    _write_text(os.path.join(outdir, "tokenizer_config.json"), json.dumps({
        "add_bos_token": False, "add_eos_token": False,
        "model_max_length": a.ctx, "tokenizer_class": "LlamaTokenizer"}, indent=2))
    if tokenizer_model:
        tmp = os.path.join(outdir, "tokenizer.model.tmp%d" % os.getpid())
        shutil.copyfile(tokenizer_model, tmp)
        os.replace(tmp, os.path.join(outdir, "tokenizer.model"))
    # remove stale weight files from an earlier run with another layout
    for fn in os.listdir(outdir):
        if fn == "model.safetensors.index.json" or (
                fn.startswith("model") and fn.endswith(".safetensors")):
            os.remove(os.path.join(outdir, fn))
    if shards <= 1:
        write_safetensors(os.path.join(outdir, "model.safetensors"), items)
        return
    total = sum(len(it[3]) for it in items)
    groups = split_shards(items, shards)
    wm = {}
    for gi, g in enumerate(groups):
        fn = "model-%05d-of-%05d.safetensors" % (gi + 1, shards)
        write_safetensors(os.path.join(outdir, fn), g)
        for it in g:
            wm[it[0]] = fn
    wm = {it[0]: wm[it[0]] for it in items}
    _write_text(os.path.join(outdir, "model.safetensors.index.json"),
                json.dumps({"metadata": {"total_size": total}, "weight_map": wm}, indent=2) + "\n")


# ----------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------

def add_shape_args(ap):
    """The size options both model generators take (checked by check_shape_args)."""
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None, help="default: --heads")
    ap.add_argument("--head-dim", type=int, default=None, help="default: dim/heads")
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=128)


def check_shape_args(ap, a):
    """Fills in --kv-heads / --head-dim defaults and rejects impossible shapes (shared with make_grok_checkpoint.py)."""
    if a.kv_heads is None:
        a.kv_heads = a.heads
    if a.heads % a.kv_heads:
        ap.error("--heads must be a multiple of --kv-heads")
    if a.head_dim is None:
        if a.dim % a.heads:
            ap.error("--dim not divisible by --heads: give --head-dim")
        a.head_dim = a.dim // a.heads
    if a.head_dim % 2:
        ap.error("--head-dim must be even (RoPE)")
    if not 1 <= a.top_k <= a.experts:
        ap.error("need 1 <= --top-k <= --experts")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shape_args(ap)
    ap.add_argument("--vocab", type=int, default=None,
                    help="vocab size (default 1000, or the --vocab-from tokenizer's)")
    ap.add_argument("--vocab-from", help="copy tokenizer.ggml.* from this GGUF")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16", "q8_0"], default="f32",
                    help="GGUF weight type (norms and router stay f32)")
    ap.add_argument("--hf-dtype", choices=["f32", "bf16", "f16"], default="f32")
    ap.add_argument("--gguf", help="output GGUF path")
    ap.add_argument("--hf", help="output HF folder")
    ap.add_argument("--shards", type=int, default=1, help="HF: number of safetensors shards")
    ap.add_argument("--hf-tokenizer", help="HF: copy this tokenizer.model into the folder")
    ap.add_argument("--name", default="grok-random")
    ap.add_argument("--ctx", type=int, default=GROK1["ctx"])
    ap.add_argument("--rope-base", type=float, default=GROK1["rope_base"])
    ap.add_argument("--eps", type=float, default=GROK1["eps"])
    ap.add_argument("--attn-scale", type=float, default=None, help="default head_dim^-0.5")
    ap.add_argument("--attn-cap", type=float, default=GROK1["attn_cap"])
    ap.add_argument("--emb-scale", type=float, default=GROK1["emb_scale"])
    ap.add_argument("--out-scale", type=float, default=GROK1["out_scale"])
    ap.add_argument("--f64-config", action="store_true",
                    help="config.json gets the exact float64 constants (default: the "
                         "float32-rounded values the GGUF holds, so both files agree exactly)")
    ap.add_argument("--no-check", action="store_true",
                    help="skip re-reading the outputs to compare GGUF and HF weights")
    a = ap.parse_args(argv)
    t0 = time.time()
    if not a.gguf and not a.hf:
        ap.error("give --gguf and/or --hf")
    check_shape_args(ap, a)
    if a.attn_scale is None:
        a.attn_scale = 1.0 / math.sqrt(a.head_dim)
    if not a.f64_config:
        # GGUF stores these as float32: give config.json the same values so that
        # both files define exactly the same function
        for k in ("rope_base", "eps", "attn_scale", "attn_cap", "emb_scale", "out_scale"):
            setattr(a, k, float(np.float32(getattr(a, k))))

    vocab_src = None
    if a.vocab_from:
        vocab_src = grok_ref.GGUFFile(a.vocab_from)
        toks = vocab_src.get("tokenizer.ggml.tokens")
        if toks is None:
            ap.error("%s has no tokenizer.ggml.tokens" % a.vocab_from)
        if a.vocab is not None and a.vocab != len(toks):
            ap.error("--vocab %d != %d tokens in %s" % (a.vocab, len(toks), a.vocab_from))
        n_vocab = len(toks)
    else:
        n_vocab = a.vocab if a.vocab is not None else 1000
    if n_vocab < 4:
        ap.error("vocab must be >= 4")

    weights = make_weights(a, n_vocab)

    # round the master through the GGUF storage type, then the HF dtype
    gg_tensors, hf_items = [], []
    for gname, hnames, w in weights:
        ttype = gguf_type_for(gname, w, a.dtype)
        # pre-round by --hf-dtype (whether or not --hf is given, so that separate runs
        # with the same arguments give matching files), then by the GGUF type
        w = round_to_hf(w, a.hf_dtype)
        w = round_to_gguf(w, ttype)
        if a.gguf:
            gg_tensors.append((gname, list(reversed(w.shape)), ttype, gguf_bytes(w, ttype)))
        if a.hf:
            wh = round_to_hf(w, a.hf_dtype)
            if isinstance(hnames, list):
                for e, hn in enumerate(hnames):
                    hf_items.append((hn, wh.shape[1:], HF_ST_DTYPE[a.hf_dtype],
                                     hf_bytes(wh[e], a.hf_dtype)))
            else:
                hf_items.append((hnames, wh.shape, HF_ST_DTYPE[a.hf_dtype],
                                 hf_bytes(wh, a.hf_dtype)))
    # HF order as the grok-1-hf files: embedding, per layer rms_norm, q, k, v, o,
    # rms_norm_1, rms_norm_2, router, moe.0.{linear,linear_v,linear_1}, moe.1..., rms_norm_3;
    # final rms_norm
    hf_items.sort(key=lambda it: hf_sort_key(it[0]))
    if a.gguf:
        write_gguf(a.gguf, gguf_kvs(a, n_vocab, a.dtype, vocab_src), gg_tensors)
    if a.hf:
        write_hf(a.hf, a, n_vocab, hf_items, a.hf_dtype, a.shards, a.hf_tokenizer)
    n_params = sum(int(w.size) for _, _, w in weights)
    msg = ("wrote%s%s: layers=%d dim=%d heads=%d kv_heads=%d head_dim=%d experts=%d top_k=%d "
           "ffn=%d vocab=%d params=%d gguf=%s hf=%s%s in %.2fs" % (
               " " + a.gguf if a.gguf else "", " " + a.hf if a.hf else "",
               a.layers, a.dim, a.heads, a.kv_heads, a.head_dim, a.experts, a.top_k,
               a.ffn, n_vocab, n_params, a.dtype if a.gguf else "-",
               a.hf_dtype if a.hf else "-", " x%d shards" % a.shards if a.hf and a.shards > 1 else "",
               time.time() - t0))
    print(msg, file=sys.stderr)
    if a.gguf and a.hf and not a.no_check:
        mg, mh = grok_ref.load_gguf(a.gguf), grok_ref.load_hf(a.hf)
        worst = 0.0
        for x, y in [(mg.embd, mh.embd), (mg.out_norm, mh.out_norm)] + [
                (Lg[k], Lh[k]) for Lg, Lh in zip(mg.layers, mh.layers) for k in Lg]:
            worst = max(worst, float(np.abs(x - y).max()))
        print("gguf vs hf weights: %s (max |diff| %.3g)" % (
            "IDENTICAL" if worst == 0 else "DIFFER (lossy %s then %s)" % (a.dtype, a.hf_dtype),
            worst), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
