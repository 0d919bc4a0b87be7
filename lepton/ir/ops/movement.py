"""Ops that move or select data: reshape, transpose, broadcast_to, slice, concatenate, take,
the sources `input` and `constant`, and the two that gradients need: `pad` (zeros around and
between elements; the transpose of a strided slice) and `scatter_add` (the transpose of take).
`check_index` guards every gather the frontends emit: indices are data, checked when the
program runs (an IndexError naming the gather and the user's line), never trusted.

    pad[lo=(1,), hi=(0,), interior=(1,)] [a, b, c]          -> [0, a, 0, b, 0, c]
    scatter_add[axis=0, size=4] [u0, u1, u2], idx [3, 0, 3] -> [u1, 0, 0, u0 + u2]
    check_index[bound=5, wrap=True, what="take"] [4, -1]    -> [4, 4]   ([5] raises IndexError)

Each VJP rule is the op's transpose (these ops are linear in their data input)."""
from __future__ import annotations

import math

import numpy as np

from ..types import TensorType, bool_, dtype as to_dtype, of_numpy
from .base import NONDIFF, OpDef, broadcast_shapes, same_dtype


def _reshape(types, a):
    (t,) = types
    shape = a["shape"]
    if any([s < 0 for s in shape]) or math.prod(shape) != t.size:
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


def _check_index(types, a):
    (t,) = types
    if not t.dtype.is_int:
        raise TypeError(f"indices must be integers, got {t}")
    if a["bound"] < 0 or not isinstance(a["wrap"], bool) or not isinstance(a["what"], str):
        raise ValueError("check_index needs bound >= 0, wrap a bool and what a string, got "
                         f"{a}")
    return t


def index_error(a, index: str = "") -> str:
    """The message of a failed check_index, without the user's line (callers append it); the
    interpreter names the bad index, compiled code does not know it."""
    n = a["bound"]
    return f"index {index}out of range [{-n if a['wrap'] else 0}, {n}) in op '{a['what']}'"


def _check_index_ref(xs, a):
    idx, n = xs[0], a["bound"]
    bad = (idx < (-n if a["wrap"] else 0)) | (idx >= n)
    if bad.any():
        raise IndexError(index_error(a, f"{idx[bad].reshape(-1)[0]} "))
    return np.where(idx < 0, idx + n, idx).astype(idx.dtype)


def _pad(types, a):
    (t,) = types
    lo, hi, interior = a["lo"], a["hi"], a["interior"]
    if not len(lo) == len(hi) == len(interior) == t.ndim:
        raise ValueError(f"pad needs lo/hi/interior of length {t.ndim}")
    if min(lo + hi + interior, default=0) < 0:
        raise ValueError(f"pad amounts must be >= 0, got lo={lo} hi={hi} interior={interior}")
    return TensorType(t.dtype, tuple(pad_len(n, l, h, i)
                                     for n, l, h, i in zip(t.shape, lo, hi, interior)))


def pad_len(n: int, lo: int, hi: int, interior: int) -> int:
    return lo + n + max(n - 1, 0) * interior + hi


def pad_slices(shape, lo, interior) -> tuple[slice, ...]:
    """Where the input's elements land in pad's output, as NumPy slices."""
    return tuple(slice(l, l + (n - 1) * (i + 1) + 1, i + 1) if n else slice(0, 0)
                 for n, l, i in zip(shape, lo, interior))


def _pad_ref(xs, a):
    x = xs[0]
    out = np.zeros(_pad((TensorType.of(x),), a).shape, x.dtype)
    out[pad_slices(x.shape, a["lo"], a["interior"])] = x
    return out


def _scatter_add(types, a):
    u, idx = types
    ax, size = a["axis"], a["size"]
    if not idx.dtype.is_int:
        raise TypeError(f"scatter_add's indices must be integers, got {idx}")
    if u.dtype == bool_:
        raise TypeError(f"scatter_add needs numbers, got {u}")
    if ax < 0 or ax + idx.ndim > u.ndim or u.shape[ax:ax + idx.ndim] != idx.shape:
        raise ValueError(f"scatter_add: updates {u} must have the indices' shape {idx} "
                         f"at axis {ax}")
    if size < 0:
        raise ValueError(f"scatter_add: size must be >= 0, got {size}")
    return TensorType(u.dtype, u.shape[:ax] + (size,) + u.shape[ax + idx.ndim:])


def _index_range_check(idx, n, op):
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"{op}: index out of range for axis of size {n}")


def _scatter_add_ref(xs, a):
    u, idx = xs
    ax, n = a["axis"], a["size"]
    _index_range_check(idx, n, "scatter_add")
    before = int(np.prod(u.shape[:ax]))
    out = np.zeros(_scatter_add((TensorType.of(u), TensorType.of(idx)), a).shape, u.dtype)
    flat = np.where(idx < 0, idx + n, idx).reshape(-1)
    np.add.at(out.reshape(before, n, -1), (slice(None), flat),
              u.reshape(before, flat.size, -1))
    return out


