#!/usr/bin/python3
"""Write a synthetic xAI-format Grok-1 checkpoint (ckpt-0/) of any Grok-architecture size.

The files have exactly the byte structure of xAI's release (/work/shared/CHECKPOINT.md).

  make_grok_checkpoint.py --out DIR [--vocab 1024 --dim 64 --layers 2 --heads 4 \
      --kv-heads 2 --head-dim 16 --experts 8 --top-k 2 --ffn 128 --seed 0] \
      [--attn-out-blocks B_o] [--down-blocks B_down] \
      [--hf-rounded DIR2] [--hf-exact DIR3] [--self-check]
  make_grok_checkpoint.py --self-check            (byte-structure checks only)

Writes DIR/ckpt-0/tensor{i:05d}_000 (i = 0 .. 2+12*layers-1) and DIR/grok-config.json
(the hyperparameters the engine needs). --hf-rounded / --hf-exact also write the same
model as Hugging Face folders in the grok-1-hf naming of make_random_grok.py
(config.json + model.safetensors, f32, torch layout [out, in]) holding the
dequantised weights: rounded = bf16(int8 * scale) (round to nearest even, the
reference's function), exact = float32(int8 * scale) (the int8-kernel function);
both are read back from the written ckpt-0 files.

Each file is what CPython's pickle.dump(obj, f, protocol=4) writes for the released
object (numpy 1.x names: numpy.core.multiarray._reconstruct, ml_dtypes.bfloat16,
__main__.QuantizedWeight8bit), emitted opcode by opcode here (no pickling of numpy
arrays, no ml_dtypes needed): PROTO 4, frames of up to 64 KiB as C pickle's framer
cuts them, payloads >= 64 KiB outside frames, MEMOIZE/BINGET as pickle's memo does,
bytes as SHORT_BINBYTES/BINBYTES/BINBYTES8 by size (every Grok-1 payload is BINBYTES;
tiny models get SHORT_BINBYTES for payloads < 256 bytes, as pickle would write).
--self-check proves it: byte-for-byte equality with pickle.dump of stand-in object
graphs over shapes that exercise every framing/opcode case, the file sizes and the
norm's payload offset for full Grok-1 shapes against CHECKPOINT.md (computed without
writing), and, with --out, a reload of every written file by pickle's own Unpickler
(stand-in classes) compared with the shapes, the payloads and the HF folders.

Weights (deterministic from --seed and the shapes): int8 uniform in [-127, 127],
bf16 scales > 0 per output column (and input block) sized so that the dequantised
weight has the std make_random_grok.py uses (q/k 1.7/sqrt(D), v 1/sqrt(D), o
1/sqrt(heads*hd), gate 1.2/sqrt(D), up 1/sqrt(D), down 1/sqrt(ffn); router f32
1.2/sqrt(D); embedding f32 0.5/embed_scale; norms 1 +- 0.1, post-block norms
1.5 +- 0.15, final norm sized for logit std ~4).
"""
import argparse
import io
import json
import math
import os
import pickle
import queue
import struct
import sys
import threading
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_random_grok as MRG  # noqa: E402  (HF config, bf16 rounding, HF tensor order)

FRAME_TARGET = 64 * 1024          # pickle's _FRAME_SIZE_TARGET
FRAME_MIN = 4                     # C pickle: frames shorter than this get no header
CHUNK_BYTES = 32 << 20            # generation chunk (fixed: the output depends on it)
INT8_STD = 73.6                   # std of int8 uniform on [-127, 127]

EMBED_SCALE = 78.38367176906169
LOGIT_SCALE = 0.5773502691896257

# pickle opcodes (protocol <= 4)
PROTO, FRAME, STOP = b"\x80", b"\x95", b"."
MARK, TUPLE, TUPLE1, TUPLE2, TUPLE3, EMPTY_TUPLE = b"(", b"t", b"\x85", b"\x86", b"\x87", b")"
SHORT_BINUNICODE, BINUNICODE = b"\x8c", b"X"
SHORT_BINBYTES, BINBYTES, BINBYTES8 = b"C", b"B", b"\x8e"
BININT1, BININT2, BININT = b"K", b"M", b"J"
NEWTRUE, NEWFALSE, NONE = b"\x88", b"\x89", b"N"
MEMOIZE, BINGET, LONG_BINGET = b"\x94", b"h", b"j"
STACK_GLOBAL, REDUCE, NEWOBJ, BUILD = b"\x93", b"R", b"\x81", b"b"
EMPTY_DICT, SETITEM, SETITEMS = b"}", b"s", b"u"

# per-layer parameters in string-sorted order, j = 0..11
LAYER_PARAMS = ["moe/linear", "moe/linear_1", "moe/linear_v", "multi_head_attention/key",
                "multi_head_attention/linear", "multi_head_attention/query",
                "multi_head_attention/value", "rms_norm", "rms_norm_1", "rms_norm_2",
                "rms_norm_3", "router"]


# ----------------------------------------------------------------------------
# opcode emitter (mirrors CPython's C Pickler, protocol 4, dump() to a file)
# ----------------------------------------------------------------------------

class Payload:
    """Raw array bytes, produced in chunks. chunks(): iterable of bytes-like."""

    def __init__(self, nbytes, chunks=None, data=None):
        self.nbytes = nbytes
        self._chunks = chunks
        self.data = data

    def chunks(self):
        if self.data is not None:
            return [self.data]
        if self._chunks is None:              # size-only emission
            return [bytes(self.nbytes)]
        return self._chunks()

    def as_bytes(self):
        b = b"".join(bytes(memoryview(c).cast("B")) for c in self.chunks())
        assert len(b) == self.nbytes, (len(b), self.nbytes)
        return b


class CountSink:
    """Counts bytes; never materialises large payloads."""

    def __init__(self):
        self.n = 0

    def write(self, b):
        self.n += len(b)

    def write_payload(self, p):
        self.n += p.nbytes


