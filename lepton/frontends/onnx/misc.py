"""Smaller ONNX ops composed from traced Lepton ops: the window functions (constants of the
graph), CenterCropPad, CumProd, ReverseSequence, LRN, RotaryEmbedding and DFT (matmuls with
the transform's matrices, which NumPy's FFT of the identity gives).

    >>> HannWindow(size=8)            # constant(sin(pi n / 8) ** 2): size is specialised
    >>> CumProd(x, axis)              # prod over i of where(i contributes to j, x_i, 1)
"""
from __future__ import annotations

import numpy as np

from ...ir.types import float64, int64
from .. import ops, shapes
from ..tensor import Tensor, cast, constant, emit
from .indexing import prefix_mask
from .neural import pad_zeros
from .node import ONNX_DTYPES


def window(kind: str):
    def rule(n) -> Tensor:
        size = int(np.asarray(n.const(0)).reshape(-1)[0])
        dt = n.attr("output_datatype", 1)
        if dt not in ONNX_DTYPES:
            n.unsupported(f"output_datatype {dt} is not supported")
        m = size if n.attr("periodic", 1) else size - 1
        k = np.arange(size, dtype=np.float64)
        if kind == "hann":
            w = np.sin(k * np.pi / m) ** 2
        elif kind == "hamming":
            w = 25 / 46 - np.cos(k * np.pi * 2 / m) * (21 / 46)
        else:
            w = 0.42 - 0.5 * np.cos(k * np.pi * 2 / m) + 0.08 * np.cos(k * np.pi * 4 / m)
        return constant(w.astype(ONNX_DTYPES[dt].np))
    return rule


