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
