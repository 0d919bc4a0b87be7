"""ONNX's sampling grids: AffineGrid (a constant base grid times theta) and GridSample
(bilinear, nearest or bicubic sampling at traced coordinates, as gathers from the flattened
input with the padding mode applied to the indices).

    AffineGrid(theta[N,2,3], size=(N,C,H,W))  ->  base[H*W,3] @ theta^T  ->  grid[N,H,W,2]
    GridSample(x[N,C,H,W], grid[N,h,w,2])     ->  sum over the 2**2 (bilinear) / 4**2 (bicubic)
        neighbours of weight * take(x[N*C, H*W], flat index)   (out-of-range: 0, or clamped
        / reflected indices by padding_mode)
"""
from __future__ import annotations

import math

import numpy as np

from ...ir.types import int64
from .. import ops
from ..tensor import Tensor, cast, constant, emit
from . import elementwise as ew


def _base_coords(size: int, align_corners: bool) -> np.ndarray:
    """Normalised [-1, 1] coordinates of `size` points (pixel centres, or corners)."""
    if align_corners:
        return np.linspace(-1.0, 1.0, size) if size > 1 else np.zeros(1)
    return (2 * np.arange(size) + 1) / size - 1


def affine_grid(n) -> Tensor:
    theta, size = n.x(0), n.ints(1)
    k = len(size) - 2          # spatial dims: 2 or 3
    if k not in (2, 3) or theta.shape != (size[0], k, k + 1):
        n.invalid(f"theta {theta.type} does not fit size {list(size)} (wants "
                  f"[N, {k}, {k + 1}] for {k}-d)")
    spatial = size[2:]
    ac = bool(n.attr("align_corners", 0))
    # base points (x, y[, z], 1), x along the last axis
    axes = np.meshgrid(*[_base_coords(s, ac) for s in spatial], indexing="ij")
    base = np.stack([a.reshape(-1) for a in reversed(axes)] + [np.ones(math.prod(spatial))], 1)
    base = constant(base.astype(theta.dtype.np))                       # [P, k+1]
    grid = ops.matmul(base, ops.swapaxes(theta, 1, 2))                  # [N, P, k]
    return grid.reshape((size[0],) + tuple(spatial) + (k,))


_MODES = {"bilinear": "linear", "linear": "linear", "nearest": "nearest", "bicubic": "cubic",
          "cubic": "cubic"}


def _reflect(x: Tensor, lo: float, hi: float) -> Tensor:
    """x folded into [lo, hi] by reflecting at the nearer border until inside (ONNX's
    reference: the count of whole spans decides which border the remainder starts from)."""
    span = hi - lo
    below, above = lo - x, x - hi
    dx = ops.maximum(below, above)                 # distance outside (> 0 when outside)
    k = ew.floor(dx / span)
    r = dx - k * span
    odd = (k - 2 * ew.floor(k / 2)) > 0.5
    from_low = ops.where(odd, hi - r, lo + r)      # outside below: even -> lo + r
    from_high = ops.where(odd, lo + r, hi - r)     # outside above: even -> hi - r
    return ops.where(below > 0, from_low, ops.where(above > 0, from_high, x))


