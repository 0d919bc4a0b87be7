"""Random numbers in the graph: counter-based (Philox-4x32-10), so a compiled function, the
interpreter and NumPy code outside any trace draw the same bits, on any number of threads.

    key = lp.random.key(0)                      # an int32[2] NumPy array
    k1, k2 = lp.random.split(key)               # two new keys (split(key, n): n of them)
    u = lp.random.uniform(k1, (3, 4))           # f32 in [0, 1)
    z = lp.random.normal(k2, (3, 4), lp.float64)
    m = lp.random.bernoulli(k1, 0.9, (3, 4))    # bool, True with probability 0.9

As in JAX, randomness is a function of the key: the same key gives the same numbers, so a
program splits a key for each independent draw and never reuses one. A key is a small array
like any other: pass it to a compiled function as an argument (a new key each call gives new
numbers, with no new compile), or make it inside one from a traced int32 seed. Outside a trace
every function here returns NumPy arrays, computed by the IR's NumPy reference.

The IR has one random op, `philox` (lepton/ir/ops/random.py, which defines the word stream):
uniform, normal (Box-Muller) and bernoulli are built from it with ordinary ops.
"""
from __future__ import annotations

import functools
import inspect
import math

import numpy as np

from .frontends import ops as _ops
from .frontends.pytree import tree_flatten, tree_unflatten
from .frontends.shapes import _shape_arg
from .frontends.tensor import Tensor, current_graph, emit, fail, lift
from .frontends.trace import trace_flat
from .ir.interpreter import interpret
from .ir.ops.random import KEY_TYPE
from .ir.types import dtype as to_dtype, float32, int32

__all__ = ["key", "split", "uniform", "normal", "bernoulli"]


def eager(fn):
    """Outside any trace, `fn` runs on a graph of its own (its NumPy array arguments are the
    graph's inputs) through the NumPy interpreter and returns NumPy arrays: one definition
    serves traced and eager calls."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if current_graph() is not None or any(isinstance(a, Tensor) for a in args):
            return fn(*args, **kwargs)
        bound = sig.bind(*args, **kwargs)
        arrays = {k: v for k, v in bound.arguments.items() if isinstance(v, np.ndarray)}
        static = {k: v for k, v in bound.arguments.items() if k not in arrays}
        g, _, out_tree = trace_flat(lambda a: fn(**static, **a), (arrays,))
        return tree_unflatten(out_tree, interpret(g, *tree_flatten(arrays)[0]))
    return run


def key(seed) -> np.ndarray | Tensor:
    """A key from an integer seed: int32[2] holding the seed's low and high 32-bit words (a
    Python int in [-2**63, 2**64)). A traced int32 seed (inside a compiled function) gives a
    traced key, equal to the one its value would give."""
    if isinstance(seed, np.ndarray) and seed.ndim == 0 and seed.dtype.kind in "iu" \
            and current_graph() is None:
        seed = int(seed)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        s = int(seed)
        if not -2 ** 63 <= s < 2 ** 64:
            raise ValueError(f"lp.random.key: seed {s} does not fit in 64 bits")
        s &= 2 ** 64 - 1
        return np.array([s & 0xFFFFFFFF, s >> 32], dtype=np.uint32).view(np.int32)
    if not isinstance(seed, Tensor) and current_graph() is None:
        raise TypeError(f"lp.random.key: the seed must be an integer, got {seed!r:.60}")
    s = lift(seed)
    if s.shape != () or s.dtype != int32:
        fail("random.key", f"a traced seed must be a 0-d int32 tensor, got {s.type} (a Python "
             f"int may be any 64-bit seed)", TypeError)
    return _ops.stack([s, _ops.where(s < 0, -1, 0).astype(int32)])


def _key(k, op: str) -> Tensor:
    k = lift(k)
    if k.type != KEY_TYPE:
        fail(op, f"the key must be {KEY_TYPE}, as lp.random.key and split make, got {k.type}",
             TypeError)
    return k


def _float_dtype(dtype, op: str):
    dt = to_dtype(dtype)
    if not dt.is_float:
        fail(op, f"dtype must be a float type, got {dt}", TypeError)
    return dt


def _philox(key, shape, dtype, op: str) -> Tensor:
    """The philox op: key's word stream over `shape` as int32 words or uniform [0, 1) floats."""
    return emit("philox", [_key(key, op)], shape=_shape_arg(shape, op), dtype=dtype)


@eager
def split(key, num: int = 2):
    """`num` new keys (an int32[num, 2] array) from `key`: `k1, k2 = lp.random.split(key)`."""
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or num < 1:
        fail("random.split", f"num must be a positive int, got {num!r}", ValueError)
    return _philox(key, (int(num), 2), int32, "random.split")


@eager
def uniform(key, shape=(), dtype=float32, minval=0.0, maxval=1.0):
    """Floats uniform in [minval, maxval) (as JAX: rounding may give maxval itself when the
    range is not [0, 1)); minval and maxval broadcast to `shape`."""
    dt = _float_dtype(dtype, "random.uniform")
    u = _philox(key, shape, dt, "random.uniform")
    if _is_number(minval, 0) and _is_number(maxval, 1):
        return u  # exact: no arithmetic
    lo, hi = lift(minval, dt), lift(maxval, dt)
    return _ops.maximum(_ops.broadcast_to(lo, u.shape), u * (hi - lo) + lo)


@eager
def normal(key, shape=(), dtype=float32):
    """Standard normal floats, by the Box-Muller transform of two uniform draws:
    sqrt(-2 log(1 - u1)) * cos(2 pi u2) (1 - u1 is never 0)."""
    dt = _float_dtype(dtype, "random.normal")
    u = _philox(key, (2,) + _shape_arg(shape, "random.normal"), dt, "random.normal")
    radius = _ops.sqrt(_ops.log(1.0 - u[0]) * -2.0)
    return radius * _ops.cos(u[1] * (2 * math.pi))


@eager
def bernoulli(key, p=0.5, shape=None):
    """Booleans, True with probability p (p broadcasts to `shape`, which defaults to p's)."""
    p = lift(p)
    if not p.dtype.is_float:
        p = p.astype(float32)
    shape = p.shape if shape is None else _shape_arg(shape, "random.bernoulli")
    u = _philox(key, shape, p.dtype, "random.bernoulli")
    return u < _ops.broadcast_to(p, shape)


def _is_number(x, value) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) \
        and x == value

