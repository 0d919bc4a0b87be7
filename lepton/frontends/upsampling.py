"""The ops that grow images, with PyTorch's conventions (NCHW):

    >>> y = conv_transpose2d(x, w, bias, stride=2, padding=1, output_padding=1)
    >>> y = interpolate(x, scale_factor=2)                            # nearest
    >>> y = interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)

`conv_transpose2d` maps to the IR op of that name (conv2d's gradient wrt its input), w of
shape (in, out/groups, kh, kw). `interpolate` is torch.nn.functional.interpolate for 3-, 4- and
5-d inputs: every output index and weight is known at trace time, so nearest modes are a
broadcast-and-reshape (an integer factor) or a `take` of constant indices along each spatial
axis, and linear modes are a matmul with a constant (out, in) interpolation matrix per axis;
their gradients are those ops' gradients. Indices and weights follow PyTorch's CPU kernels
(computed in the input's precision, float32 for f32), so results agree to rounding.
"""
from __future__ import annotations

import math

import numpy as np

from .nn_ops import _pair
from .ops import _float, constant, matmul
from .shapes import broadcast_to, reshape, take, transpose
from .tensor import Tensor, emit, fail, lift, lift_all, result_dtype
from ..ir.types import float32

__all__ = ["conv_transpose2d", "interpolate"]

_LINEAR = {"linear": 3, "bilinear": 4, "trilinear": 5}


def conv_transpose2d(x, w, bias=None, stride=1, padding=0, output_padding=0, groups: int = 1,
                     dilation=1) -> Tensor:
    """Transposed 2-d convolution (PyTorch's conv_transpose2d) of x (N, C, H, W) with w
    (C, O/groups, KH, KW): output (N, O, Ho, Wo), Ho = (H-1)*stride - 2*padding +
    dilation*(KH-1) + output_padding + 1; `bias` (O,) is added per output channel."""
    op = "conv_transpose2d"
    d = result_dtype(x, w)
    x, w = lift_all(x, w, dtype=d if d.is_float else float32)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        fail(op, f"groups must be an int, got {groups!r}", TypeError)
    out = emit(op, [x, w], stride=_pair(stride, "stride", op), padding=_pair(padding, "padding", op),
               output_padding=_pair(output_padding, "output_padding", op),
               dilation=_pair(dilation, "dilation", op), groups=int(groups))
    if bias is not None:
        b = lift(bias)
        if b.shape != (out.shape[1],):
            fail(op, f"bias must have shape ({out.shape[1]},), got {b.type}")
        out = out + b.reshape(1, -1, 1, 1)
    return out


def interpolate(x, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None) -> Tensor:
    """torch.nn.functional.interpolate for x (N, C, *spatial) with 1 to 3 spatial axes; modes
    'nearest', 'nearest-exact', and 'linear' / 'bilinear' / 'trilinear' (for 3-, 4-, 5-d x).
    Exactly one of `size` (int or one int per spatial axis) and `scale_factor` (float or one per
    axis; the output size is floor(in * scale)) is given."""
    op = "interpolate"
    x = _float(x)
    spatial = x.ndim - 2
    if not 1 <= spatial <= 3:
        fail(op, f"needs an input (N, C, *spatial) with 1 to 3 spatial axes, got {x.type}")
    if mode not in ("nearest", "nearest-exact") and mode not in _LINEAR:
        fail(op, f"mode must be 'nearest', 'nearest-exact', 'linear', 'bilinear' or "
                 f"'trilinear', got {mode!r}", NotImplementedError if mode in (
                     "bicubic", "area") else ValueError)
    if mode in _LINEAR and _LINEAR[mode] != x.ndim:
        fail(op, f"mode {mode!r} needs a {_LINEAR[mode]}-d input, got {x.type}")
    if mode not in _LINEAR and align_corners is not None:
        fail(op, "align_corners can only be set with the interpolating modes 'linear', "
                 f"'bilinear' and 'trilinear', not {mode!r}")
    sizes, scales = _sizes(x.shape[2:], size, scale_factor, op)
    if recompute_scale_factor:
        if scale_factor is None:
            fail(op, "recompute_scale_factor needs scale_factor, not size")
        scales = [None] * spatial
    for ax, (n_in, n_out, s) in enumerate(zip(x.shape[2:], sizes, scales), 2):
        if mode in _LINEAR:
            x = map_axis(x, ax, linear_matrix(n_in, n_out, s, bool(align_corners), x.dtype.np))
        else:
            x = gather_axis(x, ax, nearest_index(n_in, n_out, s, mode == "nearest-exact"))
    return x


