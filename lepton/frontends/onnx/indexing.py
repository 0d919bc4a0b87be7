"""ONNX's gathers, scatters and masks over the IR's take / scatter_add: GatherElements,
GatherND, ScatterElements, ScatterND, Trilu, CumSum (a matmul with a triangular constant),
TopK and Hardmax (by ranks: comparisons and sums, no sort), OneHot, EyeLike, Einsum
(broadcast products summed), DepthToSpace, SpaceToDepth.

An element gather is a take from the flattened data at computed flat indices:

    GatherElements(x[2,3], idx[2,2], axis=1)
        -> take(x.reshape(6), idx * 1 + [[0, 0], [3, 3]])     (row offsets are constants)

Scatters add updates at the flat indices with scatter_add; reduction='none' then keeps the
data where nothing was written (indices are assumed unique, as the ONNX spec requires).
Reductions mul/max/min compare the indices with every row (a one-hot) and reduce the selected
updates.
"""
from __future__ import annotations

import math
import string

import numpy as np

from ...ir.types import float64, int64
from .. import ops, shapes
from ..tensor import Tensor, cast, constant, emit
from .node import ONNX_DTYPES, onnx_type_name


def _index(n, idx: Tensor, dim: int) -> Tensor:
    """Traced or constant indices in [0, dim) as int64 (negatives count from the end;
    out-of-range ones raise IndexError when the program runs)."""
    return shapes.checked_index(cast(idx, int64), dim, n.op_type)


def _strides(shape) -> list[int]:
    return [math.prod(shape[a + 1:]) for a in range(len(shape))]


def _flat_elements(n, shape, idx: Tensor, axis: int) -> Tensor:
    """Flat indices into an array of `shape` for the element gather/scatter along `axis`."""
    strides = _strides(shape)
    grid = np.indices(idx.shape, dtype=np.int64)
    offset = sum(grid[a] * strides[a] for a in range(len(shape)) if a != axis)
    return _index(n, idx, shape[axis]) * strides[axis] + constant(np.asarray(offset, np.int64))


def gather_elements(n) -> Tensor:
    x, idx = n.x(0), n.x(1)
    axis = shapes.norm_axis(n.attr("axis", 0), x.ndim, n.op_type)
    flat = _flat_elements(n, x.shape, idx, axis)
    return emit("take", [x.reshape(-1), flat], axis=0)


def _scatter(n, data: Tensor, flat: Tensor, updates: Tensor, inner: tuple) -> Tensor:
    """data (viewed as (rows,) + inner) with `updates` (flat.shape + inner) at rows `flat`."""
    rows = data.size // max(math.prod(inner), 1)
    d = data.reshape((rows,) + inner)
    red = n.attr("reduction", "none")
    if red not in ("none", "add", "mul", "max", "min"):
        n.invalid(f"unknown reduction '{red}'")
    if data.dtype.name == "bool":
        n.unsupported("bool data is not supported")
    if red in ("mul", "max", "min"):
        return _scatter_reduce(red, d, flat, updates, inner).reshape(data.shape)
    added = emit("scatter_add", [updates, flat], axis=0, size=rows)
    if red == "add":
        out = d + added
    else:
        ones = ops.full(flat.shape, 1.0)
        written = emit("scatter_add", [ones, flat], axis=0, size=rows) > 0
        written = written.reshape((rows,) + (1,) * len(inner))
        out = ops.where(written, added, d)
    return out.reshape(data.shape)


def _scatter_reduce(red: str, d: Tensor, flat: Tensor, updates: Tensor, inner: tuple) -> Tensor:
    """d [rows, *inner] combined by mul/max/min with every update written to its row: a
    [K, rows] one-hot of the K indices selects the updates (the others are the reduction's
    identity), reduced over K. Costs K * rows * inner elements; duplicates all count."""
    rows, k = d.shape[0], flat.shape[0]
    hit = ops.equal(flat.reshape((k, 1)), constant(np.arange(rows, dtype=np.int64)))
    hit = hit.reshape((k, rows) + (1,) * len(inner))
    u = updates.reshape((k, 1) + inner)
    np_t = d.dtype.np
    if red == "mul":
        ident = np.ones((), np_t)
    elif np.issubdtype(np_t, np.floating):
        ident = np.array(-np.inf if red == "max" else np.inf, np_t)
    else:
        info = np.iinfo(np_t)
        ident = np.array(info.min if red == "max" else info.max, np_t)
    picked = ops.where(hit, u, constant(ident))
    if red == "mul":
        return d * ops.prod(picked, axis=0)
    if red == "max":
        return ops.maximum(d, ops.max(picked, axis=0))
    return ops.minimum(d, ops.min(picked, axis=0))


