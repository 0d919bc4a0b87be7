"""LayerNorm."""
from __future__ import annotations

import numpy as np

from ..frontends import nn_ops
from .init import _positive_int
from .module import Module


class LayerNorm(Module):
    """Normalises over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, with
    weight = ones(dim), bias = zeros(dim) at first (PyTorch's elementwise_affine=True)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(f"LayerNorm normalises over the last axis only: "
                                 f"normalized_shape must be an int or (int,), "
                                 f"got {normalized_shape!r}")
            normalized_shape = normalized_shape[0]
        self.dim = _positive_int(normalized_shape, "LayerNorm normalized_shape")
        self.eps = float(eps)
        self.weight = np.ones(self.dim, np.float32) if elementwise_affine else None
        self.bias = np.zeros(self.dim, np.float32) if elementwise_affine else None

    def forward(self, x):
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"LayerNorm({self.dim}) got an input of shape {tuple(x.shape)}")
        return nn_ops.layer_norm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"({self.dim},), eps={self.eps}, elementwise_affine={self.weight is not None}"
