"""Initial values of the built-in layers, as PyTorch draws them, and the generator behind them.

Layers draw from `rng=` (a `numpy.random.Generator`) when given, else from this module's
generator, which `manual_seed(n)` resets (like `torch.manual_seed`). `manual_seed` also resets
`GRAPH_KEY`, the generator of the randomness inside compiled training steps (Dropout masks): an
`lp.random` key that the layers split and write back, in place, at every call:

    lp.nn.manual_seed(0); a = lp.nn.Linear(3, 2)
    lp.nn.manual_seed(0); b = lp.nn.Linear(3, 2)   # a and b hold equal arrays
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random

_rng = np.random.default_rng()
# One array for the process, changed only in place: every layer holds it and a compiled
# function reads and writes it by reference (lepton/frontends/capture.py).
GRAPH_KEY = _random.key(int(np.random.SeedSequence().generate_state(1, np.uint64)[0]))


def manual_seed(seed: int) -> None:
    """Reseeds the generator that layers created without `rng=` draw their initial values from,
    and the key that training-mode layers draw their randomness from (`GRAPH_KEY`)."""
    global _rng
    _rng = np.random.default_rng(seed)
    GRAPH_KEY[...] = _random.key(seed)


def _generator(rng) -> np.random.Generator:
    if rng is None:
        return _rng
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _uniform(rng, bound: float, shape) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def _kaiming_uniform(rng, shape, fan_in: int) -> np.ndarray:
    """PyTorch's kaiming_uniform_(w, a=sqrt(5)), the default for Linear and Conv weights:
    gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return _uniform(rng, bound, shape)


def _bias_init(rng, shape, fan_in: int) -> np.ndarray:
    """PyTorch's default bias: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return _uniform(rng, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, shape)


def _positive_int(v, what: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{what} must be a positive int, got {v!r}")
    return int(v)


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise TypeError(f"{what} must be an int or a pair of ints, got {v!r}")
