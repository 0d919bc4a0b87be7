"""The kernel of a `rows` fusion group (see compiler/fusion.py): one loop nest computing all of
the group's members, storing only its outputs.

    for o in outer:                       # O = space[:split]
        row values: scalars, computed once per o (in topological order)
        for each reduction r:  acc = identity; for i in inner: acc = combine(acc, expr(o, i))
        for i in inner: store every full output expr(o, i)

Full values are recomputed inside each inner loop that needs them (cheap arithmetic on data
already in L1), so the group reads each input row from memory once. External inputs are read
through broadcast views of the space; one-element constants become immediates.
"""
from __future__ import annotations

import math

from llvmlite import ir

from ...ir.graph import Value
from ..fusion import Group
from .loopnest import View, broadcast_view, collapse, emit_nest, row_major_strides
from .loops import i8
from .parallel import begin_split, finish_split, worth_threads
from .reduce import combine, identity
from .scalar import SCALAR, llvm_type, load, mem_type, store


def immediate(x: Value):
    """An LLVM constant for a one-element constant value, else None."""
    if x.op != "constant" or x.type.size != 1:
        return None
    item = x.attrs["value"].reshape(()).item()
    return ir.Constant(llvm_type(x.dtype), float(item) if x.dtype.is_float else int(item))


def operands(group: Group) -> list[Value]:
    """The group's external inputs passed as pointers (immediates excluded), in order."""
    inside = set(group.members)
    seen = dict.fromkeys(x for m in group.members for x in m.inputs
                         if x not in inside and immediate(x) is None)
    return list(seen)


def emit_rows(module: ir.Module, name: str, group: Group, noalias: bool = True,
              threads: int = 1):
    """Emits `void name(out..., operand..., i8* scratch)`; returns (fn, operands).
    noalias=False when an output is written over an input (in place). The outer loop is
    split across up to `threads` threads when the kernel is big enough."""
    ext = operands(group)
    outs = group.outputs
    arg_types = [mem_type(v.dtype).as_pointer() for v in outs + ext] + [i8.as_pointer()]
    body, b, args, lo, hi = begin_split(module, name, arg_types, noalias)
    ptr = dict(zip(outs + ext, args))
    space, k = group.space, group.split
    inside = set(group.members)
    # every pointer access as a view of the whole space (outputs are dense in their own shape)
    views = {x: broadcast_view(x.shape, space) for x in ext}
    views.update({v: _dense_view(v.shape, space) for v in outs})
    accessed = ext + outs

    def outer_view(x):
        return View(views[x].offset, views[x].strides[:k])

    def inner_view(x):
        return View(0, views[x].strides[k:])

    def outer_body(outer_offsets):
        base = dict(zip(accessed, outer_offsets))
        row_env: dict[Value, ir.Value] = {}

        def evaluate(v, env, offs):
            if v in env:
                return env[v]
            imm = immediate(v)
            if imm is not None:
                return imm
            if v not in inside:
                r = load(b, b.gep(ptr[v], [offs[v]]), v.dtype)
            else:
                args = [evaluate(x, env, offs) for x in v.inputs]
                r = SCALAR[v.op](b, args, [x.dtype for x in v.inputs], v.dtype)
            env[v] = r
            return r

        def inner_loop(body):
            emit_nest(b, space[k:], [inner_view(x) for x in accessed],
                  lambda inner: body({x: b.add(base[x], o) for x, o in zip(accessed, inner)}),
                  name="j")

        for m in group.members:
            if not group.is_row(m):
                continue
            if m.opdef.kind == "reduce":
                acc = _local(b, llvm_type(m.dtype))
                b.store(identity(m.op, m.dtype), acc)

                def reduce_body(offs, m=m, acc=acc):
                    x = evaluate(m.inputs[0], dict(row_env), offs)
                    b.store(combine(b, m.op, m.dtype, b.load(acc), x), acc)

                inner_loop(reduce_body)
                row_env[m] = b.load(acc)
            else:
                evaluate(m, row_env, base)
        # stores come after every load of the iteration: an output may overwrite an input
        for m in outs:
            if group.is_row(m):
                store(b, row_env[m], b.gep(ptr[m], [base[m]]), m.dtype)

        full_outs = [m for m in outs if not group.is_row(m)]
        if full_outs:
            def store_body(offs):
                env = dict(row_env)
                values = [evaluate(m, env, offs) for m in full_outs]
                for m, v in zip(full_outs, values):
                    store(b, v, b.gep(ptr[m], [offs[m]]), m.dtype)
            inner_loop(store_body)

    outer_views = [outer_view(x) for x in accessed]
    outer_shape, _ = collapse(space[:k], outer_views)
    n0 = outer_shape[0] if outer_shape else 1
    emit_nest(b, space[:k], outer_views, outer_body, name="i",
              first=(lo, hi) if outer_shape else None)
    b.ret_void()
    fn = finish_split(module, name, body, arg_types, n0,
                      worth_threads(threads, math.prod(space), n0), noalias)
    return fn, ext


def _dense_view(shape, space) -> View:
    """A dense buffer of `shape` (a full or row shape of space; a reduction's output without
    keepdims is space[:split]) as a view of the space."""
    shape = tuple(shape) + (1,) * (len(space) - len(shape))
    strides = row_major_strides(shape)
    return View(0, tuple(0 if s == 1 and o != 1 else st
                         for s, o, st in zip(shape, space, strides)))


def _local(b: ir.IRBuilder, t):
    with b.goto_entry_block():
        return b.alloca(t)
