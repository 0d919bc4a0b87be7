"""Shape ops and indexing on traced tensors, with NumPy's semantics, lowered to the IR's
`reshape`, `transpose`, `broadcast_to`, `slice`, `concatenate` and `take`.

    >>> x[1:, ::-2, None]        # slice[starts=(1,4),stops=(3,-1),steps=(1,-2)] then reshape
    >>> x[:, idx]                # take[axis=1] with idx an integer tensor or array
    >>> split(x, [2, 5], axis=1) # three slices

The IR takes only canonical forms (non-negative sorted axes, slices normalised like `range`), so
this module normalises axes, resolves -1 in shapes and drops ops that would do nothing.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import int64
from .tensor import Tensor, cast, emit, fail, lift, lift_all


# -- axis helpers (shared with ops.py) ---------------------------------------------------------
def norm_axis(axis, ndim: int, op: str) -> int:
    """A non-negative axis in [0, ndim); NumPy accepts -ndim..ndim-1."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        fail(op, f"axis must be an int, got {axis!r}", TypeError)
    if not -ndim <= axis < ndim:
        fail(op, f"axis {axis} is out of bounds for a tensor of dimension {ndim}")
    return int(axis) % ndim


def norm_axes(axis, ndim: int, op: str) -> tuple[int, ...]:
    """Sorted non-negative axes; axis=None means all of them."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:     # the common case: one axis
        return (axis % ndim,)
    axes = [norm_axis(a, ndim, op) for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
    if len(set(axes)) != len(axes):
        fail(op, f"duplicate value in axis={axis!r}")
    return tuple(sorted(axes))


def _shape_arg(shape, op: str) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(int(s) for s in shape)
    except TypeError:
        fail(op, f"shape must be an int or a sequence of ints, got {shape!r}", TypeError)


# -- reshaping ---------------------------------------------------------------------------------
def reshape(x, shape) -> Tensor:
    """NumPy's reshape; one dimension may be -1 and is inferred."""
    x = lift(x)
    if type(shape) is tuple and all([type(s) is int and s >= 0 for s in shape]):
        if shape == x.shape:    # (the common case: sizes given, no -1, checked by the op)
            return x
        return emit("reshape", [x], shape=shape)
    shape = list(_shape_arg(shape, "reshape"))
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        fail("reshape", f"bad shape {tuple(shape)}: at most one -1 and no other negative sizes")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        if known == 0 or x.size % known:
            fail("reshape", f"cannot reshape {x.type} into shape {tuple(shape)}")
        shape[shape.index(-1)] = x.size // known
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return emit("reshape", [x], shape=shape)


def transpose(x, axes=None) -> Tensor:
    """NumPy's transpose: axes=None reverses them; negative axes count from the end."""
    x = lift(x)
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    elif type(axes) is tuple and all([type(a) is int for a in axes]) \
            and sorted(axes) == list(range(x.ndim)):      # (the common case)
        perm = axes
    else:
        perm = tuple(norm_axis(a, x.ndim, "transpose") for a in axes)
        if sorted(perm) != list(range(x.ndim)):
            fail("transpose", f"axes {tuple(axes)} don't match a tensor of dimension {x.ndim}")
    if perm == tuple(range(x.ndim)):
        return x
    return emit("transpose", [x], perm=perm)


def swapaxes(x, axis1, axis2) -> Tensor:
    x = lift(x)
    perm = list(range(x.ndim))
    a, b = norm_axis(axis1, x.ndim, "swapaxes"), norm_axis(axis2, x.ndim, "swapaxes")
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def broadcast_to(x, shape) -> Tensor:
    x = lift(x)
    shape = _shape_arg(shape, "broadcast_to")
    if shape == x.shape:
        return x
    return emit("broadcast_to", [x], shape=shape)


def expand_dims(x, axis) -> Tensor:
    """Inserts size-1 axes at `axis` (an int or a tuple, positions in the result)."""
    x = lift(x)
    axes = norm_axes(axis, x.ndim + (len(axis) if isinstance(axis, (tuple, list)) else 1),
                     "expand_dims")
    dims = iter(x.shape)
    shape = tuple(1 if i in axes else next(dims) for i in range(x.ndim + len(axes)))
    return reshape(x, shape)