class BytesSink(CountSink):
    def __init__(self):
        super().__init__()
        self.buf = io.BytesIO()

    def write(self, b):
        self.n += len(b)
        self.buf.write(b)

    def write_payload(self, p):
        for c in p.chunks():
            self.write(bytes(memoryview(c).cast("B")))


class FileSink(CountSink):
    """Writes through a background thread so that generation and disk I/O overlap
    (numpy's generators and file writes release the GIL)."""

    def __init__(self, path):
        super().__init__()
        self.f = open(path, "wb")
        self.q = queue.Queue(maxsize=4)
        self.err = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            if self.err is None:
                try:
                    self.f.write(item)
                except BaseException as e:  # noqa: BLE001
                    self.err = e

    def write(self, b):
        self.n += len(b)
        self.q.put(bytes(b))

    def write_payload(self, p):
        got = 0
        for c in p.chunks():
            m = memoryview(c).cast("B")
            got += len(m)
            self.q.put(m)
        assert got == p.nbytes, (got, p.nbytes)
        self.n += got

    def close(self):
        self.q.put(None)
        self.t.join()
        self.f.close()
        if self.err is not None:
            raise self.err


class Emitter:
    """Writes the opcode stream pickle.dump(obj, f, protocol=4) writes for the object
    graphs of the checkpoint. Every save_* starts with the framer's boundary check
    (a frame of >= 64 KiB is committed before the next object is saved); bytes
    payloads of >= 64 KiB commit the frame and go, header included, outside frames."""

    def __init__(self, sink):
        self.sink = sink
        self.pos = 0
        self.framing = False
        self.frame = None            # bytearray of the open frame
        self.frame_payloads = []     # (offset in frame, tag) of payloads in the open frame
        self.memo = {}
        self.n_memo = 0
        self.payloads = []           # (tag, file offset, nbytes)

    # -- framer
    def _raw(self, b):
        self.sink.write(b)
        self.pos += len(b)

    def write(self, b):
        if not self.framing:
            self._raw(b)
            return
        if self.frame is None:
            self.frame = bytearray()
        self.frame += b

    def commit(self):
        if self.frame is None:
            return
        n = len(self.frame)
        if n >= FRAME_MIN:
            self._raw(FRAME + struct.pack("<Q", n))
        body = self.pos
        self._raw(bytes(self.frame))
        for off, tag, nb in self.frame_payloads:
            self.payloads.append((tag, body + off, nb))
        self.frame, self.frame_payloads = None, []

    def boundary(self):
        if self.framing and self.frame is not None and len(self.frame) >= FRAME_TARGET:
            self.commit()

    # -- memo
    def memoize(self, key=None):
        self.write(MEMOIZE)
        if key is not None:
            self.memo[key] = self.n_memo
        self.n_memo += 1

    def get(self, key):
        if key is None or key not in self.memo:
            return False
        i = self.memo[key]
        self.write(BINGET + struct.pack("<B", i) if i < 256 else LONG_BINGET + struct.pack("<I", i))
        return True

    # -- atoms
    def save_int(self, v):
        self.boundary()
        if 0 <= v <= 0xff:
            self.write(BININT1 + struct.pack("<B", v))
        elif 0 <= v <= 0xffff:
            self.write(BININT2 + struct.pack("<H", v))
        elif -0x80000000 <= v <= 0x7fffffff:
            self.write(BININT + struct.pack("<i", v))
        else:
            raise ValueError("int %d out of BININT range" % v)

    def save_bool(self, v):
        self.boundary()
        self.write(NEWTRUE if v else NEWFALSE)

    def save_none(self):
        self.boundary()
        self.write(NONE)

    def save_str(self, s, shared=True):
        """shared: the same str object recurs (module/attribute names, 1-char
        strings) and is memo-hit; False: a fresh object each time."""
        self.boundary()
        key = ("str", s) if shared else None
        if self.get(key):
            return
        b = s.encode("utf-8")
        if len(b) < 256:
            self.write(SHORT_BINUNICODE + struct.pack("<B", len(b)) + b)
        else:
            self.write(BINUNICODE + struct.pack("<I", len(b)) + b)
        self.memoize(key)

    def save_bytes(self, p, tag=None, key=None):
        self.boundary()
        if self.get(key):
            return
        n = p.nbytes
        if n < 256:
            head = SHORT_BINBYTES + struct.pack("<B", n)
        elif n <= 0xffffffff:
            head = BINBYTES + struct.pack("<I", n)
        else:
            head = BINBYTES8 + struct.pack("<Q", n)
        if self.framing and n >= FRAME_TARGET:
            self.commit()
            self._raw(head)
            if tag is not None:
                self.payloads.append((tag, self.pos, n))
            self.sink.write_payload(p)
            self.pos += n
        else:
            self.write(head)
            if tag is None:
                pass
            elif self.framing:
                self.frame_payloads.append((len(self.frame), tag, n))
            else:
                self.payloads.append((tag, self.pos, n))
            self.write(p.as_bytes())
        self.memoize(key)

    def save_tuple(self, items):
        """items: list of thunks saving the elements (a fresh tuple object)."""
        self.boundary()
        n = len(items)
        if n == 0:
            self.write(EMPTY_TUPLE)
            return
        if n <= 3:
            for f in items:
                f()
            self.write((TUPLE1, TUPLE2, TUPLE3)[n - 1])
        else:
            self.write(MARK)
            for f in items:
                f()
            self.write(TUPLE)
        self.memoize()

    def save_global(self, module, name):
        self.boundary()
        key = ("global", module, name)
        if self.get(key):
            return
        self.save_str(module)
        self.save_str(name)
        self.write(STACK_GLOBAL)
        self.memoize(key)

    # -- numpy objects (numpy 1.x reductions)
    def save_dtype(self, kind):
        """kind: 'f4', 'i1' or 'bf16'. numpy.dtype(<name or class>, False, True) +
        BUILD (3, endian, None, None, None, elsize, alignment, flags)."""
        self.boundary()
        key = ("dtype", kind)
        if self.get(key):
            return
        self.save_global("numpy", "dtype")
        if kind == "bf16":
            first = lambda: self.save_global("ml_dtypes", "bfloat16")  # noqa: E731
            state = ("<", 2, 2, 80)
        else:
            first = lambda: self.save_str(kind, shared=False)  # noqa: E731
            state = ("<" if kind == "f4" else "|", -1, -1, 0)
        self.save_tuple([first, lambda: self.save_bool(False), lambda: self.save_bool(True)])
        self.write(REDUCE)
        self.memoize(key)
        endian, elsize, align, flags = state
        self.save_tuple([lambda: self.save_int(3), lambda: self.save_str(endian),
                         self.save_none, self.save_none, self.save_none,
                         lambda: self.save_int(elsize), lambda: self.save_int(align),
                         lambda: self.save_int(flags)])
        self.write(BUILD)

    def save_array(self, shape, kind, payload, tag=None):
        """_reconstruct(ndarray, (0,), b'b') + BUILD (1, shape, dtype, False, raw)."""
        self.boundary()
        self.save_global("numpy.core.multiarray", "_reconstruct")
        self.save_tuple([lambda: self.save_global("numpy", "ndarray"),
                         lambda: self.save_tuple([lambda: self.save_int(0)]),
                         lambda: self.save_bytes(Payload(1, data=b"b"), key=("bytes", b"b"))])
        self.write(REDUCE)
        self.memoize()
        self.save_tuple([lambda: self.save_int(1),
                         lambda: self.save_tuple([(lambda d: lambda: self.save_int(d))(d)
                                                  for d in shape]),
                         lambda: self.save_dtype(kind),
                         lambda: self.save_bool(False),
                         lambda: self.save_bytes(payload, tag=tag)])
        self.write(BUILD)

    def save_qw8(self, wshape, wpay, sshape, spay):
        """QuantizedWeight8bit: NEWOBJ + BUILD {'weight': int8, 'scales': bf16}."""
        self.boundary()
        self.save_global("__main__", "QuantizedWeight8bit")
        self.save_tuple([])
        self.write(NEWOBJ)
        self.memoize()
        self.boundary()                      # save(state dict)
        self.write(EMPTY_DICT)
        self.memoize()
        self.write(MARK)
        self.save_str("weight")
        self.save_array(wshape, "i1", wpay, tag="weight")
        self.save_str("scales")
        self.save_array(sshape, "bf16", spay, tag="scales")
        self.write(SETITEMS)
        self.write(BUILD)

    # -- whole file
    def begin(self):
        self.write(PROTO + b"\x04")
        self.framing = True

    def end(self):
        self.write(STOP)
        self.commit()


