"""Converters for ONNX's ConvTranspose and Resize onto `lp.conv_transpose2d` and the constant
gathers / interpolation matrices of `lp.interpolate` (frontends/upsampling.py).

    ConvTranspose(x, w, pads=[0, 0, 1, 1])   # conv_transpose2d[padding=(0,0)], then a crop
    ConvTranspose(x 5-d, w)   # depth folded into the batch, its taps summed into place (pad)
    Resize(x, scales=[1, 1, 2, 2], mode="linear")   # a matmul with a constant matrix per axis

Resize's coordinate transforms and nearest roundings are ONNX's (computed in float32, as
onnxruntime does); the linear mode reads edge values outside the input (ONNX's clamping);
cubic is Keys' convolution; antialias=1 stretches the linear or cubic filter by 1/scale when
downsampling, as onnx's reference does (a wider constant matrix per axis).
"""
from __future__ import annotations

import numpy as np

from .. import ops, upsampling
from ..tensor import Tensor, constant
from . import neural

_F = np.float32


# -- ConvTranspose -----------------------------------------------------------------------------
def _transpose_nd(x: Tensor, w: Tensor, strides, pad, outpad, groups: int, dil) -> Tensor:
    """The transposed convolution of x (N, C, *spatial) with w (C, O/groups, *kernel), no
    bias, its output cropped by pad[i] on both sides of spatial axis i. 1-d and 2-d are the IR's
    conv_transpose2d; a leading spatial axis beyond two (depth, size D, kernel KD, stride s) is
    folded: the depth slices become batch rows and the kernel's depth taps output channels of
    one transposed convolution of the remaining axes, and tap k of slice d lands on output depth
    d * s + k * dilation (a pad with s - 1 zeros between the slices), summed over the taps."""
    nd = x.ndim - 2
    if nd == 1:
        y = _transpose_nd(x.reshape(x.shape[:2] + (1,) + x.shape[2:]),
                          w.reshape(w.shape[:2] + (1,) + w.shape[2:]), (1,) + strides,
                          (0,) + pad, (0,) + outpad, groups, (1,) + dil)
        return y.reshape(y.shape[:2] + y.shape[3:])
    if nd == 2:
        return upsampling.conv_transpose2d(x, w, None, stride=strides, padding=pad,
                                           output_padding=outpad, groups=groups, dilation=dil)
    n, c, d = x.shape[:3]
    og, kd = w.shape[1], w.shape[2]
    rows = ops.transpose(x, (0, 2, 1) + tuple(range(3, x.ndim))).reshape((n * d, c) + x.shape[3:])
    z = _transpose_nd(rows, w.reshape((c, og * kd) + w.shape[3:]), strides[1:], pad[1:],
                      outpad[1:], groups, dil[1:])                 # (N*D, G*og*kd, ...)
    z = z.reshape((n, d, groups * og, kd) + z.shape[2:])
    s, full = strides[0], strides[0] * (d - 1) + dil[0] * (kd - 1) + 1 + outpad[0]
    rest = (0,) * (z.ndim - 4)     # the remaining spatial axes
    y = None
    for k in range(kd):
        tap = ops.swapaxes(z[:, :, :, k], 1, 2)                     # (N, O, D, ...)
        lo = k * dil[0]
        tap = neural.pad_interior(tap, (0, 0, lo) + rest,
                                  (0, 0, full - lo - (d - 1) * s - 1) + rest,
                                  (0, 0, s - 1) + rest)
        y = tap if y is None else y + tap
    return y[:, :, pad[0]:full - pad[0]]