def squeeze(x, axis=None) -> Tensor:
    """Removes size-1 axes (all of them, or those named, which must have size 1)."""
    x = lift(x)
    if axis is None:
        axes = tuple(i for i, s in enumerate(x.shape) if s == 1)
    else:
        axes = norm_axes(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                fail("squeeze", f"cannot squeeze axis {a} of {x.type}: its size is not 1")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


# -- joining and splitting ---------------------------------------------------------------------
def concatenate(arrays, axis=0) -> Tensor:
    """Joins tensors along an existing axis (axis=None flattens them first)."""
    arrays = list(arrays)
    if not arrays:
        fail("concatenate", "need at least one tensor to concatenate")
    xs = lift_all(*arrays)
    if axis is None:
        xs, axis = [reshape(x, (-1,)) for x in xs], 0
    if any(x.ndim == 0 for x in xs):
        fail("concatenate", "zero-dimensional tensors cannot be concatenated")
    axis = norm_axis(axis, xs[0].ndim, "concatenate")
    if len(xs) == 1:
        return xs[0]
    return emit("concatenate", xs, axis=axis)


def stack(arrays, axis=0) -> Tensor:
    """Joins tensors of one shape along a new axis."""
    arrays = list(arrays)
    if not arrays:
        fail("stack", "need at least one tensor to stack")
    xs = lift_all(*arrays)
    if len({x.shape for x in xs}) != 1:
        got = ", ".join(str(x.type) for x in xs)
        fail("stack", f"all inputs must have the same shape, got {got}")
    axis = norm_axis(axis, xs[0].ndim + 1, "stack")
    return concatenate([expand_dims(x, axis) for x in xs], axis)


def slice_axis(x: Tensor, axis: int, s: slice) -> Tensor:
    """x[..., s, ...] with s applied to one axis."""
    key = (slice(None),) * axis + (s,)
    return getitem(x, key)


def split(x, indices_or_sections, axis=0) -> list[Tensor]:
    """NumPy's split: N equal sections, or pieces cut at the given indices."""
    x = lift(x)
    axis = norm_axis(axis, x.ndim, "split")
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            fail("split", f"axis {axis} of size {n} does not split into {k} equal sections")
        cuts = [i * (n // k) for i in range(1, k)]
    else:
        cuts = [int(i) for i in indices_or_sections]
    bounds = [0] + cuts + [None]
    return [slice_axis(x, axis, slice(b, e)) for b, e in zip(bounds[:-1], bounds[1:])]


# -- gathering ---------------------------------------------------------------------------------
def checked_index(indices: Tensor, n: int, op: str, wrap: bool = True) -> Tensor:
    """Traced indices as the gather `op` may use them: the compiled code raises IndexError
    naming `op` and this line for one outside [-n, n) ([0, n) without wrap) and counts
    negatives from the end. Indices of other integer types are checked as i64 (an i8 index
    plus n may not fit an i8; an unsigned one never counts from the end)."""
    if indices.dtype.name not in ("i32", "i64"):
        wrap = wrap and not indices.dtype.unsigned
        indices = cast(indices, int64)
    return emit("check_index", [indices], bound=n, wrap=wrap, what=op)


def _index_tensor(indices, op: str, n: int) -> Tensor:
    """An integer index tensor in [0, n): constant indices are checked now, as NumPy does,
    traced ones when the program runs."""
    if isinstance(indices, Tensor):
        if not indices.dtype.is_int:
            fail(op, f"indices must be integers, got {indices.type}"
                 + (" (boolean masks give data-dependent shapes and cannot be traced)"
                    if indices.dtype.name == "bool" else ""), TypeError)
        return checked_index(indices, n, op)
    arr = np.asarray(indices)
    if arr.size == 0 and isinstance(indices, (list, tuple)):
        arr = arr.astype(np.int64)  # NumPy reads an empty list as no integer indices
    if arr.dtype == np.bool_:
        if arr.ndim != 1 or arr.shape[0] != n:
            fail(op, f"a boolean index must be 1-d and match the axis (size {n}), got shape "
                 f"{arr.shape}", IndexError)
        arr = np.flatnonzero(arr)
    if arr.dtype.kind not in "iu":
        fail(op, f"indices must be integers, got {arr.dtype}", TypeError)
    if arr.size and (arr.min() < -n or arr.max() >= n):
        fail(op, f"index {int(arr.max() if arr.max() >= n else arr.min())} is out of bounds "
             f"for an axis of size {n}", IndexError)
    return lift(np.where(arr < 0, arr + n, arr).astype(np.int64))


def take(x, indices, axis=None) -> Tensor:
    """NumPy's take: gathers along `axis` (axis=None: from the flattened tensor)."""
    return gather(x, indices, axis, "take")


def gather(x, indices, axis, op: str) -> Tensor:
    """take, with errors (bad indices, axis) naming `op`: Embedding, ONNX's Gather..."""
    x = lift(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = norm_axis(axis, x.ndim, op)
    return emit("take", [x, _index_tensor(indices, op, x.shape[axis])], axis=axis)


# -- x[key] ------------------------------------------------------------------------------------
def _basic_slice(x: Tensor, key: tuple) -> Tensor:
    """x[key] for a key of slices only, no more than x's dims (the common case of getitem,
    which it computes the same: one slice op unless it takes everything)."""
    starts, stops, steps = [], [], []
    shape = x.shape
    for axis, n in enumerate(shape):
        if axis < len(key):
            b, e, s = key[axis].indices(n)  # raises for step 0 and for non-int bounds
            if not len(range(b, e, s)):
                b, e, s = 0, 0, 1  # one canonical empty slice
        else:
            b, e, s = 0, n, 1
        starts.append(b), stops.append(e), steps.append(s)
    starts, stops, steps = tuple(starts), tuple(stops), tuple(steps)
    if (starts, stops, steps) == ((0,) * len(shape), shape, (1,) * len(shape)):
        return x
    return emit("slice", [x], starts=starts, stops=stops, steps=steps)


def _is_array_index(k) -> bool:
    return isinstance(k, (Tensor, np.ndarray, list))


def getitem(x: Tensor, key) -> Tensor:
    """Basic indexing (ints, slices with any non-zero step, Ellipsis, None) plus at most one
    integer tensor/array index, with NumPy's placement of the gathered dimensions."""
    key = key if isinstance(key, tuple) else (key,)
    if len(key) <= x.ndim and all([type(k) is slice for k in key]):
        return _basic_slice(x, key)
    for k in key:
        if isinstance(k, (bool, np.bool_)):
            fail("getitem", "boolean scalar indices are not supported", TypeError)
        if not (k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer))
                or _is_array_index(k)):
            fail("getitem", f"unsupported index {k!r}; use ints, slices, None, ... or one "
                 f"integer tensor/array", TypeError)
    if sum(k is Ellipsis for k in key) > 1:
        fail("getitem", "an index can only have a single ellipsis ('...')", IndexError)
    if sum(_is_array_index(k) for k in key) > 1:
        fail("getitem", "only one integer tensor/array index is supported; use take() in steps",
             IndexError)
    consumed = sum(not (k is None or k is Ellipsis) for k in key)
    if consumed > x.ndim:
        fail("getitem", f"too many indices for {x.type}: {consumed} given", IndexError)
    fill = (slice(None),) * (x.ndim - consumed)
    dots = [i for i, k in enumerate(key) if k is Ellipsis]
    entries = key[:dots[0]] + fill + key[dots[0] + 1:] if dots else key + fill

    has_array = any(_is_array_index(k) for k in entries)
    starts, stops, steps = [], [], []
    layout = []            # the result's dims before any gather: size, or "new", or "adv"
    advanced = []          # entry positions of the array index and (with one) of ints
    axis = 0
    for pos, k in enumerate(entries):
        if k is None:
            layout.append("new")
            continue
        n = x.shape[axis]
        if _is_array_index(k):
            b, e, s = 0, n, 1
            layout.append("adv")
            advanced.append(pos)
            array_key, array_axis = k, axis
        elif isinstance(k, slice):
            b, e, s = k.indices(n)  # raises for step 0 and for non-int bounds
            length = len(range(b, e, s))
            if length == 0:
                b, e, s = 0, 0, 1  # one canonical empty slice
            layout.append(length)
        else:
            if not -n <= k < n:
                fail("getitem", f"index {k} is out of bounds for axis {axis} with size {n}",
                     IndexError)
            b, e, s = int(k) % n, int(k) % n + 1, 1
            if has_array:
                advanced.append(pos)
        starts.append(b), stops.append(e), steps.append(s)
        axis += 1

    if (tuple(starts), tuple(stops), tuple(steps)) != ((0,) * x.ndim, x.shape, (1,) * x.ndim):
        x = emit("slice", [x], starts=tuple(starts), stops=tuple(stops), steps=tuple(steps))
    dims = [x.shape[array_axis] if d == "adv" else 1 if d == "new" else d for d in layout]
    x = reshape(x, tuple(dims))
    if not has_array:
        return x
    ax = layout.index("adv")
    idx = _index_tensor(array_key, "getitem", x.shape[ax])
    out = emit("take", [x, idx], axis=ax)
    if advanced != list(range(advanced[0], advanced[-1] + 1)) and ax > 0:
        # NumPy: advanced indices separated by a slice or None put the gathered dims first.
        k = idx.ndim
        perm = list(range(ax, ax + k)) + list(range(ax)) + list(range(ax + k, out.ndim))
        out = transpose(out, perm)
    return out
