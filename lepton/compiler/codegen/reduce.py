"""Reduction kernels: sum, prod, max, min over any sorted set of axes, and argmax over one axis.

Trailing reduced axes run innermost with a register accumulator (`reassoc` lets LLVM vectorise
it); reduced axes further out accumulate into the output, which is first set to the identity.
So both `x.sum(axis=-1)` and `x.sum(axis=0)` walk x in memory order with unit-stride inner loops.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import DType, bool_
from .loopnest import row_major_strides
from .loops import const, entry_alloca, for_range
from .scalar import icmp, intrinsic, is_nan, llvm_type, load, store, zero

REDUCE_FLAGS = ("reassoc", "contract")


def identity(op: str, dt: DType):
    if dt == bool_:
        return zero(dt, op in ("prod", "min"))
    if op == "sum":
        return zero(dt, 0)
    if op == "prod":
        return zero(dt, 1)
    if dt.unsigned:
        return zero(dt, 0 if op == "max" else (1 << dt.bits) - 1)
    big = float("inf") if dt.is_float else (1 << (8 * dt.itemsize - 1)) - 1
    if op == "max":
        return ir.Constant(llvm_type(dt), -big if dt.is_float else -big - 1)
    return ir.Constant(llvm_type(dt), big)


def combine(b: ir.IRBuilder, op: str, dt: DType, acc, x):
    if dt == bool_:
        return b.or_(acc, x) if op in ("sum", "max") else b.and_(acc, x)
    if dt.is_float:
        if op == "sum":
            return b.fadd(acc, x, flags=REDUCE_FLAGS)
        if op == "prod":
            return b.fmul(acc, x, flags=REDUCE_FLAGS)
        # llvm.maximum/minimum propagate NaN like NumPy and still vectorise as reductions
        return intrinsic(b, "llvm.maximum" if op == "max" else "llvm.minimum", acc, x)
    if op == "sum":
        return b.add(acc, x)
    if op == "prod":
        return b.mul(acc, x)
    return b.select(icmp(b, dt)(">" if op == "max" else "<", acc, x), acc, x)



def emit_reduce(b: ir.IRBuilder, op: str, dt: DType, x_ptr, shape, axes, out_ptr) -> None:
    """out = op-reduce(x over axes); x is a dense row-major buffer of `shape`."""
    shape = tuple(shape)
    x_strides = row_major_strides(shape)
    kept = [k for k in range(len(shape)) if k not in axes]
    out_strides = dict(zip(kept, row_major_strides([shape[k] for k in kept])))
    last_kept = kept[-1] if kept else -1
    tail = 1
    for s in shape[last_kept + 1:]:
        tail *= s
    outer = range(last_kept + 1)
    accumulate = any(k in axes for k in outer)
    out_size = 1
    for k in kept:
        out_size *= shape[k]
    if accumulate or tail == 0:
        with for_range(b, out_size, name="init") as i:
            store(b, identity(op, dt), b.gep(out_ptr, [i]), dt)
    if tail == 0 or any(shape[k] == 0 for k in outer):
        return
    acc = entry_alloca(b, llvm_type(dt))

    def nest(depth, xo, oo):
        if depth < len(outer):
            with for_range(b, shape[depth], name=f"r{depth}") as i:
                nest(depth + 1, b.add(xo, b.mul(i, const(x_strides[depth]))),
                     oo if depth in axes else b.add(oo, b.mul(i, const(out_strides[depth]))))
            return
        optr = b.gep(out_ptr, [oo])
        if tail == 1 and not accumulate:
            store(b, load(b, b.gep(x_ptr, [xo]), dt), optr, dt)
            return
        b.store(identity(op, dt), acc)
        with for_range(b, tail, name="t") as t:
            b.store(combine(b, op, dt, b.load(acc), load(b, b.gep(x_ptr, [b.add(xo, t)]), dt)), acc)
        total = b.load(acc)
        store(b, combine(b, op, dt, load(b, optr, dt), total) if accumulate else total, optr, dt)

    nest(0, const(0), const(0))


def emit_argmax(b: ir.IRBuilder, dt: DType, x_ptr, shape, axis: int, out_ptr) -> None:
    """out (i64) = index of the first maximum along `axis` (the first NaN wins, as in NumPy)."""
    shape = tuple(shape)
    before = 1
    for s in shape[:axis]:
        before *= s
    after = 1
    for s in shape[axis + 1:]:
        after *= s
    n = shape[axis]
    if before * after == 0:
        return
    best, best_i = entry_alloca(b, llvm_type(dt)), entry_alloca(b, ir.IntType(64))
    with for_range(b, before, name="a") as i:
        with for_range(b, after, name="c") as j:
            base = b.add(b.mul(i, const(n * after)), j)
            b.store(load(b, b.gep(x_ptr, [base]), dt), best)
            b.store(const(0), best_i)
            with for_range(b, n, start=1, name="k") as k:
                v = load(b, b.gep(x_ptr, [b.add(base, b.mul(k, const(after)))]), dt)
                cur = b.load(best)
                if dt.is_float:
                    better = b.or_(b.fcmp_ordered(">", v, cur),
                                   b.and_(is_nan(b, v), b.not_(is_nan(b, cur))))
                else:
                    better = icmp(b, dt)(">", v, cur)
                b.store(b.select(better, v, cur), best)
                b.store(b.select(better, k, b.load(best_i)), best_i)
            b.store(b.load(best_i), b.gep(out_ptr, [b.add(b.mul(i, const(after)), j)]))