def conv_transpose(n):
    x, w, b = n.x(0), n.x(1), n.opt(2)
    nd = x.ndim - 2
    if nd < 1 or w.ndim != x.ndim:
        n.invalid(f"needs an input (N, C, *spatial) and a weight of its rank, got {x.type} "
                  f"and {w.type}")
    kernel = tuple(w.shape[2:])
    if tuple(n.attr("kernel_shape", kernel)) != kernel:
        n.invalid(f"kernel_shape {n.attr('kernel_shape')} does not match the weight {w.type}")
    strides = tuple(n.attr("strides", [1] * nd))
    dil = tuple(n.attr("dilations", [1] * nd))
    outpad = tuple(n.attr("output_padding", [0] * nd))
    if not len(strides) == len(dil) == len(outpad) == nd:
        n.invalid("strides, dilations and output_padding need one entry per spatial axis")
    full = [s * (i - 1) + op + (k - 1) * d + 1
            for i, s, op, k, d in zip(x.shape[2:], strides, outpad, kernel, dil)]
    auto = n.attr("auto_pad", "NOTSET")
    shape = n.attr("output_shape")
    if shape is None and auto in ("SAME_UPPER", "SAME_LOWER"):
        shape = [i * s for i, s in zip(x.shape[2:], strides)]
    if shape is not None:  # pads from the requested size (ONNX's rule: SAME_UPPER pads the
        # end more, NOTSET and SAME_LOWER the start); a larger size adds zeros (then the
        # bias) at the end, as onnxruntime and the reference (NOTSET) do
        shape = list(shape)[-nd:]
        if len(shape) != nd:
            n.invalid(f"output_shape {list(n.attr('output_shape'))} needs {nd} spatial sizes")
        total = [f - o for f, o in zip(full, shape)]
        upper = auto == "SAME_UPPER"
        lo = [max(t, 0) // 2 if upper else max(t, 0) - max(t, 0) // 2 for t in total]
        hi = [t - a for t, a in zip(total, lo)]
    elif auto == "VALID":
        lo = hi = [0] * nd
    elif auto == "NOTSET":
        pads = list(n.attr("pads", [0] * 2 * nd))
        if len(pads) != 2 * nd or min(pads) < 0:
            n.invalid(f"pads must be {2 * nd} non-negative entries, got {pads}")
        lo, hi = pads[:nd], pads[nd:]
    else:
        n.invalid(f"unknown auto_pad '{auto}'")
    # the op crops symmetrically; the rest is cropped off the larger side (or, a negative
    # amount, zeros added at the end)
    sym = tuple(max(min(a, c), 0) for a, c in zip(lo, hi))
    y = _transpose_nd(x, w, strides, sym, outpad, int(n.attr("group", 1)), dil)
    key = tuple(slice(a - s, size - max(c - s, 0))
                for a, c, s, size in zip(lo, hi, sym, y.shape[2:]))
    y = neural.pad_zeros(y[(slice(None), slice(None)) + key], (0,) * (nd + 2),
                         (0, 0) + tuple(max(-c, 0) for c in hi))
    if b is not None:
        if b.shape != (y.shape[1],):
            n.invalid(f"the bias must have shape ({y.shape[1]},), got {b.type}")
        y = y + b.reshape((-1,) + (1,) * nd)
    return y


# -- Resize ------------------------------------------------------------------------------------
def _original(n, mode: str, out: int, size: int, scale, roi=None) -> np.ndarray:
    """The input coordinate of each output index (ONNX's coordinate_transformation_mode)."""
    x, s = np.arange(out, dtype=_F), _F(scale)
    if mode == "tf_crop_and_resize":   # roi: this axis's (start, end), normalised
        length = _F(size) * s
        span = _F(roi[1] - roi[0]) * _F(size - 1)
        src = np.full(out, span / 2, _F) if length == 1 else x * span / (length - _F(1))
        return src + _F(roi[0]) * _F(size - 1)
    if mode == "half_pixel":
        return (x + _F(0.5)) / s - _F(0.5)
    if mode == "pytorch_half_pixel":
        return (x + _F(0.5)) / s - _F(0.5) if out > 1 else np.zeros(out, _F)
    if mode == "align_corners":   # the resized length is size * scale, not its floor
        length = _F(size) * s
        return x * _F(size - 1) / (length - _F(1)) if length > 1 else np.zeros(out, _F)
    if mode == "asymmetric":
        return x / s
    if mode == "tf_half_pixel_for_nn":
        return (x + _F(0.5)) / s
    if mode == "half_pixel_symmetric":
        adjustment = _F(out) / (s * _F(size))
        center = _F(size) / _F(2)
        return center * (_F(1) - adjustment) + (x + _F(0.5)) / s - _F(0.5)
    n.unsupported(f"coordinate_transformation_mode '{mode}' is not supported")


def _nearest(n, src: np.ndarray, rounding: str, size: int) -> np.ndarray:
    fl = np.floor(src)
    half = src - fl == _F(0.5)
    if rounding == "round_prefer_floor":
        idx = np.where(half, fl, np.round(src))
    elif rounding == "round_prefer_ceil":
        idx = np.where(half, fl + 1, np.round(src))
    elif rounding == "floor":
        idx = fl
    elif rounding == "ceil":
        idx = np.ceil(src)
    else:
        n.invalid(f"unknown nearest_mode '{rounding}'")
    return np.clip(idx, 0, size - 1).astype(np.int64)


def _linear(src: np.ndarray, size: int, dtype) -> np.ndarray:
    src = np.clip(src, 0, size - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, size - 1)
    lam = src - i0
    m = np.zeros((len(src), size), np.float64)
    rows = np.arange(len(src))
    np.add.at(m, (rows, i0), 1 - lam)
    np.add.at(m, (rows, i1), lam)
    return m.astype(dtype)


def _cubic(src: np.ndarray, size: int, dtype, a: float, exclude: bool) -> np.ndarray:
    """Keys' cubic convolution (coefficient a) over the 4 neighbours x0-1 .. x0+2 of each
    source coordinate; outside the input the edge repeats, or (exclude_outside) those taps
    get weight 0 and the rest are renormalised."""
    x0 = np.floor(src)
    r = (src - x0)[:, None]
    d = np.concatenate([r + 1, r, 1 - r, 2 - r], axis=1)         # distances to the 4 taps
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    w = np.where(d <= 1, near, far)
    taps = x0.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :]
    if exclude:
        w = np.where((taps >= 0) & (taps < size), w, 0.0)
        w = w / w.sum(axis=1, keepdims=True)
    m = np.zeros((len(src), size), np.float64)
    np.add.at(m, (np.repeat(np.arange(len(src)), 4), np.clip(taps, 0, size - 1).reshape(-1)),
              w.reshape(-1))
    return m.astype(dtype)