def _cubic_weights(t: Tensor) -> list[Tensor]:
    """Keys' cubic convolution weights (a = -0.75) of the 4 neighbours x0-1 .. x0+2."""
    a = -0.75

    def near(d):    # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):     # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def grid_sample(n) -> Tensor:
    x, grid = n.x(0), n.x(1)
    k = x.ndim - 2
    mode = _MODES.get(n.attr("mode", "linear" if n.opset >= 20 else "bilinear"))
    pad = n.attr("padding_mode", "zeros")
    if mode is None or pad not in ("zeros", "border", "reflection"):
        n.invalid(f"unknown mode '{n.attr('mode')}' or padding_mode '{pad}'")
    if k < 1 or grid.ndim != k + 2 or grid.shape[0] != x.shape[0] or grid.shape[-1] != k:
        n.invalid(f"grid {grid.type} does not fit input {x.type} (wants [N, ..., {k}])")
    ac = bool(n.attr("align_corners", 0))
    sizes = x.shape[2:]
    batch, chans = x.shape[:2]
    out = grid.shape[1:-1]
    g = cast(grid, x.dtype)
    coords = []
    for i, s in enumerate(sizes):             # grid's last axis is (x, y, z): reversed dims
        v = g[..., k - 1 - i]
        v = (v + 1) * ((s - 1) / 2) if ac else ((v + 1) * s - 1) / 2
        if mode == "nearest":
            v = ew.round_half_even(v)
        lo, hi = (0.0, s - 1.0) if ac else (-0.5, s - 0.5)
        if pad == "border" and mode != "cubic":
            # cubic: only the taps are clamped, as PyTorch and onnxruntime do (onnx's
            # reference also clamps the point, which moves the outer taps inside)
            v = ops.where((v < lo) | (v > hi), ops.clip(v, 0.0, s - 1.0), v)
        elif pad == "reflection":
            v = _reflect(v, lo, hi)
        coords.append(v)

    def fetch(idx: Tensor, i: int) -> tuple[Tensor, Tensor | None]:
        """(index in range, validity or None) of integer-valued float indices along dim i."""
        s = sizes[i]
        if pad == "zeros":
            return ops.clip(idx, 0.0, s - 1.0), (idx >= 0) & (idx <= s - 1)
        if pad == "reflection":
            lo, hi = (0.0, s - 1.0) if ac else (-0.5, s - 0.5)
            idx = ew.floor(_reflect(idx, lo, hi))
        return ops.clip(idx, 0.0, s - 1.0), None

    # per dim: [(index, weight)] of the neighbours
    taps = []
    for i, v in enumerate(coords):
        if mode == "nearest":
            taps.append([(ops.where(v < 0, ew.ceil(v), ew.floor(v)), None)])   # trunc
            continue
        x0 = ew.floor(v)
        t = v - x0
        if mode == "linear":
            taps.append([(x0, 1 - t), (x0 + 1, t)])
        else:
            taps.append([(x0 + (j - 1), w) for j, w in enumerate(_cubic_weights(t))])

    flat_x = x.reshape((batch, chans, -1)).transpose((0, 2, 1)).reshape((-1, chans))
    base = constant((np.arange(batch) * math.prod(sizes)).reshape((batch,) + (1,) * len(out)))
    strides = [math.prod(sizes[i + 1:]) for i in range(k)]
    y = None
    for combo in np.ndindex(*[len(t) for t in taps]):
        flat, weight, valid = None, None, None
        for i, j in enumerate(combo):
            idx, w = taps[i][j]
            idx, ok = fetch(idx, i)
            part = cast(idx, int64) * strides[i]
            flat = part if flat is None else flat + part
            if w is not None:
                weight = w if weight is None else weight * w
            if ok is not None:
                valid = ok if valid is None else valid & ok
        vals = emit("take", [flat_x, (flat + base).reshape(-1)], axis=0)
        vals = vals.reshape((batch,) + out + (chans,))
        if valid is not None:
            weight = cast(valid, x.dtype) if weight is None else ops.where(valid, weight, 0.0)
        term = vals if weight is None else vals * weight.reshape(weight.shape + (1,))
        y = term if y is None else y + term
    return ops.transpose(y, (0, k + 1) + tuple(range(1, k + 1)))


def _bilinear(rows: Tensor, base: Tensor, h: Tensor, w: Tensor, size: tuple) -> Tensor:
    """Bilinear samples at pixel coordinates (h, w) (zero outside the image) from `rows`
    [images * H * W, C]; base: each point's image offset (image index * H * W). Returns
    h.shape + (C,)."""
    hh, ww = size
    h0, w0 = ew.floor(h), ew.floor(w)
    out = None
    for dh in (0, 1):
        for dw in (0, 1):
            y, x = h0 + dh, w0 + dw
            wt = (1 - ops.abs(h - y)) * (1 - ops.abs(w - x))
            ok = (y >= 0) & (y <= hh - 1) & (x >= 0) & (x <= ww - 1)
            idx = cast(ops.clip(y, 0.0, hh - 1.0), int64) * ww + cast(
                ops.clip(x, 0.0, ww - 1.0), int64) + base
            vals = emit("take", [rows, idx.reshape(-1)], axis=0).reshape(h.shape + (
                rows.shape[1],))
            term = vals * ops.where(ok, wt, 0.0).reshape(h.shape + (1,))
            out = term if out is None else out + term
    return out


