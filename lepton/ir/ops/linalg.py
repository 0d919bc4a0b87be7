"""Contractions and windows: batched `matmul` (both inputs at least 2-d, batch dims broadcast),
NCHW `conv2d` (weight (O, C/groups, KH, KW)), `conv_transpose2d` (weight (C, O/groups, KH, KW),
PyTorch's ConvTranspose2d: conv2d's gradient wrt its input, which is how it is computed: it
expands to a pad and a conv2d before lowering) and the 2-d pools (PyTorch's conventions; avg
excludes padding from the count). Windows' attributes are pairs (h, w).

Gradients: matmul's are matmuls; conv2d's wrt the input is a conv2d (of the dilated, padded
cotangent with the flipped, transposed kernel), wrt the weight an op of its own whose
gradients are conv2ds again, so all are differentiable to any order:

    conv2d_weight_grad[kernel, stride, padding, dilation, groups](x, dy) -> dw
        dw[o, c, i, j] = sum over n and output pixels of dy[n, o] * x[n, c] at tap (i, j)

The pools' gradients are ops of their own too:

    max_pool2d_grad[kernel, stride, padding](x, dy) -> dx   dy routed to each window's maximum
    max_pool2d_select[kernel, stride, padding](x, t) -> y   t read at each window's maximum
    avg_pool2d_grad[kernel, stride, padding, size](dy) -> dx   dy / count spread over windows

Each window's maximum is its first element (row-major) holding the largest value, or the first
NaN. max_pool2d_grad and max_pool2d_select are each other's transposes in t/dy; avg_pool2d_grad
and avg_pool2d likewise; no gradient flows into x through the argmax choice."""
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