# -- VJP rules ---------------------------------------------------------------------------------
def _transpose_vjp(e, out, ct):
    inverse = [0] * len(out.attrs["perm"])
    for i, p in enumerate(out.attrs["perm"]):
        inverse[p] = i
    return (e.transpose(ct, inverse),)


def _slice_vjp(e, out, ct):
    """The cotangent placed back where the slice read it, zeros elsewhere: a pad whose
    interior is the step; negative steps read backwards, so ct is reversed first."""
    x = out.inputs[0]
    if out.type.size == 0:
        return (e.zeros(x.type),)
    lo, hi, interior, flip = [], [], [], []
    for n, b, s, m in zip(x.shape, out.attrs["starts"], out.attrs["steps"], out.shape):
        first = b if s > 0 else b + (m - 1) * s
        lo.append(first)
        hi.append(n - 1 - (first + (m - 1) * abs(s)))
        interior.append(abs(s) - 1)
        flip.append(s < 0)
    if any(flip):
        ct = e.slice(ct, [m - 1 if f else 0 for m, f in zip(out.shape, flip)],
                     [-1 if f else m for m, f in zip(out.shape, flip)],
                     [-1 if f else 1 for f in flip])
    return (e.pad(ct, lo, hi, interior),)


def _concatenate_vjp(e, out, ct):
    ax, start, cts = out.attrs["axis"], 0, []
    for x in out.inputs:
        stops = list(ct.shape)
        starts = [0] * ct.type.ndim
        starts[ax], stops[ax] = start, start + x.shape[ax]
        cts.append(e.slice(ct, starts, stops, (1,) * ct.type.ndim))
        start += x.shape[ax]
    return tuple(cts)


def _pad_vjp(e, out, ct):
    x = out.inputs[0]
    sl = pad_slices(x.shape, out.attrs["lo"], out.attrs["interior"])
    return (e.slice(ct, [s.start for s in sl], [s.stop for s in sl], [s.step or 1 for s in sl]),)


def _take_vjp(e, out, ct):
    x, idx = out.inputs
    ax = out.attrs["axis"]
    return e.op("scatter_add", ct, idx, axis=ax, size=x.shape[ax]), None


def _scatter_add_vjp(e, out, ct):
    return e.op("take", ct, out.inputs[1], axis=out.attrs["axis"]), None


def _constant(types, a):
    v = a["value"]
    if not isinstance(v, np.ndarray):
        raise TypeError("constant's value must be a NumPy array")
    return TensorType(of_numpy(v.dtype) or to_dtype(v.dtype), v.shape)


def _no_ref(xs, a):
    raise RuntimeError("input values are bound by the interpreter, not computed")


MOVEMENT = [
    OpDef("input", "source", 0, (), lambda types, a: None, _no_ref, NONDIFF, kernel=False),
    OpDef("constant", "source", 0, ("value",), _constant, lambda xs, a: a["value"], NONDIFF,
          kernel=False),
    # a free view: it shares its input's (dense, row-major) buffer
    OpDef("reshape", "movement", 1, ("shape",), _reshape,
          lambda xs, a: xs[0].reshape(a["shape"]),
          lambda e, out, ct: (e.reshape(ct, out.inputs[0].shape),), kernel=False),
    OpDef("transpose", "movement", 1, ("perm",), _transpose,
          lambda xs, a: xs[0].transpose(a["perm"]), _transpose_vjp),
    OpDef("broadcast_to", "movement", 1, ("shape",), _broadcast_to,
          lambda xs, a: np.broadcast_to(xs[0], a["shape"]),
          lambda e, out, ct: (e.sum_to(ct, out.inputs[0].shape),)),
    OpDef("slice", "movement", 1, ("starts", "stops", "steps"), _slice, _slice_ref, _slice_vjp),
    OpDef("concatenate", "movement", None, ("axis",), _concatenate,
          lambda xs, a: np.concatenate(xs, axis=a["axis"]), _concatenate_vjp),
    OpDef("take", "movement", 2, ("axis",), _take, _take_ref, _take_vjp),
    OpDef("check_index", "check", 1, ("bound", "wrap", "what"), _check_index, _check_index_ref,
          NONDIFF, runtime_error=index_error),
    OpDef("pad", "movement", 1, ("lo", "hi", "interior"), _pad, _pad_ref, _pad_vjp),
    OpDef("scatter_add", "movement", 2, ("axis", "size"), _scatter_add, _scatter_add_ref,
          _scatter_add_vjp),
]