def deform_conv(n) -> Tensor:
    """DeformConv (2-d): each kernel tap samples the input bilinearly at its offset position
    (times the mask), giving im2col columns; then the grouped conv is a batched matmul."""
    x, wgt, off = n.x(0), n.x(1), n.x(2)
    if x.ndim != 4:
        n.unsupported(f"only 2-d DeformConv is supported, got input {x.type}")
    bias, mask = n.opt(3), n.opt(4)
    nb, c, hh, ww = x.shape
    oc, cpg, kh, kw = wgt.shape
    g, og = n.attr("group", 1), n.attr("offset_group", 1)
    sh, sw = n.attr("strides") or (1, 1)
    dh, dw = n.attr("dilations") or (1, 1)
    pads = n.attr("pads") or (0, 0, 0, 0)
    oh, ow = off.shape[2:]
    k = kh * kw
    if cpg * g != c or oc % g or c % og or off.shape[:2] != (nb, og * 2 * k):
        n.invalid(f"input {x.type}, weights {wgt.type}, offset {off.type}, group {g} and "
                  f"offset_group {og} do not fit together")
    if (oh, ow) != ((hh + pads[0] + pads[2] - (kh - 1) * dh - 1) // sh + 1,
                    (ww + pads[1] + pads[3] - (kw - 1) * dw - 1) // sw + 1):
        n.invalid(f"offset {off.type}'s output size does not fit the input, kernel, pads, "
                  f"strides and dilations")
    off = off.reshape((nb, og, kh, kw, 2, oh, ow))
    ii, jj, yy, xx = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(oh), np.arange(ow),
                                 indexing="ij")
    ph = constant((yy * sh - pads[0] + ii * dh).astype(x.dtype.np)) + off[:, :, :, :, 0]
    pw = constant((xx * sw - pads[1] + jj * dw).astype(x.dtype.np)) + off[:, :, :, :, 1]
    cog = c // og
    rows = x.reshape((nb, og, cog, hh * ww)).transpose((0, 1, 3, 2)).reshape((-1, cog))
    base = constant((np.arange(nb * og) * hh * ww).reshape(nb, og, 1, 1, 1, 1))
    cols = _bilinear(rows, base, ph, pw, (hh, ww))               # [N, OG, kh, kw, oh, ow, Cog]
    if mask is not None:
        cols = cols * mask.reshape((nb, og, kh, kw, oh, ow, 1))
    cols = cols.transpose((0, 1, 6, 2, 3, 4, 5)).reshape((nb, g, cpg * k, oh * ow))
    y = ops.matmul(wgt.reshape((g, oc // g, cpg * k)), cols).reshape((nb, oc, oh, ow))
    return y if bias is None else y + bias.reshape((1, oc, 1, 1))


def _roi_axis(start: Tensor, bins: Tensor, out: int, grid: int, size: int):
    """Along one axis of RoiAlign: (low index, high index, low weight, high weight, inside)
    of the [R, out, grid] sample points, as ONNX's reference computes them."""
    steps = constant(((np.arange(grid) + 0.5) / grid).reshape(1, 1, grid).astype(
        start.dtype.np))
    cells = constant(np.arange(out).reshape(1, out, 1).astype(start.dtype.np))
    p = start.reshape(-1, 1, 1) + (cells + steps) * bins.reshape(-1, 1, 1)
    inside = (p >= -1.0) & (p <= float(size))
    p = ops.maximum(p, 0.0)
    low = ew.floor(p)
    last = low >= size - 1
    low = ops.where(last, float(size - 1), low)
    high = ops.where(last, low, low + 1)
    frac = ops.where(last, 0.0, p - low)
    return cast(low, int64), cast(high, int64), 1 - frac, frac, inside


def roi_align(n) -> Tensor:
    """RoiAlign: per ROI a grid of out_h x out_w bins, sampling_ratio**2 bilinear samples in
    each (gathers from the image the ROI's batch index names), averaged or maxed."""
    x, rois, bidx = n.x(0), n.x(1), n.x(2)
    mode = n.attr("mode", "avg")
    oh, ow = n.attr("output_height", 1), n.attr("output_width", 1)
    ratio = n.attr("sampling_ratio", 0)
    if ratio <= 0:
        n.unsupported("sampling_ratio 0 (a sample count per bin from each ROI's size, a "
                      "data-dependent shape) is not supported; give sampling_ratio > 0")
    if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4 or mode not in ("avg", "max"):
        n.invalid(f"needs X [N, C, H, W], rois [R, 4] and mode avg/max, got {x.type}, "
                  f"{rois.type}, '{mode}'")
    half = n.attr("coordinate_transformation_mode",
                  "half_pixel" if n.opset >= 16 else "output_half_pixel") == "half_pixel"
    nb, c, hh, ww = x.shape
    r = rois.shape[0]
    box = cast(rois, x.dtype) * float(n.attr("spatial_scale", 1.0)) - (0.5 if half else 0.0)
    x0, y0, x1, y1 = (box[:, i] for i in range(4))
    rw, rh = x1 - x0, y1 - y0
    if not half:
        rw, rh = ops.maximum(rw, 1.0), ops.maximum(rh, 1.0)
    ylo, yhi, wy0, wy1, yin = _roi_axis(y0, rh / oh, oh, ratio, hh)      # [R, oh, g]
    xlo, xhi, wx0, wx1, xin = _roi_axis(x0, rw / ow, ow, ratio, ww)      # [R, ow, g]
    shape_y, shape_x = (r, oh, ratio, 1, 1), (r, 1, 1, ow, ratio)
    inside = yin.reshape(shape_y) & xin.reshape(shape_x)
    rows = x.transpose((0, 2, 3, 1)).reshape((-1, c))
    base = (cast(bidx, int64) * (hh * ww)).reshape((r, 1, 1, 1, 1))
    terms = []
    for yi, wy in ((ylo, wy0), (yhi, wy1)):
        for xi, wx in ((xlo, wx0), (xhi, wx1)):
            idx = yi.reshape(shape_y) * ww + xi.reshape(shape_x) + base
            vals = emit("take", [rows, idx.reshape(-1)], axis=0).reshape(
                (r, oh, ratio, ow, ratio, c))
            wt = ops.where(inside, wy.reshape(shape_y) * wx.reshape(shape_x), 0.0)
            terms.append(vals * wt.reshape(wt.shape + (1,)))
    if mode == "avg":
        y = ops.sum(terms[0] + terms[1] + terms[2] + terms[3], axis=(2, 4)) * (1.0 / ratio ** 2)
    else:   # the reference's max: of the weighted corner values, over the samples
        m = ops.maximum(ops.maximum(terms[0], terms[1]), ops.maximum(terms[2], terms[3]))
        y = ops.max(m, axis=(2, 4))
    return y.transpose((0, 3, 1, 2))
