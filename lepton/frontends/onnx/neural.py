"""Converters for ONNX's neural-network ops: Gemm, Conv, the pools, the normalisations,
Softmax/LogSoftmax, Gelu, Dropout. Each takes a `Node` and returns traced Tensors.

Convolutions and pools take 1-d (N, C, L) inputs as (N, C, 1, L) images. Padding the IR's
conv2d/pool ops cannot express (asymmetric, or beyond half a pooling window) is made explicit
with the IR's `pad`: zeros for Conv, a -inf border for MaxPool, and for AveragePool the padded
sum rescaled by a per-window count computed now:

    >>> Conv(x, w, pads=[0, 0, 1, 1])   # pad[lo=(0,0,0,0), hi=(0,0,1,1)], conv2d[padding=(0,0)]
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...ir.types import float32, int64
from .. import nn_ops, ops, shapes
from ..tensor import Tensor, cast, constant, emit


def pad_zeros(x: Tensor, lo, hi) -> Tensor:
    """x with lo[i] zeros before and hi[i] after axis i (the IR's pad op)."""
    lo, hi = tuple(int(p) for p in lo), tuple(int(p) for p in hi)
    if not any(lo) and not any(hi):
        return x
    return emit("pad", [x], lo=lo, hi=hi, interior=(0,) * x.ndim)


def pad_interior(x: Tensor, lo, hi, interior) -> Tensor:
    """x with lo[i] zeros before, hi[i] after and interior[i] between the elements of axis i."""
    return emit("pad", [x], lo=tuple(int(p) for p in lo), hi=tuple(int(p) for p in hi),
                interior=tuple(int(p) for p in interior))


# -- Gemm --------------------------------------------------------------------------------------
def gemm(n) -> Tensor:
    """alpha * op(A) @ op(B) + beta * C, op transposing when transA/transB is set."""
    a, b, c = n.x(0), n.x(1), n.opt(2)
    if a.ndim != 2 or b.ndim != 2:
        n.invalid(f"A and B must be matrices, got {a.type} and {b.type}")
    a = a.T if n.attr("transA", 0) else a
    b = b.T if n.attr("transB", 0) else b
    y = ops.matmul(a, b)
    alpha, beta = n.attr("alpha", 1.0), n.attr("beta", 1.0)
    if alpha != 1.0:
        y = y * alpha
    if c is not None and beta != 0.0:
        y = y + (c if beta == 1.0 else c * beta)
    return y


# -- windows: Conv and the pools ---------------------------------------------------------------
def _window_geometry(n, sizes, kernel, dilations):
    """(strides, pads before, pads after) per spatial axis from strides/auto_pad/pads."""
    k = len(kernel)
    strides = tuple(n.attr("strides", [1] * k))
    auto = n.attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = tuple(n.attr("pads", [0] * 2 * k))
        if len(pads) != 2 * k:
            n.invalid(f"pads must have {2 * k} entries, got {list(pads)}")
        lo, hi = pads[:k], pads[k:]
    elif auto == "VALID":
        lo = hi = (0,) * k
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        lo, hi = [], []
        for size, kk, s, d in zip(sizes, kernel, strides, dilations):
            total = max((math.ceil(size / s) - 1) * s + (kk - 1) * d + 1 - size, 0)
            small, big = total // 2, total - total // 2
            lo.append(small if auto == "SAME_UPPER" else big)
            hi.append(big if auto == "SAME_UPPER" else small)
    else:
        n.invalid(f"unknown auto_pad '{auto}'")
    if len(strides) != k or min(strides) < 1 or min(lo) < 0 or min(hi) < 0:
        n.invalid(f"bad strides {list(strides)} or pads {list(lo) + list(hi)} for a "
                  f"{k}-d window")
    return strides, tuple(lo), tuple(hi)


def _as_image(n, x: Tensor) -> Tensor:
    """x as (N, C, H, W): 1-d inputs (N, C, L) get H = 1; 3-d windows are refused."""
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
    n.unsupported(f"only 1-d and 2-d {n.op_type} is supported, got input {x.type}")


def _for_image(nd: int, params: tuple, neutral: int) -> tuple:
    """A 1-d op's window parameter extended for the added H axis (size, stride 1; pad 0)."""
    return tuple(params) if nd == 2 else (neutral,) + tuple(params)


def conv(n) -> Tensor:
    return conv_of(n, n.x(0), n.x(1), n.opt(2))


def conv_of(n, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    """Conv of node n's window attributes on x, w and bias b (also ConvInteger, QLinearConv)."""
    nd = x.ndim - 2
    img = _as_image(n, x)
    kernel = tuple(w.shape[2:])
    if tuple(n.attr("kernel_shape", kernel)) != kernel:
        n.invalid(f"kernel_shape {n.attr('kernel_shape')} does not match the weight {w.type}")
    dil = tuple(n.attr("dilations", [1] * nd))
    strides, lo, hi = _window_geometry(n, x.shape[2:], kernel, dil)
    strides, dil = _for_image(nd, strides, 1), _for_image(nd, dil, 1)
    lo, hi = _for_image(nd, lo, 0), _for_image(nd, hi, 0)
    if nd == 1:
        w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
    # conv2d pads symmetrically; any extra on one side is explicit zeros first
    sym = tuple(min(a, c) for a, c in zip(lo, hi))
    img = pad_zeros(img, (0, 0) + tuple(a - s for a, s in zip(lo, sym)),
                    (0, 0) + tuple(c - s for c, s in zip(hi, sym)))
    y = nn_ops.conv2d(img, w, b, stride=strides, padding=sym, dilation=dil,
                      groups=int(n.attr("group", 1)))
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if nd == 1 else y


def _window_count(sizes, kernel, strides, lo, hi) -> np.ndarray:
    """How many input (not padding) elements each window of the padded input covers."""
    inside = np.pad(np.ones(sizes), list(zip(lo, hi)))
    v = sliding_window_view(inside, kernel)[::strides[0], ::strides[1]]
    return v.sum(axis=(-2, -1))


def pool(kind: str):
    def rule(n) -> Tensor:
        x = n.x(0)
        nd = x.ndim - 2
        kernel = tuple(n.attr("kernel_shape", ()))
        if len(kernel) != nd:
            n.invalid(f"kernel_shape {list(kernel)} does not fit input {x.type}")
        dil = tuple(n.attr("dilations", [1] * nd))
        dtype = x.dtype
        if kind == "max" and dtype.is_int and dtype.bits <= 16:   # MaxPool on (u)int8: exact
            x = cast(x, float32)                                   # in float32, cast back
        elif not dtype.is_float:
            n.invalid(f"needs a float tensor{' or (u)int8' if kind == 'max' else ''}, got "
                      f"{dtype}", TypeError)
        if kind == "max" and n.n_outputs > 1 and n.proto.output[1]:
            return [cast(values(n, x, kernel, dil), dtype), _max_pool_indices(n, x, kernel, dil)]
        return cast(values(n, x, kernel, dil), dtype)

    def values(n, x, kernel, dil) -> Tensor:
        nd = len(kernel)
        include_pad = kind == "avg" and n.attr("count_include_pad", 0)
        if nd not in (1, 2) or any(d != 1 for d in dil) or (
                include_pad and n.attr("ceil_mode", 0)):
            return _pool_by_gather(n, kind, x, kernel, dil, include_pad)
        img = _as_image(n, x)
        strides, lo, hi = _window_geometry(n, x.shape[2:], kernel, (1,) * nd)
        if n.attr("ceil_mode", 0):   # a last, partial window: more padding after (not counted)
            hi = tuple(h + _ceil_extra(d, k, s, a, h)
                       for d, k, s, a, h in zip(x.shape[2:], kernel, strides, lo, hi))
        kernel, strides = _for_image(nd, kernel, 1), _for_image(nd, strides, 1)
        lo, hi = _for_image(nd, lo, 0), _for_image(nd, hi, 0)
        op = nn_ops.max_pool2d if kind == "max" else nn_ops.avg_pool2d
        if lo == hi and all(p <= k // 2 for p, k in zip(lo, kernel)) and not (
                include_pad and any(lo)):
            y = op(img, kernel, strides, lo)
        else:
            padded = pad_zeros(img, (0, 0) + lo, (0, 0) + hi)
            if kind == "max":  # the border must never win: -inf there, + 0 elsewhere
                border = np.pad(np.zeros(img.shape[2:], img.dtype.np), list(zip(lo, hi)),
                                constant_values=-np.inf)
                padded = padded + constant(border)
            y = op(padded, kernel, strides, 0)
            if kind == "avg" and not include_pad:  # avg_pool2d divided by the whole window
                count = _window_count(img.shape[2:], kernel, strides, lo, hi)
                y = y * constant((math.prod(kernel) / count).astype(img.dtype.np))
        return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if nd == 1 else y
    return rule


def _max_pool_indices(n, x: Tensor, kernel, dil) -> Tensor:
    """MaxPool's Indices: the flat index (over N, C and the spatial axes; storage_order=1:
    spatial axes column-major) of each window's first maximum. The windows are gathered
    from the -inf-padded input (as _pool_by_gather), argmax'ed, and mapped through a constant
    table of each window element's index."""
    nd = len(kernel)
    sizes = x.shape[2:]
    strides, lo, hi = _window_geometry(n, sizes, kernel, dil)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    extra = [_ceil_extra(z, e, s, a, h) if n.attr("ceil_mode", 0) else 0
             for z, e, s, a, h in zip(sizes, span, strides, lo, hi)]
    full_hi = [h + e for h, e in zip(hi, extra)]
    y = pad_zeros(x, (0, 0) + tuple(lo), (0, 0) + tuple(full_hi))
    inside = np.pad(np.ones(sizes), list(zip(lo, full_hi)))
    y = y + constant(np.where(inside > 0, 0, -np.inf).astype(x.dtype.np))
    order = (np.arange(nd)[::-1] if n.attr("storage_order", 0) else np.arange(nd))
    place = [0] * nd                  # each spatial axis's stride in the flat index
    step = 1
    for a in order[::-1]:
        place[a] = step
        step *= sizes[a]
    maps, outs = [], []
    for a in range(nd):
        size = y.shape[2 + 2 * a]
        o = (size - span[a]) // strides[a] + 1
        idx = np.arange(o)[:, None] * strides[a] + np.arange(kernel[a])[None, :] * dil[a]
        y = ops.take(y, idx.reshape(-1), axis=2 + 2 * a)
        y = y.reshape(y.shape[:2 + 2 * a] + (o, kernel[a]) + y.shape[3 + 2 * a:])
        maps.append((idx - lo[a]) * place[a])           # [o, k]: the element's index part
        outs.append(o)
    perm = (0, 1) + tuple(2 + 2 * a for a in range(nd)) + tuple(3 + 2 * a for a in range(nd))
    kk = math.prod(kernel)
    y = ops.transpose(y, perm).reshape(x.shape[:2] + tuple(outs) + (kk,))
    best = ops.argmax(y, axis=-1)                                   # [N, C, *outs]
    table = np.zeros(tuple(outs) + tuple(kernel), np.int64)         # [*outs, *kernel]
    for a in range(nd):
        shape = [1] * (2 * nd)
        shape[a], shape[nd + a] = outs[a], kernel[a]
        table = table + maps[a].reshape(shape)
    table = table.reshape(-1)
    cells = constant((np.arange(math.prod(outs)) * kk).reshape(tuple(outs)))
    spatial = ops.take(constant(table), best + cells)
    planes = constant((np.arange(x.shape[0] * x.shape[1]) * math.prod(sizes)).reshape(
        x.shape[:2] + (1,) * nd))
    return spatial + planes


def _pool_by_gather(n, kind: str, x: Tensor, kernel, dil, include_pad) -> Tensor:
    """Any-rank, dilated pooling: the padded input's windows gathered along each spatial axis
    (a constant index map (out, k) -> o * stride + k * dilation), then reduced."""
    nd = len(kernel)
    sizes = x.shape[2:]
    strides, lo, hi = _window_geometry(n, sizes, kernel, dil)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    extra = [_ceil_extra(z, e, s, a, h) if n.attr("ceil_mode", 0) else 0
             for z, e, s, a, h in zip(sizes, span, strides, lo, hi)]
    full_hi = [h + e for h, e in zip(hi, extra)]
    y = pad_zeros(x, (0, 0) + tuple(lo), (0, 0) + tuple(full_hi))
    inside = np.pad(np.ones(sizes), list(zip(lo, full_hi)))
    counted = np.pad(np.ones([z + a + h for z, a, h in zip(sizes, lo, hi)]),
                     [(0, e) for e in extra]) if include_pad else inside
    if kind == "max":   # the border must never win
        y = y + constant(np.where(inside > 0, 0, -np.inf).astype(x.dtype.np))
    for a in range(nd):
        size = y.shape[2 + 2 * a]
        outs = (size - span[a]) // strides[a] + 1
        idx = (np.arange(outs)[:, None] * strides[a] + np.arange(kernel[a])[None, :] * dil[a])
        y = ops.take(y, idx.reshape(-1), axis=2 + 2 * a)
        y = y.reshape(y.shape[:2 + 2 * a] + (outs, kernel[a]) + y.shape[3 + 2 * a:])
        counted = np.take(counted, idx, axis=2 * a)
    axes = tuple(3 + 2 * a for a in range(nd))
    if kind == "max":
        return ops.max(y, axes)
    if kind == "sum":
        return ops.sum(y, axes)
    count = counted.sum(axis=tuple(1 + 2 * a for a in range(nd)))
    return ops.sum(y, axes) * constant((1.0 / count).astype(x.dtype.np))


def lp_pool(n) -> Tensor:
    """LpPool: (sum of |x|**p over each window) ** (1/p); padding counts as 0."""
    x = n.x(0)
    kernel = tuple(n.attr("kernel_shape", ()))
    if len(kernel) != x.ndim - 2:
        n.invalid(f"kernel_shape {list(kernel)} does not fit input {x.type}")
    p = n.attr("p", 2)
    dil = tuple(n.attr("dilations", [1] * len(kernel)))
    mag = ops.square(x) if p == 2 else ops.abs(x) if p == 1 else ops.power(ops.abs(x), float(p))
    s = _pool_by_gather(n, "sum", mag, kernel, dil, False)
    return ops.sqrt(s) if p == 2 else s if p == 1 else ops.power(s, 1.0 / p)


def _ceil_extra(size: int, k: int, s: int, lo: int, hi: int) -> int:
    """Padding to add after an axis so that floor-mode pooling gives ceil mode's windows (the
    last one must start inside the input or its padding before)."""
    span = size + lo + hi - k
    out = -(-span // s) + 1
    if (out - 1) * s >= size + lo:
        out -= 1
    return max((out - 1) * s + k - (size + lo + hi), 0)


def global_pool(reduce):
    def rule(n) -> Tensor:
        x = n.x(0)
        return reduce(x, tuple(range(2, x.ndim)), keepdims=True)
    return rule


# -- normalisations ----------------------------------------------------------------------------
def batch_norm(n) -> Tensor:
    """Inference: (x - mean) / sqrt(var + eps) * scale + B per channel (axis 1), lp.batch_norm
    with training=False."""
    x, scale, bias, mean, var = (n.x(i) for i in range(5))
    if n.attr("spatial", 1) != 1:
        n.unsupported("spatial=0 is not supported")
    eps = n.attr("epsilon", 1e-5)
    if n.attr("training_mode", 0):   # opset 14: the batch's statistics, and running updates
        if n.opset < 14:
            n.unsupported("training before opset 14 (is_test=0) is not supported")
        axes = (0,) + tuple(range(2, x.ndim))
        m, v = ops.mean(x, axes), ops.var(x, axes)
        mom = float(n.attr("momentum", 0.9))
        y = nn_ops.batch_norm(x, m, v, scale, bias, eps=eps)
        return [y, mean * mom + m * (1 - mom), var * mom + v * (1 - mom)]
    return nn_ops.batch_norm(x, mean, var, scale, bias, eps=eps)


def layer_norm(n) -> list[Tensor]:
    """Normalises over the axes from `axis` to the last; outputs Y, Mean, InvStdDev."""
    x, scale, bias = n.x(0), n.x(1), n.opt(2)
    axis = n.attr("axis", -1)
    axis = axis + x.ndim if axis < 0 else axis
    if not 0 <= axis < x.ndim:
        n.invalid(f"axis {n.attr('axis')} is out of range for {x.type}")
    axes = tuple(range(axis, x.ndim))
    mu = ops.mean(x, axes, keepdims=True)
    d = x - mu
    inv = ops.rsqrt(ops.mean(ops.square(d), axes, keepdims=True) + n.attr("epsilon", 1e-5))
    y = d * inv * scale
    if bias is not None:
        y = y + bias
    return [y, mu, inv]


def softmax(f):
    """Softmax/LogSoftmax: opset >= 13 along `axis` (default -1); before 13 the input is
    viewed as a matrix split at `axis` (default 1), normalised along its rows."""
    def rule(n) -> Tensor:
        x = n.x(0)
        if n.opset >= 13:
            return f(x, n.attr("axis", -1))
        axis = n.attr("axis", 1)
        axis = axis + x.ndim if axis < 0 else axis
        rows = math.prod(x.shape[:axis])
        return f(x.reshape(rows, x.size // max(rows, 1)), -1).reshape(x.shape)
    return rule


def gelu(n) -> Tensor:
    approx = n.attr("approximate", "none")
    if approx not in ("none", "tanh"):
        n.invalid(f"approximate must be 'none' or 'tanh', got '{approx}'")
    return ops.gelu(n.x(0), approximate=approx == "tanh")


def dropout(n) -> list[Tensor]:
    """Inference: the input itself, and an all-true mask; training mode (opset >= 12's
    training_mode input): random_ops.dropout_training."""
    x = n.x(0)
    training = n.const(2)
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        from .random_ops import dropout_training
        r = n.const(1)
        return dropout_training(n, x, 0.5 if r is None else float(np.asarray(r).reshape(-1)[0]))
    return [x, ops.full(x.shape, True)]


def max_unpool(n) -> Tensor:
    """MaxUnpool: zeros with x's values put back at MaxPool's flat indices (over the whole
    output, batch and channels included). Overlapping windows repeat an index with the same
    value: the sums are divided by the counts."""
    x, idx = n.x(0), n.x(1)
    nd = x.ndim - 2
    kernel = tuple(n.attr("kernel_shape", ()))
    if len(kernel) != nd or idx.shape != x.shape:
        n.invalid(f"kernel_shape {list(kernel)} and indices {idx.type} must fit input {x.type}")
    strides = n.attr("strides") or [1] * nd
    pads = n.attr("pads") or [0] * (2 * nd)
    shape = n.ints(2)
    if shape is None:
        shape = x.shape[:2] + tuple((d - 1) * s - pads[a] - pads[a + nd] + k for a, (d, s, k)
                                    in enumerate(zip(x.shape[2:], strides, kernel)))
    # with output_shape the indices address that shape, as in onnxruntime and PyTorch (onnx's
    # reference reads them in the inferred shape and pads the result at the end)
    size = math.prod(shape)
    flat = shapes.checked_index(cast(idx, int64).reshape(-1), size, n.op_type)
    total = emit("scatter_add", [x.reshape(-1), flat], axis=0, size=size)
    count = emit("scatter_add", [ops.full((flat.shape[0],), 1.0, x.dtype), flat], axis=0,
                 size=size)
    return (total / ops.maximum(count, 1.0)).reshape(tuple(shape))