def center_crop_pad(n) -> Tensor:
    x, shape = n.x(0), n.ints(1)
    axes = n.attr("axes")
    axes = range(x.ndim) if axes is None else [shapes.norm_axis(a, x.ndim, n.op_type)
                                               for a in axes]
    key = [slice(None)] * x.ndim
    lo, hi = [0] * x.ndim, [0] * x.ndim
    for a, s in zip(axes, shape):
        d = x.shape[a]
        if s < d:
            key[a] = slice((d - s) // 2, (d - s) // 2 + s)
        elif s > d:
            lo[a], hi[a] = (s - d) // 2, s - d - (s - d) // 2
    return pad_zeros(x[tuple(key)], lo, hi)


def cumprod(n) -> Tensor:
    x = n.x(0)
    axis, tri = prefix_mask(n, x)
    xt = ops.expand_dims(ops.swapaxes(x, axis, -1), -1)             # (.., i, 1)
    terms = ops.where(constant(tri), xt, constant(np.ones((), x.dtype.np)))
    return ops.swapaxes(ops.prod(terms, -2, x.dtype), axis, -1)


def reverse_sequence(n) -> Tensor:
    """out[b, t] = x[b, len[b] - 1 - t] for t < len[b], else x[b, t] (time/batch axes from
    the attributes), as one gather from the flattened (batch, time) plane."""
    x, lens = n.x(0), n.x(1)
    ta, ba = n.attr("time_axis", 0), n.attr("batch_axis", 1)
    xt = ops.transpose(x, [ba, ta] + [a for a in range(x.ndim) if a not in (ba, ta)])
    nb, nt = xt.shape[:2]
    t = constant(np.arange(nt, dtype=np.int64).reshape(1, nt))
    ln = cast(lens, int64).reshape(nb, 1)
    src = ops.where(t < ln, ln - 1 - t, t) + constant(
        (np.arange(nb, dtype=np.int64) * nt).reshape(nb, 1))
    flat = xt.reshape((nb * nt,) + xt.shape[2:])
    y = emit("take", [flat, shapes.checked_index(src, nb * nt, n.op_type)], axis=0)
    inv = np.argsort([ba, ta] + [a for a in range(x.ndim) if a not in (ba, ta)])
    return ops.transpose(y, [int(a) for a in inv])


def lrn(n) -> Tensor:
    """x / (bias + alpha / size * sum of squares over `size` neighbouring channels) ** beta."""
    x = n.x(0)
    size = n.attr("size")
    alpha, beta, bias = n.attr("alpha", 1e-4), n.attr("beta", 0.75), n.attr("bias", 1.0)
    c = x.shape[1]
    lo = (size - 1) // 2
    i, j = np.indices((c, c))
    band = ((j >= i - lo) & (j <= i + size - 1 - lo)).astype(x.dtype.np)   # out i <- in j
    sq = ops.swapaxes(ops.square(x), 1, -1)                              # channels last
    s = ops.swapaxes(ops.matmul(sq, constant(band.T)), 1, -1)
    return x / ops.power(bias + (alpha / size) * s, beta)


def rotary_embedding(n) -> Tensor:
    x, cos, sin, pos = n.x(0), n.x(1), n.x(2), n.opt(3)
    shape = x.shape
    if x.ndim == 4:                       # (B, H, S, D) -> (B, S, H, D)
        x = ops.transpose(x, (0, 2, 1, 3))
    elif x.ndim == 3:
        heads = n.attr("num_heads")
        if not heads:
            n.invalid("3-d input needs num_heads")
        x = x.reshape(shape[0], shape[1], heads, shape[2] // heads)
    d = x.shape[3]
    rd = n.attr("rotary_embedding_dim", 0) or d
    if pos is not None:
        cos = shapes.gather(cos, cast(pos, int64), 0, n.op_type)
        sin = shapes.gather(sin, cast(pos, int64), 0, n.op_type)
    cos, sin = ops.expand_dims(cos, 2), ops.expand_dims(sin, 2)
    rot, keep = x[..., :rd], x[..., rd:]
    half = rd // 2
    if n.attr("interleaved", 0):
        x1, x2 = rot[..., 0::2], rot[..., 1::2]
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    if n.attr("interleaved", 0):
        rot = ops.stack([real, imag], -1).reshape(rot.shape)
    else:
        rot = ops.concatenate([real, imag], -1)
    y = ops.concatenate([rot, keep], -1) if rd < d else rot
    return y.reshape(shape) if len(shape) == 3 else ops.transpose(y, (0, 2, 1, 3))



def dft(n) -> Tensor:
    """DFT (opset 17 and 20): the transform along `axis` is real-linear in the signal's real
    and imaginary parts, so y = A @ re + B @ im with A = F(I) and B = F(i I), F the NumPy FFT
    the reference uses (fft, ifft or irfft with dft_length; onesided keeps N // 2 + 1 bins)."""
    x = n.x(0)
    c = x.shape[-1]
    if c not in (1, 2):
        n.invalid(f"the last axis of {x.type} must be 1 (real) or 2 (complex)")
    if n.opset >= 20:
        a = n.ints(2)
        axis = -2 if a is None else a[0]
    else:
        axis = n.attr("axis", 1)
    axis = shapes.norm_axis(axis, x.ndim, n.op_type)
    if axis == x.ndim - 1:
        n.invalid("axis must not be the last (real/imaginary) axis")
    inverse, onesided = n.attr("inverse", 0), n.attr("onesided", 0)
    length = x.shape[axis]
    size = n.ints(1)
    size = (size[0] if size is not None else
            2 * (length - 1) if inverse and onesided else length)
    if size < 1:
        n.invalid(f"dft_length must be >= 1, got {size}")
    return _dft(x, axis, size, inverse, onesided)


def _dft(x: Tensor, axis: int, size: int, inverse, onesided) -> Tensor:
    """The DFT of x (last axis: real, or real and imaginary) along `axis`."""
    c, length = x.shape[-1], x.shape[axis]
    eye = np.eye(length)

    def f(sig):   # columns: the transform of each unit signal
        if inverse:
            return np.fft.irfft(sig, size, axis=0) if onesided else np.fft.ifft(sig, size, axis=0)
        y = np.fft.fft(sig, size, axis=0)
        return y[:size // 2 + 1] if onesided else y

    mats = [f(eye)] + ([f(1j * eye)] if c == 2 else [])
    real_out = inverse and onesided
    # in float64: an FFT's rounding error is far below a float32 matmul's (exact zeros stay
    # ~1e-16, not ~1e-6)
    parts = [shapes.swapaxes(cast(x[..., k], float64), axis, -1) for k in range(c)]

    def apply(pick):
        y = None
        for p, m in zip(parts, mats):
            t = ops.matmul(p, constant(pick(m).T.astype(np.float64)))
            y = t if y is None else y + t
        return shapes.swapaxes(y, axis, -1)

    outs = [apply(np.real)] + ([] if real_out else [apply(np.imag)])
    return cast(shapes.stack(outs, axis=-1), x.dtype)


def det(n) -> Tensor:
    """Det of [..., m, m]: Gaussian elimination with partial pivoting, unrolled over the m
    columns (row swaps as rank-1 updates, the sign and pivots multiplied into the result)."""
    a = n.x(0)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2] or not a.dtype.is_float:
        n.invalid(f"needs float square matrices [..., m, m], got {a.type}")
    m = a.shape[-1]
    rows = np.arange(m)
    zero = constant(np.zeros((), a.dtype.np))
    d = ops.full(a.shape[:-2], 1.0, a.dtype)
    for k in range(m):
        col = ops.where(constant(rows >= k), ops.abs(a[..., :, k]), constant(
            np.array(-1, a.dtype.np)))
        p = ops.argmax(col, axis=-1)                                     # the pivot row
        at_p = ops.equal(p.reshape(p.shape + (1,)), constant(rows))      # [..., m]
        row_k = a[..., k, :]
        row_p = ops.sum(ops.where(at_p.reshape(at_p.shape + (1,)), a, zero), axis=-2)
        swap = cast(constant(rows == k), a.dtype) - cast(at_p, a.dtype)  # e_k - e_p
        a = a + swap.reshape(swap.shape + (1,)) * (row_p - row_k).reshape(
            row_p.shape[:-1] + (1, m))
        pivot = a[..., k, k]
        d = d * ops.where(ops.equal(p, k), pivot, -pivot)
        safe = ops.where(ops.equal(pivot, 0.0), ops.full(pivot.shape, 1.0, a.dtype), pivot)
        f = ops.where(constant(rows > k), a[..., :, k] / safe.reshape(safe.shape + (1,)), zero)
        a = a - f.reshape(f.shape + (1,)) * a[..., k, :].reshape(a.shape[:-2] + (1, m))
    return d


def stft(n) -> Tensor:
    """STFT: the frames (a constant index map along the signal), times the window, then the
    DFT of each frame (one-sided by default)."""
    x = n.x(0)
    if x.ndim != 3 or x.shape[-1] not in (1, 2):
        n.invalid(f"the signal must be [batch, length, 1 or 2], got {x.type}")
    step = n.ints(1)[0]
    window = n.opt(2)
    length = n.ints(3)
    length = length[0] if length is not None else window.shape[0] if window is not None \
        else n.invalid("needs a window or a frame_length")
    if window is not None and window.shape != (length,):
        n.invalid(f"window {window.type} does not fit frame_length {length}")
    frames = (x.shape[1] - length) // step + 1
    if step < 1 or frames < 1:
        n.invalid(f"frame_step {step} and frame_length {length} do not fit {x.type}")
    idx = (np.arange(frames)[:, None] * step + np.arange(length)[None, :]).reshape(-1)
    f = ops.take(x, constant(idx), axis=1).reshape((x.shape[0], frames, length, x.shape[-1]))
    if window is not None:
        f = f * cast(window, x.dtype).reshape((1, 1, length, 1))
    onesided = n.attr("onesided", 1)
    if onesided and x.shape[-1] == 2:
        n.invalid("onesided needs a real signal")
    return _dft(f, 2, length, 0, onesided)


def tfidf_vectorizer(n) -> Tensor:
    """TfIdfVectorizer over integer tokens: for each n-gram of the pool, the count of its
    occurrences (tokens d = 1 .. max_skip_count + 1 apart; unigrams counted once), by
    comparisons of shifted slices with the pool's constants; then TF, IDF or TFIDF weights,
    placed at ngram_indexes (a one-hot matmul)."""
    x = n.x(0)
    if n.attr("pool_strings") is not None or x.dtype.is_float or x.dtype.name == "bool":
        n.unsupported("only integer tokens (pool_int64s) are supported")
    if x.ndim not in (1, 2):
        n.invalid(f"needs [L] or [B, L] tokens, got {x.type}")
    rows = x.reshape((1, -1)) if x.ndim == 1 else x
    length = rows.shape[1]
    lo, hi = n.attr("min_gram_length"), n.attr("max_gram_length")
    skip = n.attr("max_skip_count", 0)
    pool = np.asarray(n.attr("pool_int64s"), np.int64)
    starts = list(n.attr("ngram_counts")) + [len(pool)]
    index = np.asarray(n.attr("ngram_indexes"), np.int64)
    mode = n.attr("mode")
    weights = n.attr("weights")
    weights = np.ones(len(index)) if weights is None else np.asarray(weights, np.float64)
    size = int(index.max()) + 1 if len(index) else 0
    counts, entry = [], 0       # per n-gram length: [B, P_n] counts
    for g in range(1, len(starts)):
        grams = pool[starts[g - 1]:starts[g]].reshape(-1, g)
        if len(grams) == 0:
            continue
        first, entry = entry, entry + len(grams)
        if not lo <= g <= hi:
            counts.append((first, None, len(grams)))
            continue
        total = None
        for d in ([1] if g == 1 else range(1, skip + 2)):
            width = length - (g - 1) * d
            if width <= 0:
                continue
            hit = None
            for k in range(g):
                part = rows[:, k * d:k * d + width].reshape((rows.shape[0], 1, width))
                eq = ops.equal(part, constant(grams[:, k].reshape(1, -1, 1).astype(
                    x.dtype.np)))
                hit = eq if hit is None else hit & eq
            c = ops.sum(cast(hit, float64), axis=2)
            total = c if total is None else total + c
        counts.append((first, total, len(grams)))
    out = None
    for first, total, k in counts:
        if total is None:
            continue
        if mode == "IDF":
            total = ops.minimum(total, 1.0)
        scale = weights[first:first + k] if mode in ("IDF", "TFIDF") else np.ones(k)
        place = np.zeros((k, size))
        place[np.arange(k), index[first:first + k]] = scale
        y = ops.matmul(total, constant(place))
        out = y if out is None else out + y
    out = ops.full((rows.shape[0], size), 0.0, float64) if out is None else out
    out = cast(out, ONNX_DTYPES[1])
    return out.reshape((size,)) if x.ndim == 1 else out


def mel_weight_matrix(n) -> Tensor:
    """MelWeightMatrix: a constant [dft_length // 2 + 1, num_mel_bins] of triangular filters
    between mel-spaced edges, as the ONNX definition builds them (its inputs are specialised)."""
    bins, dft_len, rate = (int(np.asarray(n.const(i)).reshape(-1)[0]) for i in range(3))
    lo, hi = (float(np.asarray(n.const(i)).reshape(-1)[0]) for i in (3, 4))
    dt = n.attr("output_datatype", 1)
    if dt not in ONNX_DTYPES:
        n.unsupported(f"output_datatype {dt} is not supported")
    if bins < 1 or dft_len < 1 or rate < 1:
        n.invalid("num_mel_bins, dft_length and sample_rate must be positive")
    mel = lambda hz: 2595 * np.log10(1 + hz / 700)      # noqa: E731
    step = (mel(hi) - mel(lo)) / (bins + 2)              # the definition's spacing
    edges = 700 * (10 ** ((np.arange(bins + 2) * step + mel(lo)) / 2595) - 1)
    edges = ((dft_len + 1) * edges // rate).astype(np.int64)
    w = np.zeros((dft_len // 2 + 1, bins))
    for i in range(bins):
        left, mid, right = edges[i:i + 3]
        if mid == left:
            w[mid, i] = 1
        else:
            j = np.arange(left, mid + 1)
            w[j, i] = (j - left) / (mid - left)
        if right > mid:
            j = np.arange(mid, right)
            w[j, i] = (right - j) / (right - mid)
    return constant(w.astype(ONNX_DTYPES[dt].np))