def _antialias(src: np.ndarray, size: int, dtype, scale: float, mode: str, a: float,
               exclude: bool) -> np.ndarray:
    """The filter of `mode` ('linear' or 'cubic'), stretched by 1/scale when downsampling
    (scale < 1), as a constant (out, size) matrix: the taps of output i are the n input indices
    nearest to src[i] (n = 2 - 2 * start), each weighted by the kernel at (tap - src[i]) * scale,
    normalised to sum 1; outside the input the edge repeats, or (exclude) those taps get 0.
    This is onnx's reference (_linear/_cubic_coeffs_antialias and its neighbour choice)."""
    s = min(scale, 1.0)
    start = int(np.floor((-1 if mode == "linear" else -2) / s) + 1)
    taps_n = 2 - 2 * start
    fl = np.floor(src)
    base = np.where(src == fl, src - 1, fl)          # an integer src counts as ratio 1
    taps = base.astype(np.int64)[:, None] + start + np.arange(taps_n)[None, :]
    d = np.abs(taps - src[:, None]) * s
    if mode == "linear":
        w = np.clip(1 - d, 0, 1)
    else:
        near = ((a + 2) * d - (a + 3)) * d * d + 1
        far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
        w = np.where(d <= 1, near, np.where(d < 2, far, 0.0))
    w = w / w.sum(axis=1, keepdims=True)
    if exclude:
        w = np.where((taps >= 0) & (taps < size), w, 0.0)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    m = np.zeros((len(src), size), np.float64)
    np.add.at(m, (np.repeat(np.arange(len(src)), taps_n),
                  np.clip(taps, 0, size - 1).reshape(-1)), w.reshape(-1))
    return m.astype(dtype)


