"""Upsample and its two fixed-mode forms, PyTorch's parameter-free layers over `lp.interpolate`.

    >>> up = Upsample(scale_factor=2, mode="bilinear")    # (N, C, H, W) -> (N, C, 2H, 2W)
"""
from __future__ import annotations

from ..frontends import upsampling
from .module import Module


class Upsample(Module):
    """`lp.interpolate(x, size, scale_factor, mode, align_corners, recompute_scale_factor)`
    as a layer: modes 'nearest', 'nearest-exact', 'linear', 'bilinear', 'trilinear'."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        # PyTorch keeps the factor as a float (or a tuple of floats)
        if isinstance(scale_factor, (tuple, list)):
            scale_factor = tuple(float(s) for s in scale_factor)
        elif scale_factor is not None:
            scale_factor = float(scale_factor)
        self.scale_factor = scale_factor
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x):
        return upsampling.interpolate(x, self.size, self.scale_factor, self.mode,
                                      self.align_corners, self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = (f"size={self.size}" if self.scale_factor is None
                else f"scale_factor={self.scale_factor}")
        return f"{what}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Upsample(size, scale_factor, mode='nearest') (PyTorch's layer of that name)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Upsample(size, scale_factor, mode='bilinear', align_corners=True) (PyTorch's layer)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
