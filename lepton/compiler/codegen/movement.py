"""Data movement as loop nests over views: transpose, broadcast_to, slice, concatenate, the
gather `take` (indices wrap like NumPy's negative indices and are clamped into range, as in JAX,
so generated code never reads outside its buffer whatever its indices), and `check_index`,
which the frontends put before every gather so that a bad index is an error, not a clamp."""
from __future__ import annotations

from llvmlite import ir

from .loopnest import Access, View, broadcast_view, contiguous, emit_map, row_major_strides
from .loops import const, entry_alloca, for_range, i1
from .scalar import index, load, mem_type, store


def transpose_view(in_shape, perm) -> View:
    s = row_major_strides(in_shape)
    return View(0, tuple(s[p] for p in perm))


def slice_view(in_shape, starts, steps) -> View:
    s = row_major_strides(in_shape)
    return View(sum(b * st for b, st in zip(starts, s)), tuple(k * st for k, st in zip(steps, s)))


def input_view(value) -> View:
    """How a movement op's single output reads its input, as a view (None if not affine)."""
    x = value.inputs[0]
    a = value.attrs
    if value.op == "transpose":
        return transpose_view(x.shape, a["perm"])
    if value.op == "broadcast_to":
        return broadcast_view(x.shape, a["shape"])
    if value.op == "slice":
        return slice_view(x.shape, a["starts"], a["steps"])
    return None


def emit_copy_view(b, value, out_ptr, in_ptr) -> None:
    # not unrolled: a copy is memory bound, and LLVM's unrolling of its vectorised loops made
    # a 32k-element transpose 6x the LLVM time of the whole loop nest (7x the code)
    emit_map(b, value.shape, [Access(in_ptr, input_view(value), value.dtype)],
             [Access(out_ptr, contiguous(value.shape), value.dtype)], lambda b, xs: xs,
             unroll=False)


def emit_concatenate(b, value, out_ptr, in_ptrs) -> None:
    axis = value.attrs["axis"]
    out_strides = row_major_strides(value.shape)
    start = 0
    for x, ptr in zip(value.inputs, in_ptrs):
        view = View(start * out_strides[axis], out_strides)
        emit_map(b, x.shape, [Access(ptr, contiguous(x.shape), x.dtype)],
                 [Access(out_ptr, view, value.dtype)], lambda b, xs: xs)
        start += x.shape[axis]


def emit_take(b, value, out_ptr, x_ptr, idx_ptr) -> None:
    x, idx = value.inputs
    axis = value.attrs["axis"]
    before = 1
    for s in x.shape[:axis]:
        before *= s
    after = 1
    for s in x.shape[axis + 1:]:
        after *= s
    n, m = x.shape[axis], idx.type.size
    if before * after * m == 0:
        return
    if n == 0:
        raise ValueError(f"take from an empty axis of {x.type}")
    it = ir.IntType(64)
    with for_range(b, before, name="a") as i:
        with for_range(b, m, name="j") as j:
            k = load(b, b.gep(idx_ptr, [j]), idx.dtype)
            k = index(b, k, idx.dtype, it)
            k = b.select(b.icmp_signed("<", k, const(0)), b.add(k, const(n)), k)
            k = b.select(b.icmp_signed("<", k, const(0)), const(0), k)
            k = b.select(b.icmp_signed(">=", k, const(n)), const(n - 1), k)
            src = b.add(b.mul(i, const(n * after)), b.mul(k, const(after)))
            dst = b.add(b.mul(i, const(m * after)), b.mul(j, const(after)))
            with for_range(b, after, name="c") as c:
                v = load(b, b.gep(x_ptr, [b.add(src, c)]), x.dtype)
                store(b, v, b.gep(out_ptr, [b.add(dst, c)]), value.dtype)


def emit_check_index(b, value, out_ptr, idx_ptr) -> ir.Value:
    """Normalises the indices (negatives count from the end when wrap) and returns an i1 that
    is true when one of them lies outside the range; such an index becomes 0, so the gather
    after it reads in bounds even if the caller went on. One branch-free loop: the flag is an
    or-reduction, which LLVM vectorises."""
    n, wrap = value.attrs["bound"], value.attrs["wrap"]
    it, dt = ir.IntType(64), value.dtype
    bad = entry_alloca(b, i1)
    b.store(ir.Constant(i1, 0), bad)
    with for_range(b, value.type.size, name="j") as j:
        k = load(b, b.gep(idx_ptr, [j]), dt)
        k = index(b, k, dt, it)
        if wrap:
            k = b.select(b.icmp_signed("<", k, const(0)), b.add(k, const(n)), k)
        ok = b.icmp_unsigned("<", k, const(n))  # unsigned: negatives are huge
        k = b.select(ok, k, const(0))
        store(b, b.trunc(k, mem_type(dt)) if mem_type(dt) != it else k, b.gep(out_ptr, [j]), dt)
        b.store(b.or_(b.load(bad), b.not_(ok)), bad)
    return b.load(bad)