def _sizes(shape, size, scale_factor, op):
    n = len(shape)
    if (size is None) == (scale_factor is None):
        fail(op, "give exactly one of size and scale_factor")
    if size is not None:
        sizes = [size] * n if isinstance(size, (int, np.integer)) else list(size)
        if len(sizes) != n or not all(isinstance(s, (int, np.integer)) and s > 0 for s in sizes):
            fail(op, f"size must be a positive int or {n} of them, got {size!r}")
        return [int(s) for s in sizes], [None] * n
    scales = [scale_factor] * n if isinstance(scale_factor, (int, float)) else list(scale_factor)
    if len(scales) != n or not all(isinstance(s, (int, float)) and s > 0 for s in scales):
        fail(op, f"scale_factor must be a positive number or {n} of them, got {scale_factor!r}")
    sizes = [int(math.floor(float(d) * s)) for d, s in zip(shape, scales)]
    if min(sizes) < 1:
        fail(op, f"scale_factor {scale_factor!r} leaves an empty output for spatial shape {shape}")
    return sizes, [float(s) for s in scales]


def _ratio(n_in: int, n_out: int, scale, dt):
    """PyTorch's compute_scales_value: 1/scale_factor when one was given, else in/out."""
    return dt.type(1.0 / scale) if scale is not None and scale > 0 else dt.type(n_in) / dt.type(n_out)


def nearest_index(n_in: int, n_out: int, scale, exact: bool) -> np.ndarray:
    """The input index each output index reads (PyTorch's nearest_idx, in float32)."""
    f = np.dtype(np.float32)
    r = _ratio(n_in, n_out, scale, f)
    dst = np.arange(n_out, dtype=f)
    if exact:
        src = np.floor((dst + f.type(0.5)) * r)
    elif n_out == n_in or n_out == 2 * n_in:
        return np.arange(n_out) * n_in // n_out
    else:
        src = np.floor(dst * r)
    return np.minimum(src.astype(np.int64), n_in - 1)


def linear_matrix(n_in: int, n_out: int, scale, align_corners: bool, dtype) -> np.ndarray:
    """The (n_out, n_in) matrix of linear interpolation (PyTorch's
    compute_source_index_and_lambda, computed in float32 for float32, float64 for float64)."""
    dt = np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)
    m = np.zeros((n_out, n_in), dt)
    if n_in == n_out:
        np.fill_diagonal(m, 1)
        return m.astype(dtype)
    dst = np.arange(n_out, dtype=dt)
    if align_corners:
        r = dt.type(n_in - 1) / dt.type(n_out - 1) if n_out > 1 else dt.type(0)
        src = r * dst
    else:
        src = np.maximum(_ratio(n_in, n_out, scale, dt) * (dst + dt.type(0.5)) - dt.type(0.5), 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    lam = np.clip(src - i0.astype(dt), 0, 1).astype(dt)
    i1 = i0 + (i0 < n_in - 1)
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1 - lam)
    np.add.at(m, (rows, i1), lam)
    return m.astype(dtype)


def map_axis(x: Tensor, axis: int, m: np.ndarray) -> Tensor:
    """x with `axis` (size n_in) mapped through the (n_out, n_in) matrix m."""
    if m.shape[0] == m.shape[1] and np.array_equal(m, np.eye(len(m))):
        return x
    mt = constant(np.ascontiguousarray(m.T))
    if axis == x.ndim - 1:
        return matmul(x, mt)
    perm = list(range(x.ndim))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return transpose(matmul(transpose(x, perm), mt), perm)


def gather_axis(x: Tensor, axis: int, idx: np.ndarray) -> Tensor:
    """x indexed by the constant `idx` along `axis`: a broadcast for an integer factor."""
    n = x.shape[axis]
    if len(idx) == n and np.array_equal(idx, np.arange(n)):
        return x
    k = len(idx) // n
    if len(idx) == n * k and np.array_equal(idx, np.arange(n * k) // k):
        shape = x.shape[:axis + 1] + (1,) + x.shape[axis + 1:]
        wide = x.shape[:axis + 1] + (k,) + x.shape[axis + 1:]
        out = x.shape[:axis] + (n * k,) + x.shape[axis + 1:]
        return reshape(broadcast_to(reshape(x, shape), wide), out)
    return take(x, idx, axis=axis)
