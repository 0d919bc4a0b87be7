"""Counter-based random numbers: the `philox` op, the whole of the IR's randomness.

    %1: f32[3,4] = philox[shape=(3, 4), dtype=f32] %0      # %0: i32[2], a key

Philox-4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
SC 2011) maps a 2-word key and a 4-word counter to 4 random 32-bit words. The op's result is the
key's *word stream* laid out over the elements in row-major order: block j (counter
(j mod 2**32, j div 2**32, 0, 0)) gives words 4j .. 4j+3, and element e takes word e (i32, f32)
or words 2e, 2e+1 (f64). So each element depends only on the key and its index: a kernel can
compute any range of elements on any thread and get the same bits as this reference.

    dtype i32: the word itself (its bits; the IR has no unsigned type)
    dtype f32: uniform in [0, 1): (word >> 8) * 2**-24, every value exact
    dtype f64: uniform in [0, 1): ((w0 >> 5) * 2**26 + (w1 >> 6)) * 2**-53 (NumPy's 53 bits)

A key is an i32[2] array: the two Philox key words. `lp.random` builds keys, splits them (split
is this op at dtype i32: the new keys are words of the parent's stream, as in JAX), and builds
uniform ranges, normal and bernoulli draws from it with ordinary ops. No gradient flows through.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, dtype as to_dtype, float32, float64, int32
from .base import NONDIFF, OpDef

# The Philox-4x32 constants (Salmon et al. 2011, and Random123's philox.h)
MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
WEYL = (0x9E3779B9, 0xBB67AE85)       # the key schedule's increments (golden ratio, sqrt(3)-1)
ROUNDS = 10
DTYPES = (int32, float32, float64)
KEY_TYPE = TensorType(int32, (2,))
_MASK = np.uint64(0xFFFFFFFF)


def words_per_element(dt) -> int:
    return 2 if dt == float64 else 1


def philox4x32(counters: np.ndarray, key) -> np.ndarray:
    """The 4 output words of each counter: uint32 (4, n) counters, a key of two words (any
    integer dtype; their low 32 bits) -> uint32 (4, n)."""
    c = [np.asarray(w, dtype=np.uint64) for w in counters]
    k = [int(w) & 0xFFFFFFFF for w in key]
    m0, m1 = np.uint64(MULTIPLIERS[0]), np.uint64(MULTIPLIERS[1])
    for r in range(ROUNDS):
        if r:  # the key is bumped between rounds
            k = [(k[0] + WEYL[0]) & 0xFFFFFFFF, (k[1] + WEYL[1]) & 0xFFFFFFFF]
        p0, p1 = c[0] * m0, c[2] * m1          # exact: both factors are below 2**32
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k[0]), p1 & _MASK,
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k[1]), p0 & _MASK]
    return np.stack(c).astype(np.uint32)


def word_stream(key, n_words: int) -> np.ndarray:
    """The first n_words words (uint32) of key's stream (module docstring)."""
    blocks = np.arange(-(-n_words // 4), dtype=np.uint64)
    counters = np.stack([blocks & _MASK, blocks >> np.uint64(32),
                         np.zeros_like(blocks), np.zeros_like(blocks)])
    key_bits = np.asarray(key).astype(np.int64) & 0xFFFFFFFF
    return philox4x32(counters, key_bits).T.reshape(-1)[:n_words]


def _infer(types, a):
    (key,) = types
    if key != KEY_TYPE:
        raise TypeError(f"the key must be {KEY_TYPE} (made by lp.random.key), got {key}")
    dt = a["dtype"]
    if dt not in DTYPES:
        raise TypeError(f"dtype must be one of {', '.join(map(str, DTYPES))}, got {dt}")
    shape = a["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(s, int) for s in shape):
        raise ValueError(f"shape must be a tuple of ints, got {shape!r}")
    return TensorType(to_dtype(dt), shape)


def _ref(xs, a):
    dt, shape = to_dtype(a["dtype"]), a["shape"]
    n = int(np.prod(shape, dtype=np.int64))
    w = word_stream(xs[0].reshape(2), n * words_per_element(dt))
    if dt == int32:
        out = w.view(np.int32)
    elif dt == float32:
        out = ((w >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24))
    else:
        hi = (w[0::2] >> np.uint32(5)).astype(np.float64)
        lo = (w[1::2] >> np.uint32(6)).astype(np.float64)
        out = (hi * 2.0 ** 26 + lo) * 2.0 ** -53
    return out.reshape(shape)


RANDOM = [
    OpDef("philox", "source", 1, ("shape", "dtype"), _infer, _ref, NONDIFF),
]