def emit_array_file(sink, shape, payload):
    e = Emitter(sink)
    e.begin()
    e.save_array(shape, "f4", payload, tag="array")
    e.end()
    return e


def emit_qw8_file(sink, wshape, wpay, sshape, spay):
    e = Emitter(sink)
    e.begin()
    e.save_qw8(wshape, wpay, sshape, spay)
    e.end()
    return e


# ----------------------------------------------------------------------------
# model description
# ----------------------------------------------------------------------------

def layer_order(n_layers):
    """Layer numbers in the order of their files (names sorted as strings)."""
    return [int(s[len("decoder_layer_"):]) for s in
            sorted("decoder_layer_%d" % n for n in range(n_layers))]


def param_specs(c):
    """Per-layer j -> (kind, shapes, target std / norm mean), c = config namespace."""
    D, F, E = c.dim, c.ffn, c.experts
    Q, KV = c.heads * c.head_dim, c.kv_heads * c.head_dim
    sD = math.sqrt(D)
    return [
        ("q", (E, D, F), (E, 1, F), 1.2 / sD),                      # moe/linear (gelu)
        ("q", (E, F, D), (E, c.down_blocks, D), 1.0 / math.sqrt(F)),  # moe/linear_1 (down)
        ("q", (E, D, F), (E, 1, F), 1.0 / sD),                      # moe/linear_v
        ("q", (D, KV), (1, KV), 1.7 / sD),                          # key
        ("q", (Q, D), (c.attn_out_blocks, D), 1.0 / math.sqrt(Q)),  # linear (attn out)
        ("q", (D, Q), (1, Q), 1.7 / sD),                            # query
        ("q", (D, KV), (1, KV), 1.0 / sD),                          # value
        ("norm", (D,), None, 1.0),                                  # rms_norm
        ("norm", (D,), None, 1.5),                                  # rms_norm_1
        ("norm", (D,), None, 1.0),                                  # rms_norm_2
        ("norm", (D,), None, 1.5),                                  # rms_norm_3
        ("f32", (D, E), None, 1.2 / sD),                            # router
    ]


def emb_std(c):
    return 0.5 / c.embed_scale


def final_norm_mean(c):
    return 4.0 / (c.logit_scale * emb_std(c) * math.sqrt(c.dim))


def _rng(c, *tag):
    return np.random.default_rng([c.seed] + [int(t) for t in tag])


