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
