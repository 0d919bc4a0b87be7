"""Dropout: `lp.dropout(x, p, key)`, the function, and `lp.nn.Dropout(p)`, the layer.

    y = lp.dropout(x, 0.5, key)      # each element zeroed with probability p, the rest / (1 - p)
    drop = lp.nn.Dropout(0.1)        # PyTorch's layer: the identity in eval mode; in training
                                     # mode a new mask every call, from lp.nn.init.GRAPH_KEY

A `Dropout` layer in training mode splits the process's generator key (lp.nn.manual_seed
resets it) into the next generator key and the key of its mask, and writes the former back
(`Module._assign`) when the compiled call returns; several layers in one model chain their
splits in one trace, so each draws its own mask and the generator advances once per layer per
call, the same on any thread count (lepton/random.py).
"""
from __future__ import annotations

import numpy as np

from ..frontends import ops as _ops
from ..frontends.tensor import fail, lift
from ..random import eager, split, uniform
from . import init
from .module import Module


def _probability(p, what: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
            or not 0 <= p <= 1:
        raise ValueError(f"{what}: dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


@eager
def dropout(x, p, key):
    """Inverted dropout: each element of x is zeroed with probability p (a Python float) and the
    others scaled by 1 / (1 - p), as PyTorch; p = 0 is the identity, p = 1 gives zeros. The
    gradient is the mask times the scale."""
    p = _probability(p, "lp.dropout")
    x = lift(x)
    if not x.dtype.is_float:
        fail("dropout", f"x must be a float tensor, got {x.type}", TypeError)
    if p == 0:
        return x
    if p == 1:
        return _ops.zeros(x.shape, dtype=x.dtype)
    keep = uniform(key, x.shape) < 1.0 - p
    return _ops.where(keep, x * (1.0 / (1.0 - p)), 0.0)


def fresh_key(module: Module):
    """A key for one draw of `module` (which holds `_generator = init.GRAPH_KEY`): the process's
    generator key is split, and the compiled call writes the advanced key back."""
    state, key = split(module._generator)
    module._assign("_generator", state)
    return key


class Dropout(Module):
    """PyTorch's `Dropout(p=0.5, inplace=False)`: `lp.dropout` with a fresh key each call in
    training mode, the identity in eval mode (inplace changes nothing here: results are new
    arrays either way)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        self.p = _probability(p, "Dropout")
        self.inplace = bool(inplace)
        self._generator = init.GRAPH_KEY  # read and advanced by reference at every call

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        return dropout(x, self.p, fresh_key(self))

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