def f32_normal_payload(c, shape, std, mean, tag):
    """f32 normal(mean, std), generated in row chunks."""
    n = int(np.prod(shape))
    cols = shape[-1]
    rows = n // cols

    def chunks():
        rng = _rng(c, *tag)
        step = max(1, CHUNK_BYTES // 4 // cols)
        for r0 in range(0, rows, step):
            a = rng.standard_normal(size=(min(step, rows - r0), cols), dtype=np.float32)
            a *= np.float32(std)
            if mean:
                a += np.float32(mean)
            yield a.astype("<f4", copy=False)
    return Payload(n * 4, chunks)


def int8_payload(c, shape, tag):
    """int8 uniform on [-127, 127] (a uniform byte, -128 folded to -127)."""
    n = int(np.prod(shape))
    cols = shape[-1]
    rows = n // cols

    def chunks():
        rng = _rng(c, *tag)
        step = max(1, CHUNK_BYTES // cols)
        for r0 in range(0, rows, step):
            a = rng.integers(0, 256, size=(min(step, rows - r0), cols), dtype=np.uint8)
            a = a.view(np.int8)
            np.maximum(a, -127, out=a)
            yield a
    return Payload(n, chunks)


def scales_bits(c, sshape, std, tag):
    """bf16 bits (uint16) of positive scales: std/INT8_STD * lognormal(0, 0.1)."""
    rng = _rng(c, *tag)
    s = np.float32(std / INT8_STD) * np.exp(
        np.float32(0.1) * rng.standard_normal(size=sshape, dtype=np.float32))
    return MRG.to_bf16_bits(s.astype(np.float32)).reshape(sshape)


def write_file(path, c, i):
    """Write tensor file i. Returns the Emitter (payload offsets)."""
    sink = FileSink(path)
    try:
        if i == 0:
            shape = (c.vocab, c.dim)
            e = emit_array_file(sink, shape, f32_normal_payload(c, shape, emb_std(c), 0.0,
                                                                (1, 0, 0)))
        elif i == 1:
            m = final_norm_mean(c)
            e = emit_array_file(sink, (c.dim,), f32_normal_payload(c, (c.dim,), 0.1 * m, m,
                                                                   (2, 0, 0)))
        else:
            k, j = divmod(i - 2, 12)
            n = layer_order(c.layers)[k]
            kind, wshape, sshape, v = param_specs(c)[j]
            tag = (3, n, j)
            if kind == "q":
                sb = scales_bits(c, sshape, v, tag + (1,))
                e = emit_qw8_file(sink, wshape, int8_payload(c, wshape, tag + (0,)), sshape,
                                  Payload(sb.size * 2, data=sb.astype("<u2").tobytes()))
            elif kind == "norm":
                e = emit_array_file(sink, wshape, f32_normal_payload(c, wshape, 0.1 * v, v, tag))
            else:
                e = emit_array_file(sink, wshape, f32_normal_payload(c, wshape, v, 0.0, tag))
    finally:
        sink.close()
    return e


def grok_config(c):
    return {
        "vocab_size": c.vocab, "dim": c.dim, "n_layers": c.layers, "n_heads": c.heads,
        "n_kv_heads": c.kv_heads, "head_dim": c.head_dim, "n_experts": c.experts,
        "n_experts_used": c.top_k, "ffn_dim": c.ffn, "rope_base": c.rope_base,
        "rms_eps": c.rms_eps, "attn_scale": c.attn_scale, "attn_cap": c.attn_cap,
        "embed_scale": c.embed_scale, "logit_scale": c.logit_scale,
    }


def _write_text(path, text):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------
# reading back (from the recorded payload offsets) and HF folders
# ----------------------------------------------------------------------------

class CkptView:
    """Arrays of the written files, mapped from the payload offsets the emitter recorded."""

    def __init__(self, ckdir, c, offsets):
        self.ckdir, self.c, self.offsets = ckdir, c, offsets

    def _map(self, i, tag, dtype, shape):
        for t, off, nb in self.offsets[i]:
            if t == tag:
                a = np.memmap(os.path.join(self.ckdir, "tensor%05d_000" % i), dtype=dtype,
                              mode="r", offset=off, shape=tuple(shape))
                assert a.nbytes == nb
                return a
        raise KeyError((i, tag))

    def array(self, i, shape):
        return self._map(i, "array", "<f4", shape)

    def qw8(self, i, wshape, sshape):
        return self._map(i, "weight", np.int8, wshape), self._map(i, "scales", "<u2", sshape)


def dequant(w, sbits, mode):
    """w int8 [..., in, out], sbits bf16 bits [..., B, out] -> f32 [..., in, out]."""
    s = (sbits.astype(np.uint32) << 16).view(np.float32)
    B, n_in = s.shape[-2], w.shape[-2]
    wf = w.astype(np.float32).reshape(w.shape[:-2] + (B, n_in // B, w.shape[-1]))
    wf *= s[..., :, None, :]             # exact: 8-bit x 8-bit significands
    wf = wf.reshape(w.shape)
    if mode == "rounded":
        wf = MRG.round_bf16(wf).reshape(w.shape)
    return wf


def hf_tensors(c, view):
    """Yields (hf name, shape, thunk -> f32 array [out, in]) in no particular order."""
    yield ("transformer.in_out_embed.weight", (c.vocab, c.dim),
           lambda mode: np.asarray(view.array(0, (c.vocab, c.dim))))
    yield ("transformer.rms_norm.weight", (c.dim,), lambda mode: np.asarray(view.array(1, (c.dim,))))
    specs = param_specs(c)
    hf_sub = ["moe.%d.linear", "moe.%d.linear_1", "moe.%d.linear_v",
              "multi_head_attention.key", "multi_head_attention.linear",
              "multi_head_attention.query", "multi_head_attention.value",
              "rms_norm", "rms_norm_1", "rms_norm_2", "rms_norm_3", "router"]
    for k, n in enumerate(layer_order(c.layers)):
        p = "transformer.decoder_layer.%d." % n
        for j, (kind, wshape, sshape, _) in enumerate(specs):
            i = 2 + 12 * k + j
            if kind == "q" and len(wshape) == 3:
                for e in range(c.experts):
                    def th(mode, i=i, e=e, wshape=wshape, sshape=sshape):
                        w, s = view.qw8(i, wshape, sshape)
                        return np.ascontiguousarray(dequant(w[e], s[e], mode).T)
                    yield (p + hf_sub[j] % e + ".weight", (wshape[2], wshape[1]), th)
            elif kind == "q":
                def th(mode, i=i, wshape=wshape, sshape=sshape):
                    w, s = view.qw8(i, wshape, sshape)
                    return np.ascontiguousarray(dequant(w, s, mode).T)
                yield (p + hf_sub[j] + ".weight", (wshape[1], wshape[0]), th)
            elif kind == "norm":
                yield (p + hf_sub[j] + ".weight", wshape,
                       lambda mode, i=i, wshape=wshape: np.asarray(view.array(i, wshape)))
            else:
                yield (p + hf_sub[j] + ".weight", (wshape[1], wshape[0]),
                       lambda mode, i=i, wshape=wshape:
                       np.ascontiguousarray(np.asarray(view.array(i, wshape)).T))


def hf_namespace(c):
    return argparse.Namespace(
        dim=c.dim, ffn=c.ffn, layers=c.layers, heads=c.heads, kv_heads=c.kv_heads,
        head_dim=c.head_dim, experts=c.experts, top_k=c.top_k, attn_scale=c.attn_scale,
        emb_scale=c.embed_scale, out_scale=c.logit_scale, attn_cap=c.attn_cap,
        ctx=c.ctx, eps=c.rms_eps, rope_base=c.rope_base)


def write_hf_folder(outdir, c, view, mode):
    """config.json + tokenizer_config.json + model.safetensors (F32), tensors in the
    grok-1-hf order of make_random_grok.py, streamed one tensor at a time."""
    os.makedirs(outdir, exist_ok=True)
    ns = hf_namespace(c)
    _write_text(os.path.join(outdir, "config.json"),
                json.dumps(MRG.hf_config(ns, c.vocab, "f32"), indent=2))
    _write_text(os.path.join(outdir, "tokenizer_config.json"), json.dumps({
        "add_bos_token": False, "add_eos_token": False,
        "model_max_length": c.ctx, "tokenizer_class": "LlamaTokenizer"}, indent=2))
    for fn in os.listdir(outdir):
        if fn == "model.safetensors.index.json" or (
                fn.startswith("model") and fn.endswith(".safetensors")):
            os.remove(os.path.join(outdir, fn))
    items = sorted(hf_tensors(c, view), key=lambda it: MRG.hf_sort_key(it[0]))
    hdr = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, shape, _ in items:
        nb = int(np.prod(shape)) * 4
        hdr[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    path = os.path.join(outdir, "model.safetensors")
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for name, shape, th in items:
            a = th(mode)
            assert a.shape == tuple(shape) and a.dtype == np.float32, (name, a.shape, shape)
            f.write(memoryview(np.ascontiguousarray(a, dtype="<f4")).cast("B"))
    os.replace(tmp, path)
    return 8 + len(h) + off


# ----------------------------------------------------------------------------
# --self-check
# ----------------------------------------------------------------------------

def _standins():
    """Fake modules/classes whose pickling is exactly numpy 1.x / ml_dtypes /
    __main__.QuantizedWeight8bit's: returns (modules dict, ndarray factory, qw8 factory)."""
    mods = {n: types.ModuleType(n) for n in
            ("numpy", "numpy.core", "numpy.core.multiarray", "ml_dtypes")}
    mods["numpy"].core = mods["numpy.core"]
    mods["numpy.core"].multiarray = mods["numpy.core.multiarray"]

    def _reconstruct(*a):
        raise AssertionError
    _reconstruct.__module__ = "numpy.core.multiarray"
    _reconstruct.__qualname__ = _reconstruct.__name__ = "_reconstruct"
    mods["numpy.core.multiarray"]._reconstruct = _reconstruct

    ndarray = type("ndarray", (), {"__module__": "numpy"})
    dtype = type("dtype", (), {"__module__": "numpy"})
    bfloat16 = type("bfloat16", (), {"__module__": "ml_dtypes"})
    mods["numpy"].ndarray, mods["numpy"].dtype = ndarray, dtype
    mods["ml_dtypes"].bfloat16 = bfloat16
    b_b = bytes([ord("b")])            # CPython caches 1-byte bytes: one object, as numpy's

    class FakeDtype:
        def __init__(self, kind):
            self.kind = kind

        def __reduce__(self):
            if self.kind == "bf16":
                return (dtype, (bfloat16, False, True), (3, "<", None, None, None, 2, 2, 80))
            name = "".join([self.kind[0], self.kind[1:]])     # a fresh str, as numpy's
            endian = "<" if self.kind == "f4" else "|"
            return (dtype, (name, False, True), (3, endian, None, None, None, -1, -1, 0))

    class FakeArray:
        def __init__(self, shape, kind, raw):
            self.shape, self.dt, self.raw = tuple(shape), FakeDtype(kind), raw

        def __reduce__(self):
            return (_reconstruct, (ndarray, tuple([0]), b_b),
                    (1, tuple(list(self.shape)), self.dt, False, self.raw))

    class QuantizedWeight8bit:
        def __init__(self, weight, scales):
            self.weight = weight
            self.scales = scales
    QuantizedWeight8bit.__module__ = "__main__"
    QuantizedWeight8bit.__qualname__ = "QuantizedWeight8bit"
    return mods, FakeArray, QuantizedWeight8bit


def _pickle_dump_standins(objs_fn):
    """Runs pickle.dump(obj, BytesIO, protocol=4) for each object objs_fn() builds,
    with the stand-in modules in sys.modules (real ones restored afterwards)."""
    mods, FakeArray, QW8 = _standins()
    main = sys.modules["__main__"]
    saved = {n: sys.modules.get(n) for n in mods}
    had_qw8 = hasattr(main, "QuantizedWeight8bit")
    old_qw8 = getattr(main, "QuantizedWeight8bit", None)
    out = []
    objs = objs_fn(FakeArray, QW8)
    try:
        sys.modules.update(mods)
        main.QuantizedWeight8bit = QW8
        for o in objs:
            bio = io.BytesIO()
            pickle.dump(o, bio, protocol=4)
            out.append(bio.getvalue())
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
        if had_qw8:
            main.QuantizedWeight8bit = old_qw8
        else:
            del main.QuantizedWeight8bit
    return out


def _opcode_names(data):
    import pickletools
    return sorted({op.name for op, _, _ in pickletools.genops(data)})


def check_against_pickle():
    """Byte equality of the emitter with pickle.dump over shapes covering: payloads
    < 256 (SHORT_BINBYTES), < 64 KiB in frames, exactly 64 KiB, > 64 KiB outside frames,
    a frame that crosses 64 KiB mid-object (committed before 'scales'), one that
    crosses it at the end, 1..3-d shapes and dims needing BININT1/BININT2/BININT."""
    rng = np.random.default_rng(12345)
    plain = [(7,), (64,), (6144,), (16383,), (16384,), (100, 200), (64, 8), (3, 5),
             (70000, 1), (2, 3, 4)]
    qcases = [((2, 8, 16), (2, 1, 16)), ((2, 64, 128), (2, 1, 128)),
              ((4, 128, 128), (4, 4, 128)), ((1, 250, 250), (1, 1, 250)),
              ((1, 256, 256), (1, 1, 256)), ((1, 255, 257), (1, 1, 257)),
              ((8, 512, 64), (8, 8, 64)), ((1, 300, 300), (1, 4, 300)),
              ((2, 64, 32768), (2, 1, 32768)), ((96, 16), (2, 16)), ((16, 8), (1, 8)),
              ((300, 220), (1, 220)), ((40, 400), (8, 400)), ((130, 120), (1, 120)),
              ((1, 16000, 2), (1, 4, 2))]
    cases = []
    for shape in plain:
        raw = rng.standard_normal(int(np.prod(shape))).astype("<f4").tobytes()
        cases.append(("f32 %s" % (shape,), ("a", shape, raw)))
    for ws, ss in qcases:
        w = rng.integers(-127, 128, size=int(np.prod(ws))).astype(np.int8).tobytes()
        s = rng.integers(0, 1 << 16, size=int(np.prod(ss))).astype("<u2").tobytes()
        cases.append(("qw8 %s %s" % (ws, ss), ("q", ws, w, ss, s)))

    def build(FakeArray, QW8):
        objs = []
        for _, spec in cases:
            if spec[0] == "a":
                objs.append(FakeArray(spec[1], "f4", spec[2]))
            else:
                objs.append(QW8(FakeArray(spec[1], "i1", spec[2]),
                                FakeArray(spec[3], "bf16", spec[4])))
        return objs
    ref = _pickle_dump_standins(build)
    ok = True
    opnames = set()
    for (label, spec), want in zip(cases, ref):
        sink = BytesSink()
        if spec[0] == "a":
            emit_array_file(sink, spec[1], Payload(len(spec[2]), data=spec[2]))
        else:
            emit_qw8_file(sink, spec[1], Payload(len(spec[2]), data=spec[2]), spec[3],
                          Payload(len(spec[4]), data=spec[4]))
        got = sink.buf.getvalue()
        same = got == want
        ok &= same
        opnames.update(_opcode_names(want))
        print("  %-5s %-38s %9d bytes  %s" % ("ok" if same else "DIFF", label, len(want),
                                             "" if same else "(got %d bytes)" % len(got)))
    print("  opcodes in pickle's output: %s" % " ".join(sorted(opnames)))
    if np.lib.NumpyVersion(np.__version__) < "2.0.0":
        # the stand-ins against the real thing where numpy still writes numpy.core
        for shape in plain:
            a = np.frombuffer(rng.standard_normal(int(np.prod(shape))).astype("<f4").tobytes(),
                              "<f4").reshape(shape)
            bio = io.BytesIO()
            pickle.dump(a, bio, protocol=4)
            sink = BytesSink()
            emit_array_file(sink, shape, Payload(a.nbytes, data=a.tobytes()))
            same = sink.buf.getvalue() == bio.getvalue()
            ok &= same
            print("  %-5s real numpy %s f32 %-22s %9d bytes" % (
                "ok" if same else "DIFF", np.__version__, shape, len(bio.getvalue())))
    return ok


# CHECKPOINT.md's byte counts of the released files
GROK1_SIZES = [("embedding f32 [131072, 6144]", 3221225637),
               ("final rms_norm f32 [6144]", 24727)]
GROK1_LAYER_SIZES = [1611137347, 1611399491, 1611137347, 6293814, 37847359, 37761334,
                     6293814, 24727, 24727, 24727, 24727, 196770]
GROK1_TOTAL = (770, 318239886140)


def grok1_namespace(layers=64):
    return argparse.Namespace(vocab=131072, dim=6144, layers=layers, heads=48, kv_heads=8,
                              head_dim=128, experts=8, top_k=2, ffn=32768, attn_out_blocks=8,
                              down_blocks=8, seed=0, embed_scale=EMBED_SCALE,
                              logit_scale=LOGIT_SCALE)


def file_size(c, i):
    """(bytes, payload offsets) of file i for config c, emitted without payloads."""
    sink = CountSink()
    size_only = lambda n: Payload(n)  # noqa: E731
    if i == 0:
        e = emit_array_file(sink, (c.vocab, c.dim), size_only(c.vocab * c.dim * 4))
    elif i == 1:
        e = emit_array_file(sink, (c.dim,), size_only(c.dim * 4))
    else:
        kind, ws, ss, _ = param_specs(c)[(i - 2) % 12]
        if kind == "q":
            e = emit_qw8_file(sink, ws, size_only(int(np.prod(ws))), ss,
                              size_only(int(np.prod(ss)) * 2))
        else:
            e = emit_array_file(sink, ws, size_only(int(np.prod(ws)) * 4))
    return sink.n, e.payloads


def check_grok1_sizes():
    c = grok1_namespace()
    ok = True
    want = [s for _, s in GROK1_SIZES] + GROK1_LAYER_SIZES
    labels = [l for l, _ in GROK1_SIZES] + ["layer j=%d %s" % (j, p) for j, p in
                                              enumerate(LAYER_PARAMS)]
    for idx, (label, w) in enumerate(zip(labels, want)):
        got, pays = file_size(c, idx)
        ok &= got == w
        print("  %-5s %-40s %15s bytes (CHECKPOINT.md %s)%s" % (
            "ok" if got == w else "DIFF", label, "{:,}".format(got), "{:,}".format(w),
            "  payloads at " + ", ".join("%s@%d" % (t, o) for t, o, _ in pays)))
    _, pays = file_size(c, 1)
    off_ok = pays[0][1] == 146
    ok &= off_ok
    print("  %-5s final norm's payload at byte %d (CHECKPOINT.md: 146)" % (
        "ok" if off_ok else "DIFF", pays[0][1]))
    n_files = 2 + 12 * c.layers
    total = file_size(c, 0)[0] + file_size(c, 1)[0] + c.layers * sum(
        file_size(c, 2 + j)[0] for j in range(12))
    t_ok = (n_files, total) == GROK1_TOTAL
    ok &= t_ok
    print("  %-5s 64 layers: %d files, %s bytes (CHECKPOINT.md: %d files, %s bytes)" % (
        "ok" if t_ok else "DIFF", n_files, "{:,}".format(total), GROK1_TOTAL[0],
        "{:,}".format(GROK1_TOTAL[1])))
    return ok


class _Obj:
    pass


class _CheckUnpickler(pickle.Unpickler):
    """pickle's own Unpickler; globals resolved to inert stand-ins (never numpy):
    the result is nested _Obj with .shape, .dtype ('f4'|'i1'|'bf16'), .raw."""

    def find_class(self, module, name):
        if (module, name) == ("numpy.core.multiarray", "_reconstruct"):
            def rec(cls, shape, typecode):
                assert cls == "ndarray" and shape == (0,) and typecode == b"b"
                a = _Obj()
                a.__setstate__ = lambda st, a=a: _arr_state(a, st)
                return a
            return rec
        if (module, name) == ("numpy", "ndarray"):
            return "ndarray"
        if (module, name) == ("numpy", "dtype"):
            def mk(t, align, copy):
                assert align is False and copy is True
                d = _Obj()
                d.kind = "bf16" if t == "bfloat16" else t
                d.__setstate__ = lambda st, d=d: setattr(d, "state", st)
                return d
            return mk
        if (module, name) == ("ml_dtypes", "bfloat16"):
            return "bfloat16"
        if (module, name) == ("__main__", "QuantizedWeight8bit"):
            return _QW8Check
        raise pickle.UnpicklingError("unexpected global %s.%s" % (module, name))


class _QW8Check:
    pass


def _arr_state(a, st):
    ver, shape, dt, fortran, raw = st
    assert ver == 1 and fortran is False
    a.shape, a.dtype, a.dstate, a.raw = shape, dt.kind, dt.state, raw


def verify_written(c, ckdir, hf_dirs):
    """Reload every file with pickle's Unpickler (stand-ins), check shapes/dtypes
    against CHECKPOINT.md's table for this config, and compare the HF folders with
    the dequantised reloaded weights."""
    import grok_ref
    ok = True
    n_files = 2 + 12 * c.layers
    names = sorted(os.listdir(ckdir))
    want_names = ["tensor%05d_000" % i for i in range(n_files)]
    if names != want_names:
        print("  DIFF  file names: %s" % names[:5])
        return False
    specs = param_specs(c)
    hf = {mode: grok_ref.load_hf(d) for mode, d in hf_dirs.items()}
    order = layer_order(c.layers)
    worst = {mode: 0.0 for mode in hf}
    for i in range(n_files):
        with open(os.path.join(ckdir, want_names[i]), "rb") as f:
            obj = _CheckUnpickler(f).load()
            assert f.read() == b""
        if i < 2:
            want = ("a", (c.vocab, c.dim) if i == 0 else (c.dim,))
        else:
            kind, ws, ss, _ = specs[(i - 2) % 12]
            want = ("q", ws, ss) if kind == "q" else ("a", ws)
        if want[0] == "a":
            good = (isinstance(obj, _Obj) and obj.shape == want[1] and obj.dtype == "f4"
                    and obj.dstate == (3, "<", None, None, None, -1, -1, 0))
        else:
            w, s = getattr(obj, "weight", None), getattr(obj, "scales", None)
            good = (isinstance(obj, _QW8Check) and set(vars(obj)) == {"weight", "scales"}
                    and w.shape == want[1] and w.dtype == "i1"
                    and w.dstate == (3, "|", None, None, None, -1, -1, 0)
                    and s.shape == want[2] and s.dtype == "bf16"
                    and s.dstate == (3, "<", None, None, None, 2, 2, 80))
            if good:
                wa = np.frombuffer(w.raw, np.int8).reshape(w.shape)
                good = wa.min() >= -127
        ok &= bool(good)
        if not good:
            print("  DIFF  %s: unexpected structure" % want_names[i])
            continue
        # compare with the HF folders
        for mode, m in hf.items():
            if i == 0:
                d = np.abs(m.embd - np.frombuffer(obj.raw, "<f4").reshape(obj.shape)).max()
            elif i == 1:
                d = np.abs(m.out_norm - np.frombuffer(obj.raw, "<f4")).max()
            else:
                k, j = divmod(i - 2, 12)
                L = m.layers[order[k]]
                key = ["w1", "w2", "wv_e", "wk", "wo", "wq", "wv", "attn_norm", "attn_out_norm",
                       "ffn_norm", "post_norm", "router"][j]
                if want[0] == "q":
                    wa = np.frombuffer(obj.weight.raw, np.int8).reshape(obj.weight.shape)
                    sb = np.frombuffer(obj.scales.raw, "<u2").reshape(obj.scales.shape)
                    ref = dequant(wa, sb, mode)
                    ref = np.swapaxes(ref, -1, -2)
                else:
                    ref = np.frombuffer(obj.raw, "<f4").reshape(obj.shape)
                    if j == 11:
                        ref = ref.T
                d = np.abs(L[key] - ref).max()
            worst[mode] = max(worst[mode], float(d))
    print("  %-5s %d files reloaded by pickle.Unpickler: shapes, dtypes, states as CHECKPOINT.md"
          % ("ok" if ok else "DIFF", n_files))
    for mode in hf:
        good = worst[mode] == 0.0
        ok &= good
        print("  %-5s HF %-7s folder %s == dequantised ckpt (max |diff| %g)" % (
            "ok" if good else "DIFF", mode, hf_dirs[mode], worst[mode]))
    if "rounded" in hf and "exact" in hf:
        d = max(float(np.abs(a[k] - b[k]).max()) for a, b in
                zip(hf["rounded"].layers, hf["exact"].layers) for k in ("wq", "w1", "w2"))
        print("        rounded vs exact weights differ by up to %g (bf16 rounding)" % d)
    return ok


def self_check(c=None, ckdir=None, hf_dirs=None):
    t0 = time.time()
    print("self-check 1: emitter == pickle.dump(obj, file, protocol=4) of stand-in objects")
    ok1 = check_against_pickle()
    print("self-check 2: Grok-1 file sizes (no files written)")
    ok2 = check_grok1_sizes()
    ok3 = True
    if c is not None:
        print("self-check 3: written checkpoint %s" % ckdir)
        ok3 = verify_written(c, ckdir, hf_dirs or {})
    ok = ok1 and ok2 and ok3
    print("self-check %s (%.1fs)" % ("PASS" if ok else "FAIL", time.time() - t0))
    return ok


# ----------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------

def _default_blocks(n_in, want=8):
    if n_in % want == 0:
        return want
    return max(b for b in range(1, want + 1) if n_in % b == 0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output folder: writes OUT/ckpt-0/ and OUT/grok-config.json")
    ap.add_argument("--vocab", type=int, default=1024)
    MRG.add_shape_args(ap)
    ap.add_argument("--attn-out-blocks", type=int, default=None,
                    help="scale blocks of the attention output's input rows (default 8 as "
                         "Grok-1 when it divides heads*head_dim, else its largest divisor <= 8)")
    ap.add_argument("--down-blocks", type=int, default=None,
                    help="scale blocks of the experts' down projection's input rows "
                         "(default 8 when it divides --ffn, else its largest divisor <= 8)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rope-base", type=float, default=10000.0)
    ap.add_argument("--rms-eps", type=float, default=1e-5)
    ap.add_argument("--attn-scale", type=float, default=None, help="default head_dim^-0.5")
    ap.add_argument("--attn-cap", type=float, default=30.0)
    ap.add_argument("--embed-scale", type=float, default=EMBED_SCALE)
    ap.add_argument("--logit-scale", type=float, default=LOGIT_SCALE)
    ap.add_argument("--ctx", type=int, default=8192, help="HF config max_position_embeddings")
    ap.add_argument("--hf-rounded", help="also write an HF folder with bf16(int8*scale) weights")
    ap.add_argument("--hf-exact", help="also write an HF folder with float32(int8*scale) weights")
    ap.add_argument("--self-check", action="store_true",
                    help="check the byte structure against pickle and CHECKPOINT.md; with "
                         "--out also reload and verify what was written")
    c = ap.parse_args(argv)
    if not c.out:
        if c.hf_rounded or c.hf_exact:
            ap.error("--hf-rounded/--hf-exact need --out")
        if not c.self_check:
            ap.error("give --out and/or --self-check")
        return 0 if self_check() else 1
    MRG.check_shape_args(ap, c)
    if c.vocab < 4:
        ap.error("--vocab must be >= 4")
    q_dim = c.heads * c.head_dim
    if c.attn_out_blocks is None:
        c.attn_out_blocks = _default_blocks(q_dim)
    if c.down_blocks is None:
        c.down_blocks = _default_blocks(c.ffn)
    if c.attn_out_blocks < 1 or q_dim % c.attn_out_blocks:
        ap.error("--attn-out-blocks must divide heads*head_dim = %d" % q_dim)
    if c.down_blocks < 1 or c.ffn % c.down_blocks:
        ap.error("--down-blocks must divide --ffn = %d" % c.ffn)
    if c.attn_scale is None:
        c.attn_scale = 1.0 / math.sqrt(c.head_dim)

    t0 = time.time()
    ckdir = os.path.join(c.out, "ckpt-0")
    os.makedirs(ckdir, exist_ok=True)
    n_files = 2 + 12 * c.layers
    for fn in os.listdir(ckdir):                 # stale files of a bigger earlier run
        if fn.startswith("tensor") and fn not in {"tensor%05d_000" % i for i in range(n_files)}:
            os.remove(os.path.join(ckdir, fn))
    offsets = []
    total = 0
    for i in range(n_files):
        path = os.path.join(ckdir, "tensor%05d_000" % i)
        tmp = path + ".tmp%d" % os.getpid()
        e = write_file(tmp, c, i)
        os.replace(tmp, path)
        offsets.append(e.payloads)
        total += e.pos
    _write_text(os.path.join(c.out, "grok-config.json"), json.dumps(grok_config(c), indent=2) + "\n")
    t1 = time.time()
    print("wrote %s: %d files, %s bytes in %.1fs (layers=%d dim=%d heads=%d kv_heads=%d "
          "head_dim=%d experts=%d top_k=%d ffn=%d vocab=%d attn_out_blocks=%d down_blocks=%d "
          "seed=%d)" % (ckdir, n_files, "{:,}".format(total), t1 - t0, c.layers, c.dim, c.heads,
                        c.kv_heads, c.head_dim, c.experts, c.top_k, c.ffn, c.vocab,
                        c.attn_out_blocks, c.down_blocks, c.seed), file=sys.stderr)
    view = CkptView(ckdir, c, offsets)
    hf_dirs = {}
    for mode, d in (("rounded", c.hf_rounded), ("exact", c.hf_exact)):
        if d:
            t2 = time.time()
            nb = write_hf_folder(d, c, view, mode)
            hf_dirs[mode] = d
            print("wrote %s (HF, %s weights): %s bytes in %.1fs" % (
                d, mode, "{:,}".format(nb), time.time() - t2), file=sys.stderr)
    if c.self_check:
        return 0 if self_check(c, ckdir, hf_dirs) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