def scatter_elements(n) -> Tensor:
    data, idx, updates = n.x(0), n.x(1), n.x(2)
    axis = shapes.norm_axis(n.attr("axis", 0), data.ndim, n.op_type)
    flat = _flat_elements(n, data.shape, idx, axis).reshape(-1)
    return _scatter(n, data, flat, updates.reshape(-1), ())


def _flat_nd(n, shape, idx: Tensor) -> Tensor:
    """GatherND/ScatterND (batch_dims 0): idx[..., k] addresses the first k axes of `shape`;
    the flat row index into shape[:k]."""
    k = idx.shape[-1]
    strides = _strides(shape[:k])
    flat = None
    for j in range(k):
        part = _index(n, shapes.slice_axis(idx, idx.ndim - 1, slice(j, j + 1)), shape[j])
        part = part * strides[j]
        flat = part if flat is None else flat + part
    return flat.reshape(idx.shape[:-1]) if flat is not None else None


def scatter_nd(n) -> Tensor:
    data, idx, updates = n.x(0), n.x(1), n.x(2)
    k = idx.shape[-1]
    flat = _flat_nd(n, data.shape, idx)
    return _scatter(n, data, flat.reshape(-1), updates.reshape((-1,) + data.shape[k:]),
                    data.shape[k:])


def gather_nd(n) -> Tensor:
    x, idx = n.x(0), n.x(1)
    b = n.attr("batch_dims", 0)
    k = idx.shape[-1]
    if b == 0:
        flat = _flat_nd(n, x.shape, idx)
        rows = x.reshape((math.prod(x.shape[:k]),) + x.shape[k:])
        return emit("take", [rows, flat], axis=0)
    # batch_dims b: the first b axes of x and idx pair up; fold them into the row index
    batch = math.prod(x.shape[:b])
    inner = x.shape[b:]
    xb = x.reshape((batch * math.prod(inner[:k]),) + inner[k:])
    flat = _flat_nd(n, inner, idx.reshape((batch, -1, k)))
    flat = flat + constant((np.arange(batch) * math.prod(inner[:k])).reshape(batch, 1))
    y = emit("take", [xb, flat.reshape(-1)], axis=0)
    return y.reshape(idx.shape[:-1] + inner[k:])


# -- masks and prefix sums ---------------------------------------------------------------------
def trilu(n) -> Tensor:
    x = n.x(0)
    k = n.ints(1)
    k = 0 if k is None else k[0]
    r, c = x.shape[-2], x.shape[-1]
    keep = np.triu(np.ones((r, c), bool), k) if n.attr("upper", 1) else np.tril(
        np.ones((r, c), bool), k)
    return ops.where(constant(keep), x, constant(np.zeros((), x.dtype.np)))


def prefix_mask(n, x: Tensor) -> tuple[int, np.ndarray]:
    """CumSum/CumProd: (axis, T) with T[i, j] true where element i of the axis contributes to
    output j (i <= j; exclusive: i < j; reverse: i >= j, or i > j)."""
    axis = shapes.norm_axis(n.ints(1)[0], x.ndim, n.op_type)
    i, j = np.indices((x.shape[axis],) * 2)
    excl, rev = n.attr("exclusive", 0), n.attr("reverse", 0)
    return axis, (i > j if excl else i >= j) if rev else (i < j if excl else i <= j)


