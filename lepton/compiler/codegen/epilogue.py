"""Kernels of `matmul`/`conv` fusion groups: the GEMM (or convolution) applies the group's
elementwise chain (bias, activation, residual add...) to each output vector just before its
final store, so the raw product never makes a round trip through memory.

The GEMM sees its output as a 2-d matrix (matmul: rows are the batch and M dims, columns N;
conv: rows n*O + o, columns oh*Wo + ow) and calls the epilogue with a vector of consecutive
columns of one row. Each external input of the chain is read through its broadcast view of the
output: a scalar splat when it is constant along the columns (a conv bias), a (masked) vector
load when it runs along them with unit stride (a matmul bias, a residual). The GEMM's inner
tiles are functions of their own, so the chain's input pointers reach them through the
epilogue's `ctx` argument: an array of those pointers on the kernel's stack, passed down the
GEMM's functions. Nothing is global, so calls may run at the same time.
"""
from __future__ import annotations

import math

from llvmlite import ir

from ...ir.graph import Value
from ..fusion import Group, column_dims
from . import conv, gemm
from .fused import immediate
from .kernel import masked_load, splat, vptr
from .loopnest import broadcast_view
from .loops import const, i8, i64, new_function
from .scalar import SCALAR, mem_type


def emit_epilogue_kernel(module: ir.Module, name: str, group: Group, threads: int = 1):
    """Emits `void name(out, head operands..., chain inputs..., i8* scratch)`; returns
    (fn, operands, scratch_bytes). A head operand that is a transpose in the group is passed
    as stored and read transposed by the GEMM."""
    head, (out,) = group.head, group.outputs
    inside = set(group.members)
    chain = [m for m in group.members if m is not head and m.op != "transpose"]
    stored = [x.inputs[0] if x in inside else x for x in head.inputs]
    trans = [x in inside for x in head.inputs]
    ext = list(dict.fromkeys(x for m in chain for x in m.inputs
                             if x not in inside and immediate(x) is None))
    ctx_t = ir.ArrayType(i8.as_pointer(), max(1, len(ext)))
    shape = head.shape
    cd = column_dims(head)
    row_shape, n_cols = shape[:-cd], math.prod(shape[-cd:])
    views = {x: broadcast_view(x.shape, shape) for x in ext}

    def epilogue(b: ir.IRBuilder, value, row, col, ctx):
        lanes = value.type.count if isinstance(value.type, ir.VectorType) else 0
        env = {head: value}
        inputs = b.bitcast(ctx, ctx_t.as_pointer())
        for i, x in enumerate(ext):
            ptr = b.bitcast(b.load(b.gep(inputs, [const(0), const(i)])), _ptr(x))
            env[x] = _read(b, ptr, x, views[x], row_shape, cd, row, col, lanes, n_cols)

        def get(v):
            imm = immediate(v)
            if imm is not None:
                return splat(b, imm, lanes) if lanes else imm
            return env[v]

        for m in chain:
            env[m] = SCALAR[m.op](b, [get(x) for x in m.inputs], [x.dtype for x in m.inputs],
                                  m.dtype)
        return env[out]

    a = head.attrs
    apply = _outlined(module, name, epilogue) if chain else None
    if head.op == "matmul":
        inner = gemm.emit_matmul(module, f"{name}.mm", stored[0].type, stored[1].type,
                                 head.type, epilogue=apply, trans_a=trans[0],
                                 trans_b=trans[1], threads=threads)
    else:
        inner = conv.emit_conv2d(module, f"{name}.conv", head.inputs[0].type,
                                 head.inputs[1].type, head.type, a["stride"], a["padding"],
                                 a["dilation"], a["groups"], epilogue=apply, threads=threads)
    inner.fn.linkage = "internal"
    fn, b = new_function(module, name,
                         [_ptr(v) for v in [out, *stored, *ext]] + [i8.as_pointer()])
    args = [fn.args[0], fn.args[1], fn.args[2], fn.args[-1]]
    if apply is not None:   # the chain's inputs, for this call only
        ctx = b.alloca(ctx_t)
        for i, p in enumerate(fn.args[3:-1]):
            b.store(b.bitcast(p, i8.as_pointer()), b.gep(ctx, [const(0), const(i)]))
        args.append(b.bitcast(ctx, i8.as_pointer()))
    b.call(inner.fn, args)
    b.ret_void()
    return fn, [*stored, *ext], inner.scratch_bytes


# Epilogues of at most this many instructions are inlined where they are applied (the GEMM's
# tile function, the dot products' stores); a bigger one (gelu's erf: 65; tanh: 36) is one
# function they call: inlined at every store of every micro-kernel variant, as the GEMM once
# applied it, it made a matmul+gelu kernel 1.4 MB of IR and 1.5 s of LLVM.
INLINE_MAX = 24


def _outlined(module: ir.Module, name: str, epilogue):
    """The epilogue as a function `T name.epiN(T value, i64 row, i64 col, i8* ctx)` per value
    type (vector or scalar), emitted once and called at every store; LLVM inlines it again
    when it is small."""
    fns: dict[str, ir.Function] = {}

    def call(b: ir.IRBuilder, value, row, col, ctx):
        t = value.type
        f = fns.get(str(t))
        if f is None:
            f, fb = new_function(module, f"{name}.epi{len(fns)}", [t, i64, i64, i8.as_pointer()],
                                 ["value", "row", "col", "ctx"], noalias=False, ret=t)
            f.linkage = "internal"
            fb.ret(epilogue(fb, *f.args))
            size = sum(len(blk.instructions) for blk in f.blocks)
            f.attributes.add("alwaysinline" if size <= INLINE_MAX else "noinline")
            fns[str(t)] = f
        return b.call(f, [value, row, col, ctx])
    return call


def _ptr(x: Value):
    return mem_type(x.dtype).as_pointer()


def _read(b, ptr, x: Value, view, row_shape, cd, row, col, lanes, n_cols):
    """x's element(s) at (row, col..col+lanes) of the head's output matrix."""
    off = _row_offset(b, row, row_shape, view.strides[:len(row_shape)])
    if all(s == 0 for s in view.strides[-cd:]):
        v = b.load(b.gep(ptr, [off]))
        return splat(b, v, lanes) if lanes else v
    off = b.add(off, col)
    if not lanes:
        return b.load(b.gep(ptr, [off]))
    vt = ir.VectorType(ptr.type.pointee, lanes)
    p = vptr(b, ptr, off, vt)
    if n_cols % lanes == 0:
        return b.load(p, align=x.dtype.itemsize)
    # lanes past the last column are masked off: never read outside x
    idx = ir.Constant(ir.VectorType(ir.IntType(64), lanes), list(range(lanes)))
    mask = b.icmp_signed("<", idx, splat(b, b.sub(const(n_cols), col), lanes))
    return masked_load(b, p, mask, vt)


def _row_offset(b, row, row_shape, strides):
    """Element offset of the row index `row` (a flattened index over row_shape)."""
    if not any(strides):
        return const(0)
    dense = all(strides[i] == strides[i + 1] * row_shape[i + 1] for i in range(len(strides) - 1))
    if dense:
        return b.mul(row, const(strides[-1]))
    off, rest = const(0), row
    for n, s in zip(reversed(row_shape), reversed(strides)):
        if s:
            off = b.add(off, b.mul(b.urem(rest, const(n)), const(s)))
        rest = b.udiv(rest, const(n))
    return off
