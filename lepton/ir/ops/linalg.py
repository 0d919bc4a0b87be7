"""Contractions and windows: batched `matmul` (both inputs at least 2-d, batch dims broadcast),
NCHW `conv2d` (weight (O, C/groups, KH, KW)) and the 2-d pools (PyTorch's conventions; avg
excludes padding from the count). Windows' attributes are pairs (h, w)."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..types import TensorType
from .base import OpDef, broadcast_shapes, same_dtype


def _matmul(types, a):
    x, y = types
    dt = same_dtype(types)
    if x.ndim < 2 or y.ndim < 2:
        raise ValueError(f"matmul needs inputs of at least 2 dims, got {x} and {y}")
    if x.shape[-1] != y.shape[-2]:
        raise ValueError(f"matmul: contracted dims differ: {x} @ {y}")
    batch = broadcast_shapes(x.shape[:-2], y.shape[:-2])
    return TensorType(dt, batch + (x.shape[-2], y.shape[-1]))


def _matmul_ref(xs, a):
    return np.matmul(*xs)


def _pair(a, name):
    v = a[name]
    if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(i, int) for i in v)):
        raise ValueError(f"{name} must be a pair of ints, got {v!r}")
    return v


def window_out(n: int, k: int, stride: int, pad: int, dil: int = 1) -> int:
    return (n + 2 * pad - dil * (k - 1) - 1) // stride + 1


def _conv2d(types, a):
    x, w = types
    dt = same_dtype(types)
    if not dt.is_float:
        raise TypeError(f"conv2d needs float inputs, got {x}")
    (sh, sw), (ph, pw), (dh, dw) = (_pair(a, k) for k in ("stride", "padding", "dilation"))
    g = a["groups"]
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d needs x (N,C,H,W) and w (O,C/groups,KH,KW), got {x} and {w}")
    if min(sh, sw, dh, dw, g) < 1 or min(ph, pw) < 0:
        raise ValueError("conv2d: stride, dilation, groups must be >= 1 and padding >= 0")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if c % g or o % g or cg != c // g:
        raise ValueError(f"conv2d: {x} and weight {w} do not match with groups={g}")
    ho, wo = window_out(h, kh, sh, ph, dh), window_out(wd, kw, sw, pw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"conv2d: kernel {kh}x{kw} larger than padded input {x}")
    return TensorType(dt, (n, o, ho, wo))


def _windows(x, k, s, p, d=(1, 1), fill=0.0):
    """(N, C, Ho, Wo, KH, KW) view of the padded input's windows."""
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    ext = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    v = sliding_window_view(x, ext, axis=(2, 3))[:, :, ::s[0], ::s[1], ::d[0], ::d[1]]
    return v


def _conv2d_ref(xs, a):
    x, w = xs
    g = a["groups"]
    v = _windows(x, w.shape[2:], a["stride"], a["padding"], a["dilation"])
    n, c, ho, wo, kh, kw = v.shape
    v = v.reshape(n, g, c // g, ho, wo, kh, kw)
    wg = w.reshape(g, w.shape[0] // g, c // g, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", v, wg, optimize=True)
    return out.reshape(n, w.shape[0], ho, wo).astype(x.dtype)


def _pool(types, a):
    (x,) = types
    (kh, kw), (sh, sw), (ph, pw) = (_pair(a, k) for k in ("kernel", "stride", "padding"))
    if x.ndim != 4:
        raise ValueError(f"pooling needs an (N,C,H,W) input, got {x}")
    if min(kh, kw, sh, sw) < 1 or ph > kh // 2 or pw > kw // 2 or min(ph, pw) < 0:
        raise ValueError("pool: padding must be at most half the kernel, kernel and stride >= 1")
    ho, wo = window_out(x.shape[2], kh, sh, ph), window_out(x.shape[3], kw, sw, pw)
    if ho < 1 or wo < 1:
        raise ValueError(f"pool: kernel {kh}x{kw} larger than padded input {x}")
    return TensorType(x.dtype, x.shape[:2] + (ho, wo))


def _max_pool_ref(xs, a):
    v = _windows(xs[0], a["kernel"], a["stride"], a["padding"], fill=-np.inf)
    return v.max(axis=(4, 5)).astype(xs[0].dtype)


def _avg_pool_ref(xs, a):
    x = xs[0]
    k, s, p = a["kernel"], a["stride"], a["padding"]
    total = _windows(x, k, s, p).sum(axis=(4, 5))
    count = _windows(np.ones((1, 1) + x.shape[2:]), k, s, p).sum(axis=(4, 5))
    return (total / count).astype(x.dtype)


LINALG = [
    OpDef("matmul", "matmul", 2, (), _matmul, _matmul_ref),
    OpDef("conv2d", "conv", 2, ("stride", "padding", "dilation", "groups"), _conv2d, _conv2d_ref),
    OpDef("max_pool2d", "pool", 1, ("kernel", "stride", "padding"), _pool, _max_pool_ref),
    OpDef("avg_pool2d", "pool", 1, ("kernel", "stride", "padding"), _pool, _avg_pool_ref),
]