def _conv2d_weight_grad(types, a):
    """conv2d_weight_grad[kernel, stride, padding, dilation, groups](x, dy) -> dw: the gradient
    wrt w (O, C/groups, KH, KW) of <conv2d(x, w), dy>. dy may cover fewer output rows/columns
    than the convolution has (the rest count as zero: a transposed convolution's
    output_padding)."""
    x, dy = types
    dt = same_dtype(types)
    kh, kw = _pair(a, "kernel")
    g = a["groups"]
    if x.ndim != 4 or dy.ndim != 4 or x.shape[0] != dy.shape[0]:
        raise ValueError(f"conv2d_weight_grad needs x (N,C,H,W) and dy (N,O,Ho,Wo), got {x} "
                         f"and {dy}")
    if min(kh, kw) < 1 or g < 1 or x.shape[1] % g or dy.shape[1] % g:
        raise ValueError(f"conv2d_weight_grad: kernel {(kh, kw)}, groups {g} do not fit {x}, "
                         f"{dy}")
    w = TensorType(dt, (dy.shape[1], x.shape[1] // g, kh, kw))
    full = _conv2d((x, w), a)
    if not (1 <= dy.shape[2] <= full.shape[2] and 1 <= dy.shape[3] <= full.shape[3]):
        raise ValueError(f"conv2d_weight_grad: dy {dy} does not fit the convolution's output "
                         f"{full}")
    return w


def _conv2d_weight_grad_ref(xs, a):
    x, dy = xs
    g = a["groups"]
    n, o, ho, wo = dy.shape
    v = _windows(x, a["kernel"], a["stride"], a["padding"], a["dilation"])[:, :, :ho, :wo]
    c, kh, kw = v.shape[1], v.shape[4], v.shape[5]
    v = v.reshape(n, g, c // g, ho, wo, kh, kw)
    dw = np.einsum("ngchwij,ngohw->gocij", v, dy.reshape(n, g, o // g, ho, wo), optimize=True)
    return dw.reshape(o, c // g, kh, kw).astype(x.dtype)


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
    x = xs[0]  # padding is the lowest value of x's dtype (-inf cannot fill an int array)
    low = -np.inf if x.dtype.kind == "f" else False if x.dtype == bool else np.iinfo(x.dtype).min
    v = _windows(x, a["kernel"], a["stride"], a["padding"], fill=low)
    return v.max(axis=(4, 5)).astype(xs[0].dtype)


def _avg_pool_ref(xs, a):
    x = xs[0]
    k, s, p = a["kernel"], a["stride"], a["padding"]
    total = _windows(x, k, s, p).sum(axis=(4, 5))
    count = _windows(np.ones((1, 1) + x.shape[2:]), k, s, p).sum(axis=(4, 5))
    return (total / count).astype(x.dtype)


# -- pool gradients ----------------------------------------------------------------------------
def _max_pool_grad(types, a):
    x, dy = types
    if dy != _pool((x,), a):
        raise ValueError(f"max_pool2d_grad: dy {dy} is not the pooled type of x {x}")
    return x


def _max_pool_select(types, a):
    x, t = types
    if t != x:
        raise ValueError(f"max_pool2d_select: t {t} must have x's type {x}")
    return _pool((x,), a)


def _avg_pool_grad(types, a):
    (dy,) = types
    h, w = _pair(a, "size")
    if dy.ndim != 4:
        raise ValueError(f"avg_pool2d_grad needs an (N,C,Ho,Wo) input, got {dy}")
    x = TensorType(dy.dtype, dy.shape[:2] + (h, w))
    if _pool((x,), a) != dy:
        raise ValueError(f"avg_pool2d_grad: {dy} is not the pooled type of {x}")
    return x


def window_argmax(x, k, s, p):
    """(N, C, Ho, Wo) flat indices into each (H, W) plane of every window's maximum: its first
    element in row-major order that is NaN or greater than all before it (padding never wins)."""
    n, c, h, w = x.shape
    ho, wo = window_out(h, k[0], s[0], p[0]), window_out(w, k[1], s[1], p[1])
    best = np.full((n, c, ho, wo), -np.inf, x.dtype)
    at = np.full((n, c, ho, wo), -1, np.int64)
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    rows = np.arange(ho)[:, None] * s[0] - p[0]
    cols = np.arange(wo)[None, :] * s[1] - p[1]
    for i in range(k[0]):
        for j in range(k[1]):
            r, q = rows + i, cols + j
            valid = (r >= 0) & (r < h) & (q >= 0) & (q < w)
            v = xp[:, :, r + p[0], q + p[1]]
            take = valid & ((at < 0) | (v > best) | (np.isnan(v) & ~np.isnan(best)))
            best = np.where(take, v, best)
            at = np.where(take, r * w + q, at)
    return at


def _max_pool_grad_ref(xs, a):
    x, dy = xs
    at = window_argmax(x, a["kernel"], a["stride"], a["padding"])
    n, c, h, w = x.shape
    dx = np.zeros((n * c, h * w), x.dtype)
    np.add.at(dx, (np.arange(n * c)[:, None], at.reshape(n * c, -1)), dy.reshape(n * c, -1))
    return dx.reshape(x.shape)


def _max_pool_select_ref(xs, a):
    x, t = xs
    at = window_argmax(x, a["kernel"], a["stride"], a["padding"])
    n, c = x.shape[:2]
    return np.take_along_axis(t.reshape(n, c, -1), at.reshape(n, c, -1), axis=2).reshape(at.shape)


def _avg_pool_grad_ref(xs, a):
    (dy,) = xs
    (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
    h, w = a["size"]
    n, c, ho, wo = dy.shape
    count = _windows(np.ones((1, 1, h, w)), (kh, kw), (sh, sw), (ph, pw)).sum(axis=(4, 5))
    share = dy / count
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw] += share
    return dxp[:, :, ph:ph + h, pw:pw + w].astype(dy.dtype)


# -- VJP rules ---------------------------------------------------------------------------------
def _matmul_vjp(e, out, ct):
    a, b = out.inputs
    da = e.sum_to(e.matmul(ct, e.swap_last2(b)), a.shape)
    if b.type.ndim == 2 and a.type.ndim > 2:
        # a plain weight matrix: fold a's batch into rows, one GEMM instead of a batch of them
        k, n = b.shape
        a2 = e.reshape(a, (a.type.size // k, k))
        db = e.matmul(e.swap_last2(a2), e.reshape(ct, (ct.type.size // n, n)))
    else:
        db = e.sum_to(e.matmul(e.swap_last2(a), ct), b.shape)
    return da, db


def conv2d_input_grad(e, ct, w, x_shape, stride, padding, dilation, groups):
    """d<conv2d(x, w), ct>/dx for x of `x_shape`: the transposed convolution of ct with w, a
    conv2d of the dilated, padded ct with the flipped, transposed kernel."""
    (sh, sw), (ph, pw), (dh, dw), g = stride, padding, dilation, groups
    n, c, h, wd = x_shape
    o, cg, kh, kw = w.shape
    og = o // g
    ho, wo = ct.shape[2:]
    # P is ct with (stride - 1) zeros between pixels, padded so that a stride-1 convolution
    # with W' (each group's kernel transposed (O<->C) and flipped) lands exactly on x's pixels;
    # padding beyond the taps is cropped instead of computed. `extra` is the rows and columns
    # of x no window reaches (a transposed convolution's output_padding).
    extra_h = (h + 2 * ph - dh * (kh - 1) - 1) - (ho - 1) * sh
    extra_w = (wd + 2 * pw - dw * (kw - 1) - 1) - (wo - 1) * sw
    lo_h, lo_w = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    wt = e.reshape(e.transpose(e.reshape(w, (g, og, cg, kh, kw)), (0, 2, 1, 3, 4)),
                   (c, og, kh, kw))
    wt = e.slice(wt, (0, 0, kh - 1, kw - 1), (c, og, -1, -1), (1, 1, -1, -1))
    if (sh, sw) == (1, 1) and (extra_h, extra_w) == (0, 0) and min(lo_h, lo_w) >= 0:
        # the same zeros on both sides: the convolution's own padding, no padded copy of ct
        return e.op("conv2d", ct, wt, stride=(1, 1), padding=(lo_h, lo_w), dilation=(dh, dw),
                    groups=g)
    p = e.pad_or_crop(e.pad(ct, (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, sh - 1, sw - 1)),
                      (0, 0, lo_h, lo_w), (0, 0, lo_h + extra_h, lo_w + extra_w))
    return e.op("conv2d", p, wt, stride=(1, 1), padding=(0, 0), dilation=(dh, dw), groups=g)


def conv2d_weight_grad(e, x, ct, w_shape, stride, padding, dilation, groups):
    """d<conv2d(x, w), ct>/dw for w of `w_shape`: dw[o, c, i, j] = sum over n, pixels of
    ct[n, o] * x[n, c] shifted by the tap, the op conv2d_weight_grad (its kernel: per image
    the im2col of x against ct, accumulated, conv_grad.py)."""
    return e.op("conv2d_weight_grad", x, ct, kernel=tuple(w_shape[2:]), stride=stride,
                padding=padding, dilation=dilation, groups=groups)


def _conv_attrs(out):
    return tuple(out.attrs[k] for k in ("stride", "padding", "dilation", "groups"))


def _conv2d_vjp(e, out, ct):
    x, w = out.inputs
    a = _conv_attrs(out)
    return (conv2d_input_grad(e, ct, w, x.shape, *a), conv2d_weight_grad(e, x, ct, w.shape, *a))


def _conv2d_weight_grad_vjp(e, out, ct):
    # dw is bilinear in (x, dy): <dw(x, dy), G> = <conv2d(x, G), dy>
    x, dy = out.inputs
    a = _conv_attrs(out)
    ddy = e.op("conv2d", x, ct, stride=a[0], padding=a[1], dilation=a[2], groups=a[3])
    if ddy.shape != dy.shape:
        ddy = e.slice(ddy, (0, 0, 0, 0), dy.shape, (1, 1, 1, 1))
    return conv2d_input_grad(e, dy, ct, x.shape, *a), ddy


# -- conv_transpose2d: conv2d's input gradient as an op of its own -----------------------------
def _conv_transpose2d(types, a):
    x, w = types
    dt = same_dtype(types)
    if not dt.is_float:
        raise TypeError(f"conv_transpose2d needs float inputs, got {x}")
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (
        _pair(a, k) for k in ("stride", "padding", "output_padding", "dilation"))
    g = a["groups"]
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv_transpose2d needs x (N,C,H,W) and w (C,O/groups,KH,KW), got "
                         f"{x} and {w}")
    if min(sh, sw, dh, dw, g) < 1 or min(ph, pw, oph, opw) < 0:
        raise ValueError("conv_transpose2d: stride, dilation, groups must be >= 1, padding "
                         "and output_padding >= 0")
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ValueError(f"conv_transpose2d: output_padding {(oph, opw)} must be smaller than "
                         f"either stride {(sh, sw)} or dilation {(dh, dw)}")
    n, c, h, wd = x.shape
    ci, og, kh, kw = w.shape
    if c != ci or c % g:
        raise ValueError(f"conv_transpose2d: {x} and weight {w} do not match with groups={g}")
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"conv_transpose2d: padding {(ph, pw)} leaves no output for {x}")
    return TensorType(dt, (n, og * g, ho, wo))


def _conv_transpose2d_ref(xs, a):
    x, w = xs
    (sh, sw), (ph, pw), (dh, dw), g = (a[k] for k in ("stride", "padding", "dilation", "groups"))
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    ho, wo = _conv_transpose2d((TensorType.of(x), TensorType.of(w)), a).shape[2:]
    # every input pixel scatters its kernel-weighted value onto the full (unpadded) output
    full = np.zeros((n, g, og, max((h - 1) * sh + dh * (kh - 1) + 1, ph + ho),
                     max((wd - 1) * sw + dw * (kw - 1) + 1, pw + wo)), np.float64)
    xg = x.reshape(n, g, c // g, h, wd).astype(np.float64)
    wg = w.reshape(g, c // g, og, kh, kw).astype(np.float64)
    for i in range(kh):
        for j in range(kw):
            full[:, :, :, i * dh:i * dh + (h - 1) * sh + 1:sh, j * dw:j * dw + (wd - 1) * sw + 1:sw] \
                += np.einsum("ngchw,gco->ngohw", xg, wg[:, :, :, i, j])
    return full[:, :, :, ph:ph + ho, pw:pw + wo].reshape(n, g * og, ho, wo).astype(x.dtype)


def _conv_transpose2d_vjp(e, out, ct):
    x, w = out.inputs
    a = _conv_attrs(out)
    # the transpose of a transposed convolution is the convolution; rows that only
    # output_padding reached (when it is >= stride, with a dilation) are cropped
    dx = e.op("conv2d", ct, w, stride=a[0], padding=a[1], dilation=a[2], groups=a[3])
    dx = e.slice(dx, (0, 0, 0, 0), x.shape, (1, 1, 1, 1))
    # w is the weight of the conv2d whose input gradient this op is: its gradient is that
    # conv2d's weight gradient, with ct as the input and x as the output's cotangent
    return dx, conv2d_weight_grad(e, ct, x, w.shape, *a)


def _conv_transpose2d_expand(e, v):
    x, w = v.inputs
    return conv2d_input_grad(e, x, w, v.shape, *_conv_attrs(v))


def _pool_attrs(out):
    return {k: out.attrs[k] for k in ("kernel", "stride", "padding")}


def _max_pool_vjp(e, out, ct):
    return (e.op("max_pool2d_grad", out.inputs[0], ct, **_pool_attrs(out)),)


def _max_pool_grad_vjp(e, out, ct):
    return None, e.op("max_pool2d_select", out.inputs[0], ct, **_pool_attrs(out))


def _max_pool_select_vjp(e, out, ct):
    return None, e.op("max_pool2d_grad", out.inputs[0], ct, **_pool_attrs(out))


def _avg_pool_vjp(e, out, ct):
    return (e.op("avg_pool2d_grad", ct, size=out.inputs[0].shape[2:], **_pool_attrs(out)),)


def _avg_pool_grad_vjp(e, out, ct):
    return (e.op("avg_pool2d", ct, **_pool_attrs(out)),)


_POOL = ("kernel", "stride", "padding")

LINALG = [
    OpDef("matmul", "matmul", 2, (), _matmul, _matmul_ref, _matmul_vjp),
    OpDef("conv2d", "conv", 2, ("stride", "padding", "dilation", "groups"), _conv2d, _conv2d_ref,
          _conv2d_vjp),
    OpDef("conv2d_weight_grad", "conv", 2, ("kernel", "stride", "padding", "dilation", "groups"),
          _conv2d_weight_grad, _conv2d_weight_grad_ref, _conv2d_weight_grad_vjp),
    OpDef("conv_transpose2d", "conv", 2,
          ("stride", "padding", "output_padding", "dilation", "groups"), _conv_transpose2d,
          _conv_transpose2d_ref, _conv_transpose2d_vjp, expand=_conv_transpose2d_expand),
    OpDef("max_pool2d", "pool", 1, _POOL, _pool, _max_pool_ref, _max_pool_vjp),
    OpDef("avg_pool2d", "pool", 1, _POOL, _pool, _avg_pool_ref, _avg_pool_vjp),
    OpDef("max_pool2d_grad", "pool", 2, _POOL, _max_pool_grad, _max_pool_grad_ref,
          _max_pool_grad_vjp),
    OpDef("max_pool2d_select", "pool", 2, _POOL, _max_pool_select, _max_pool_select_ref,
          _max_pool_select_vjp),
    OpDef("avg_pool2d_grad", "pool", 1, _POOL + ("size",), _avg_pool_grad, _avg_pool_grad_ref,
          _avg_pool_grad_vjp),
]