def cumsum(n) -> Tensor:
    """x @ T along the axis (prefix_mask)."""
    x = n.x(0)
    axis, tri = prefix_mask(n, x)
    xt = ops.swapaxes(x, axis, -1)
    if x.dtype.is_float:
        y = ops.matmul(xt, constant(tri.astype(x.dtype.np)))
    else:   # integers: exact sums of products with the mask (no integer matmul needed)
        y = ops.sum(ops.expand_dims(xt, -1) * constant(tri.astype(x.dtype.np)), -2,
                    x.dtype)
    return ops.swapaxes(y, axis, -1)


def _ranks(x: Tensor, largest: bool) -> Tensor:
    """Each element's position along the last axis in the order TopK sorts (largest first,
    ties: the lower index first): how many elements come before it."""
    m = x.shape[-1]
    a, b = ops.expand_dims(x, -1), ops.expand_dims(x, -2)     # a: x_i, b: x_j
    before = (b > a) if largest else (b < a)
    lower = constant(np.tril(np.ones((m, m), bool), -1))        # j < i
    before = before | ((b == a) & lower)
    return ops.sum(cast(before, int64), -1, int64)


def topk(n) -> list[Tensor]:
    x = n.x(0)
    k = n.ints(1)[0]
    axis = shapes.norm_axis(n.attr("axis", -1), x.ndim, n.op_type)
    xt = ops.swapaxes(x, axis, -1)
    m = xt.shape[-1]
    if not 0 <= k <= m:
        n.invalid(f"k={k} is out of range for an axis of size {m}")
    rank = _ranks(xt, bool(n.attr("largest", 1)))
    pick = ops.expand_dims(rank, -1) == constant(np.arange(k, dtype=np.int64))   # (.., m, k)
    zero = constant(np.zeros((), x.dtype.np))
    values = ops.sum(ops.where(pick, ops.expand_dims(xt, -1), zero), -2, x.dtype)
    index = ops.sum(ops.where(pick, constant(np.arange(m, dtype=np.int64).reshape(m, 1)),
                              constant(np.zeros((), np.int64))), -2, int64)
    return [ops.swapaxes(values, axis, -1), ops.swapaxes(index, axis, -1)]


def hardmax(n) -> Tensor:
    """1 at the first maximum along `axis` (opset >= 13; before, of the rows of the 2-d
    view split at `axis`), 0 elsewhere."""
    x = n.x(0)
    if n.opset >= 13:
        axis = shapes.norm_axis(n.attr("axis", -1), x.ndim, n.op_type)
        view = x
    else:
        axis0 = shapes.norm_axis(n.attr("axis", 1), x.ndim, n.op_type)
        view = x.reshape(math.prod(x.shape[:axis0]), -1)
        axis = 1
    am = ops.argmax(view, axis, keepdims=True)
    iota = np.arange(view.shape[axis], dtype=np.int64).reshape(
        (-1,) + (1,) * (view.ndim - 1 - axis))
    y = cast(am == constant(iota), x.dtype)
    return y.reshape(x.shape)


def one_hot(n) -> Tensor:
    idx, values = n.x(0), n.x(2)
    depth = int(np.asarray(n.const(1)).reshape(-1)[0])
    axis = n.attr("axis", -1)
    axis = axis + idx.ndim + 1 if axis < 0 else axis
    i = cast(idx, int64)   # float indices truncate, as the spec's cast does
    i = ops.where(i < 0, i + depth, i)
    iota = np.arange(depth, dtype=np.int64).reshape((-1,) + (1,) * (idx.ndim - axis))
    hit = ops.expand_dims(i, axis) == constant(iota)
    off = shapes.slice_axis(values, 0, slice(0, 1)).reshape(())
    on = shapes.slice_axis(values, 0, slice(1, 2)).reshape(())
    return ops.where(hit, on, off)


def eye_like(n) -> Tensor:
    x = n.x(0)
    code = n.attr("dtype")
    if code is not None and code not in ONNX_DTYPES:
        n.unsupported(f"dtype {onnx_type_name(code)} is not supported")
    dtype = x.dtype if code is None else ONNX_DTYPES[code]
    return constant(np.eye(x.shape[0], x.shape[1], n.attr("k", 0), dtype=dtype.np))