def resize(n):
    x = n.x(0)
    mode = n.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        n.invalid(f"unknown mode '{mode}'")
    antialias = n.attr("antialias", 0)
    if antialias not in (0, 1):
        n.invalid(f"attribute 'antialias' must be 0 or 1, got {antialias}")
    policy = n.attr("keep_aspect_ratio_policy", "stretch")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        n.invalid(f"unknown keep_aspect_ratio_policy '{policy}'")
    ctm = n.attr("coordinate_transformation_mode", "half_pixel")
    axes = [a % x.ndim for a in n.attr("axes", range(x.ndim))]
    roi = None
    if ctm == "tf_crop_and_resize":
        roi = n.const(1)
        roi = None if roi is None else np.asarray(roi, np.float64).reshape(-1)
        if roi is None or roi.size != 2 * len(axes):
            n.invalid("tf_crop_and_resize needs a roi with a start and an end per axis")
    scales = n.const(2) if len(n.inputs) > 2 else None
    sizes = n.ints(3) if len(n.inputs) > 3 else None
    if scales is not None and np.asarray(scales).size == 0:
        scales = None
    if (scales is None) == (sizes is None):
        n.invalid("exactly one of scales and sizes must be given")
    if len(scales if sizes is None else sizes) != len(axes):
        n.invalid(f"scales/sizes need one entry per axis of {list(axes)}")
    y = x if x.dtype.is_float else x.astype("float32")
    keep = None      # not_larger / not_smaller: one scale for all axes, from the sizes
    if sizes is not None and policy != "stretch":
        ratios = [s / x.shape[ax] for s, ax in zip(sizes, axes)]
        keep = min(ratios) if policy == "not_larger" else max(ratios)
    for k, ax in enumerate(axes):
        size = x.shape[ax]
        if keep is not None:
            out, scale = int(keep * size + 0.5), keep
        elif sizes is None:
            scale = float(np.asarray(scales, np.float32).reshape(-1)[k])
            out = int(np.floor(size * scale))
        else:
            out = sizes[k]
            scale = float(_F(out) / _F(size))
        if out < 1:
            n.invalid(f"axis {ax} resized to {out} elements")
        if out == size and scale == 1.0 and roi is None:
            continue
        src = _original(n, ctm, out, size, scale,
                        None if roi is None else (roi[k], roi[len(axes) + k]))
        outside = None
        if roi is not None:           # points outside the input take extrapolation_value
            outside = (src < 0) | (src > size - 1)
            src = np.clip(src, 0, size - 1)
        if mode == "nearest":
            idx = _nearest(n, src, n.attr("nearest_mode", "round_prefer_floor"), size)
            y = upsampling.gather_axis(y, ax, idx)
        elif antialias:   # (nearest ignores it, as the ONNX spec says)
            y = upsampling.map_axis(y, ax, _antialias(
                src.astype(np.float64), size, y.dtype.np, scale, mode,
                float(n.attr("cubic_coeff_a", -0.75)), bool(n.attr("exclude_outside", 0))))
        elif mode == "cubic":
            y = upsampling.map_axis(y, ax, _cubic(src.astype(np.float64), size, y.dtype.np,
                                                  float(n.attr("cubic_coeff_a", -0.75)),
                                                  bool(n.attr("exclude_outside", 0))))
        else:
            y = upsampling.map_axis(y, ax, _linear(src, size, y.dtype.np))
        if outside is not None and outside.any():
            shape = [1] * y.ndim
            shape[ax] = out
            y = ops.where(constant(outside.reshape(shape)), constant(np.array(
                n.attr("extrapolation_value", 0.0), y.dtype.np)), y)
    return y if y.dtype == x.dtype else y.astype(x.dtype)


def upsample(n):
    """Upsample (opsets 7 and 9; Resize since 10): scales as an attribute (7) or an input (9),
    asymmetric coordinates, nearest (floor) or linear."""
    x = n.x(0)
    scales = n.attr("scales") if n.opset < 9 else n.const(1)
    mode = n.attr("mode", "nearest")
    if scales is None or len(np.asarray(scales).reshape(-1)) != x.ndim:
        n.invalid(f"needs one scale per axis of {x.type}")
    if mode not in ("nearest", "linear", "bilinear"):
        n.invalid(f"unknown mode '{mode}'")
    y = x if x.dtype.is_float else x.astype("float32")
    for ax, scale in enumerate(np.asarray(scales, np.float32).reshape(-1)):
        size = x.shape[ax]
        out = int(np.floor(size * scale))
        if out == size:
            continue
        src = np.arange(out, dtype=_F) / _F(scale)
        if mode == "nearest":
            y = upsampling.gather_axis(y, ax, np.clip(np.floor(src), 0, size - 1).astype(
                np.int64))
        else:
            y = upsampling.map_axis(y, ax, _linear(src, size, y.dtype.np))
    return y if y.dtype == x.dtype else y.astype(x.dtype)
