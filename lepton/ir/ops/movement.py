"""Ops that move or select data: reshape, transpose, broadcast_to, slice, concatenate, take,
and the sources `input` and `constant`."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, dtype as to_dtype
from .base import OpDef, broadcast_shapes, same_dtype


def _reshape(types, a):
    (t,) = types
    shape = a["shape"]
    if any(s < 0 for s in shape) or TensorType(t.dtype, shape).size != t.size:
        raise ValueError(f"cannot reshape {t} to {list(shape)}")
    return TensorType(t.dtype, shape)


def _transpose(types, a):
    (t,) = types
    if sorted(a["perm"]) != list(range(t.ndim)):
        raise ValueError(f"perm={a['perm']} is not a permutation of {t.ndim} axes")
    return TensorType(t.dtype, tuple(t.shape[p] for p in a["perm"]))


def _broadcast_to(types, a):
    (t,) = types
    shape = a["shape"]
    if len(shape) < t.ndim or broadcast_shapes(t.shape, shape) != shape:
        raise ValueError(f"cannot broadcast {t} to {list(shape)}")
    return TensorType(t.dtype, shape)


def slice_len(start: int, stop: int, step: int) -> int:
    return len(range(start, stop, step))


def _slice(types, a):
    (t,) = types
    starts, stops, steps = a["starts"], a["stops"], a["steps"]
    if not len(starts) == len(stops) == len(steps) == t.ndim:
        raise ValueError(f"slice needs starts/stops/steps of length {t.ndim}")
    shape = []
    for n, b, e, s in zip(t.shape, starts, stops, steps):
        if s == 0 or not (0 <= b <= n if s > 0 else -1 <= b < n) or not -1 <= e <= n:
            raise ValueError(f"bad slice {b}:{e}:{s} of a dimension of size {n}")
        shape.append(slice_len(b, e, s))
    return TensorType(t.dtype, tuple(shape))


def _slice_ref(xs, a):
    x = xs[0]  # range() semantics per axis (start -1 with a negative step is empty)
    for k, (b, e, s) in enumerate(zip(a["starts"], a["stops"], a["steps"])):
        x = np.take(x, np.arange(b, e, s, dtype=np.int64), axis=k)
    return x


def _concatenate(types, a):
    dt = same_dtype(types)
    ax, first = a["axis"], types[0]
    if not 0 <= ax < first.ndim:
        raise ValueError(f"axis={ax} out of range for {first}")
    for t in types:
        if t.ndim != first.ndim or any(t.shape[i] != first.shape[i]
                                       for i in range(t.ndim) if i != ax):
            raise ValueError(f"cannot concatenate {first} and {t} along axis {ax}")
    shape = list(first.shape)
    shape[ax] = sum(t.shape[ax] for t in types)
    return TensorType(dt, tuple(shape))


def _take(types, a):
    x, idx = types
    ax = a["axis"]
    if not 0 <= ax < x.ndim:
        raise ValueError(f"axis={ax} out of range for {x}")
    if not idx.dtype.is_int:
        raise TypeError(f"take's indices must be integers, got {idx}")
    return TensorType(x.dtype, x.shape[:ax] + idx.shape + x.shape[ax + 1:])


def _take_ref(xs, a):
    x, idx = xs
    n = x.shape[a["axis"]]
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"take: index out of range for axis of size {n}")
    return np.take(x, idx, axis=a["axis"])


def _constant(types, a):
    v = a["value"]
    if not isinstance(v, np.ndarray):
        raise TypeError("constant's value must be a NumPy array")
    return TensorType(to_dtype(v.dtype), v.shape)


def _no_ref(xs, a):
    raise RuntimeError("input values are bound by the interpreter, not computed")


MOVEMENT = [
    OpDef("input", "source", 0, (), lambda types, a: None, _no_ref),
    OpDef("constant", "source", 0, ("value",), _constant, lambda xs, a: a["value"]),
    OpDef("reshape", "movement", 1, ("shape",), _reshape,
          lambda xs, a: xs[0].reshape(a["shape"])),
    OpDef("transpose", "movement", 1, ("perm",), _transpose,
          lambda xs, a: xs[0].transpose(a["perm"])),
    OpDef("broadcast_to", "movement", 1, ("shape",), _broadcast_to,
          lambda xs, a: np.broadcast_to(xs[0], a["shape"])),
    OpDef("slice", "movement", 1, ("starts", "stops", "steps"), _slice, _slice_ref),
    OpDef("concatenate", "movement", None, ("axis",), _concatenate,
          lambda xs, a: np.concatenate(xs, axis=a["axis"])),
    OpDef("take", "movement", 2, ("axis",), _take, _take_ref),
]