def depth_to_space(n) -> Tensor:
    x = n.x(0)
    b = n.attr("blocksize")
    N, C, H, W = x.shape
    if n.attr("mode", "DCR") == "DCR":
        y = x.reshape(N, b, b, C // (b * b), H, W)
        y = ops.transpose(y, (0, 3, 4, 1, 5, 2))
    else:
        y = x.reshape(N, C // (b * b), b, b, H, W)
        y = ops.transpose(y, (0, 1, 4, 2, 5, 3))
    return y.reshape(N, C // (b * b), H * b, W * b)


def space_to_depth(n) -> Tensor:
    x = n.x(0)
    b = n.attr("blocksize")
    N, C, H, W = x.shape
    y = x.reshape(N, C, H // b, b, W // b, b)
    crd = n.attr("mode", "DCR") == "CRD"   # channel-major blocks (the inverse of CRD DepthToSpace)
    y = ops.transpose(y, (0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4))
    return y.reshape(N, C * b * b, H // b, W // b)


# -- Einsum ------------------------------------------------------------------------------------
def einsum(n) -> Tensor:
    """Each operand is brought to all the equation's letters (diagonals of repeated letters
    taken, missing letters as size-1 axes), the operands multiplied with broadcasting, and the
    letters absent from the output summed."""
    xs = n.xs()
    eq = n.attr("equation").replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(xs):
        n.invalid(f"equation '{eq}' has {len(terms)} operands, the node {len(xs)}")
    free = [c for c in string.ascii_letters if c not in eq]
    nell = max((x.ndim - len(t.replace("...", "")) for t, x in zip(terms, xs)
                if "..." in t), default=0)
    ell = "".join(free[:nell])
    terms = [t.replace("...", ell[len(ell) - (x.ndim - len(t.replace("...", ""))):])
             for t, x in zip(terms, xs)]
    if not _:
        counts = {c: lhs.count(c) for c in set("".join(terms))}
        rhs = ell + "".join(sorted(c for c in counts if counts[c] == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    letters = list(rhs) + sorted({c for t in terms for c in t} - set(rhs))
    sizes = {}
    prod = None
    for t, x in zip(terms, xs):
        x, t = _diagonals(x, t)
        for c, d in zip(t, x.shape):
            if sizes.setdefault(c, d) == 1:
                sizes[c] = d
        perm = sorted(range(len(t)), key=lambda a: letters.index(t[a]))
        x = ops.transpose(x, perm)
        shape = [1] * len(letters)
        for a in perm:
            shape[letters.index(t[a])] = x.shape[perm.index(a)]
        x = x.reshape(shape)
        prod = x if prod is None else prod * x
    full = tuple(sizes.get(c, 1) for c in letters)
    prod = ops.broadcast_to(prod, full)
    summed = tuple(range(len(rhs), len(letters)))
    return ops.sum(prod, summed, prod.dtype) if summed else prod


def _diagonals(x: Tensor, t: str) -> tuple[Tensor, str]:
    """x with each repeated letter of t reduced to its diagonal (one axis)."""
    while len(set(t)) < len(t):
        c = next(c for c in t if t.count(c) > 1)
        a, b = t.index(c), t.index(c, t.index(c) + 1)
        m = x.shape[a]
        x = _move2(x, a, b)
        x = x.reshape(x.shape[:-2] + (m * m,))
        x = emit("take", [x, constant(np.arange(m, dtype=np.int64) * (m + 1))], axis=x.ndim - 1)
        t = "".join(ch for k, ch in enumerate(t) if k not in (a, b)) + c
    return x, t


def _move2(x: Tensor, a: int, b: int) -> Tensor:
    rest = [k for k in range(x.ndim) if k not in (a, b)]
    return ops.transpose(x, rest + [a, b])


def col2im(n) -> Tensor:
    """Col2Im: the columns [N, C * prod(block), L] summed back into the padded image at each
    block's positions (a constant index map, any number of spatial dims), then cropped."""
    x = n.x(0)
    image, block = n.ints(1), n.ints(2)
    k = len(image)
    if len(block) != k or x.ndim != 3:
        n.invalid(f"input {x.type}, image_shape {list(image)} and block_shape {list(block)} "
                  f"do not fit together")
    dil = n.attr("dilations") or [1] * k
    strides = n.attr("strides") or [1] * k
    pads = n.attr("pads") or [0] * (2 * k)
    padded = [i + pads[d] + pads[d + k] for d, i in enumerate(image)]
    blocks = [(p - (dl * (b - 1) + 1)) // s + 1
              for p, b, dl, s in zip(padded, block, dil, strides)]
    kk, nblocks = math.prod(block), math.prod(blocks)
    batch, ck, cols = x.shape
    if ck % kk or cols != nblocks or min(blocks) < 1:
        n.invalid(f"input {x.type} does not fit image_shape {list(image)}, block_shape "
                  f"{list(block)}: wants [N, C * {kk}, {nblocks}]")
    c = ck // kk
    # padded-image position of (block offset o, block index l) along each spatial dim
    pos = [np.add.outer(np.arange(b) * dl, np.arange(m) * s)
           for b, dl, s, m in zip(block, dil, strides, blocks)]
    flat = np.zeros(tuple(block) + tuple(blocks), np.int64)
    for d, pstride in enumerate(_strides(padded)):
        shape = [1] * (2 * k)
        shape[d], shape[k + d] = block[d], blocks[d]
        flat = flat + pos[d].reshape(shape) * pstride
    flat = (np.arange(c).reshape(c, 1, 1) * math.prod(padded)
            + flat.reshape(1, kk, nblocks)).reshape(-1)
    rows = x.reshape((batch, -1)).transpose((1, 0))                 # [C * kk * L, N]
    img = emit("scatter_add", [rows, constant(flat)], axis=0, size=c * math.prod(padded))
    img = img.transpose((1, 0)).reshape((batch, c) + tuple(padded))
    key = (slice(None), slice(None)) + tuple(slice(pads[d], pads[d] + image[d])
                                             for d in range(k))
    return img[key]


def tensor_scatter(n) -> Tensor:
    """TensorScatter (a KV-cache write): cache row j of batch b takes update row j - w[b]
    (mod the cache length in circular mode) when that is in [0, sequence length); a gather
    from the update with the sequence axis moved next to the batch axis."""
    cache, upd = n.x(0), n.x(1)
    axis = shapes.norm_axis(n.attr("axis", -2), cache.ndim, n.op_type)
    mode = n.attr("mode", "linear")
    if mode not in ("linear", "circular"):
        n.invalid(f"unknown mode '{mode}'")
    if axis == 0 or upd.ndim != cache.ndim or any(
            a != b for i, (a, b) in enumerate(zip(cache.shape, upd.shape)) if i != axis) \
            or upd.shape[axis] > cache.shape[axis]:
        n.invalid(f"update {upd.type} does not fit past_cache {cache.type} along axis {axis}")
    b, m, s = cache.shape[0], cache.shape[axis], upd.shape[axis]
    w = n.opt(2)
    w = ops.full((b,), 0, int64) if w is None else cast(w, int64).reshape((b,))
    t = constant(np.arange(m, dtype=np.int64)) - w.reshape((b, 1))          # [b, m]
    if mode == "circular":
        t = _mod(t, m)
    valid = (t >= 0) & (t < s)
    rows = ops.clip(t, 0, s - 1) + constant((np.arange(b) * s).reshape(b, 1).astype(np.int64))
    u = shapes.swapaxes(upd, 1, axis) if axis != 1 else upd                 # [b, s, ...]
    rest = u.shape[2:]
    got = emit("take", [u.reshape((b * s,) + rest), rows.reshape(-1)], axis=0)
    got = got.reshape((b, m) + rest)
    got = shapes.swapaxes(got, 1, axis) if axis != 1 else got
    keep = valid.reshape((b,) + tuple(m if i == axis else 1 for i in range(1, cache.ndim)))
    return ops.where(keep, got, cache)


def _mod(t: Tensor, m: int) -> Tensor:
    """t mod m in [0, m) for int64 t of either sign (|t| < 2**53: exact in float64)."""
    from .elementwise import floor
    q = floor(cast(t, float64) / float(m))
    return t - cast(q, int64) * m
