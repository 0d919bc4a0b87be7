"""The kernel of a `rows` fusion group (see compiler/fusion.py): one loop nest computing all of
the group's members, storing only its outputs.

    for o in outer:                       # O = space[:split]
        row values: scalars, computed once per o (in topological order)
        for each reduction r:  acc = identity; for i in inner: acc = combine(acc, expr(o, i))
        for i in inner: store every full output expr(o, i)

Full values are recomputed inside each inner loop that needs them (cheap arithmetic on data
already in L1), so the group reads each input row from memory once. External inputs are read
through broadcast views of the space; one-element constants become immediates. Big arrays
stream (stream.py): a large full output is stored a row at a time into an L1 buffer and copied
out with non-temporal stores, and with a reduction the next row of a large input is prefetched.

With sin or cos in the group (and no output over an input) the nest is emitted twice: a fast
body whose sin/cos only flag arguments their cheap reduction cannot handle (vmath.Unreduced),
and an exact body it calls on its share when one was flagged.
"""
from __future__ import annotations

import math

from llvmlite import ir

from ...ir.graph import Value
from ..fusion import Group
from .loopnest import View, broadcast_view, collapse, emit_nest, row_major_strides
from .loops import entry_alloca, i8
from .parallel import begin_split, finish_split, worth_threads
from .reduce import combine, identity
from .stream import (LINE, emit_prefetch_row, emit_store_fence, emit_stream_copy, prefetches,
                     streams)
from .scalar import FAST, SCALAR, UNREDUCED, like, llvm_type, load, mem_type, store, zero
from .vmath import Unreduced


def immediate(x: Value):
    """An LLVM constant for a one-element constant value, else None."""
    if x.op != "constant" or x.type.size != 1:
        return None
    return zero(x.dtype, x.attrs["value"].reshape(()))


def operands(group: Group) -> list[Value]:
    """The group's external inputs passed as pointers (immediates excluded), in order."""
    inside = set(group.members)
    seen = dict.fromkeys(x for m in group.members for x in m.inputs
                         if x not in inside and immediate(x) is None)
    return list(seen)


def emit_rows(module: ir.Module, name: str, group: Group, noalias: bool = True,
              threads: int = 1, in_place: dict | None = None):
    """Emits `void name(out..., operand..., i8* scratch)`; returns (fn, operands).
    noalias=False when an output is written over an input (in place) in some other way than
    `in_place` says. in_place: {operand index: output index} for an operand the kernel reads
    at exactly the element it writes to that output, in the same buffer (the memory plan's
    in-place pairs): the kernel reads it through the output's pointer, so every buffer is
    reached through one pointer, the arguments stay noalias and LLVM vectorises the loop without
    runtime overlap checks (which fail, hence a scalar loop, when the buffers are the same).
    The outer loop is split across up to `threads` threads when the kernel is big enough."""
    ext = operands(group)
    arg_types = [mem_type(v.dtype).as_pointer() for v in group.outputs + ext] + [i8.as_pointer()]
    exact = None
    alias = {ext[i]: group.outputs[o] for i, o in (in_place or {}).items()}
    if noalias and not alias and any(m.op in UNREDUCED for m in group.members):
        # sin/cos computed fast, flagging arguments beyond their cheap reduction, then the share
        # again by `exact` if one was seen: the call of the exact reduction in the loop cost
        # 1.3x (f32) to 1.8x (f64). Not in place: the inputs must still be there. A function of
        # its own, so that no call in this one makes LLVM keep the loop's constants on the stack.
        exact, _ = _body(module, f"{name}.exact", group, ext, arg_types, noalias, None)
        exact.attributes.add("noinline")
    body, n0 = _body(module, name, group, ext, arg_types, noalias, exact, alias)
    fn = finish_split(module, name, body, arg_types, n0,
                      worth_threads(threads, math.prod(group.space), n0), noalias)
    return fn, ext


def _body(module: ir.Module, name: str, group: Group, ext, arg_types, noalias: bool,
          exact: ir.Function | None, alias: dict | None = None):
    """emit_rows's `name.body(args..., lo, hi)`, returned with its outer trip count. With
    `exact` (a body emitted without), sin and cos only flag what they cannot do, and the body
    calls exact on its share when they did."""
    outs = group.outputs
    body, b, args, lo, hi = begin_split(module, name, arg_types, noalias)
    unreduced = Unreduced() if exact is not None else None
    ptr = dict(zip(outs + ext, args))
    for x, o in (alias or {}).items():      # read in place: through the output's pointer
        ptr[x] = b.bitcast(ptr[o], ptr[x].type) if ptr[o].type != ptr[x].type else ptr[o]
    space, k = group.space, group.split
    inside = set(group.members)
    # every pointer access as a view of the whole space (outputs are dense in their own shape)
    views = {x: broadcast_view(x.shape, space) for x in ext}
    views.update({v: _dense_view(v.shape, space) for v in outs})
    accessed = ext + outs

    row_elems = math.prod(space[k:])
    cached = _recomputed_expensive(group) if row_elems * 8 <= ROW_CACHE_BYTES else []
    row_buffers = {m: _row_buffer(b, m.dtype, row_elems) for m in cached}
    row_view = View(0, row_major_strides(space[k:]))
    # large full outputs are computed a row at a time into a buffer, then streamed out
    staged = {m: _row_buffer(b, m.dtype, row_elems, align=LINE) for m in outs
              if not group.is_row(m) and streams(m, row_elems)}

    def outer_view(x):
        return View(views[x].offset, views[x].strides[:k])

    def is_row_value(x):
        """Constant along the inner dims: a row member, or an input broadcast along them."""
        if x in inside:
            return group.is_row(x)
        return immediate(x) is not None or not any(views[x].strides[k:])

    def inner_view(x):
        return View(0, views[x].strides[k:])

    # large dense inputs of a kernel that passes over each row several times: the next row is
    # prefetched while this one is worked on from L1 (see stream.py)
    dense = _dense_view(space, space)
    fetched = [x for x in ext if views[x] == dense and prefetches(x, row_elems)] \
        if group.reductions else []

    def outer_body(outer_offsets):
        base = dict(zip(accessed, outer_offsets))
        for x in fetched:
            emit_prefetch_row(b, ptr[x], base[x], row_elems, math.prod(space), x.dtype)
        row_env: dict[Value, ir.Value] = {}

        stored: set = set()      # cached members whose row is in its buffer already
        pending: set = set()     # cached members the loop being emitted stores

        def evaluate(v, env, offs):
            if v in env:
                return env[v]
            imm = immediate(v)
            if imm is not None:
                return imm
            if v in stored:
                r = load(b, b.gep(row_buffers[v], [offs["row"]]), v.dtype)
            elif v not in inside:
                r = load(b, b.gep(ptr[v], [offs[v]]), v.dtype)
            else:
                args = [evaluate(x, env, offs) for x in v.inputs]
                if v.op == "div" and v.dtype.is_float and is_row_value(v.inputs[1]) \
                        and not group.is_row(v):
                    # one division per row, then products: x * (1/s) for softmax's x / s
                    args[1] = b.fdiv(like(args[1], 1), args[1])
                    r = b.fmul(args[0], args[1], flags=FAST)
                elif unreduced is not None and v.op in UNREDUCED:
                    r = UNREDUCED[v.op](b, args[0], unreduced)
                else:
                    r = SCALAR[v.op](b, args, [x.dtype for x in v.inputs], v.dtype)
                if v in row_buffers:
                    store(b, r, b.gep(row_buffers[v], [offs["row"]]), v.dtype)
                    pending.add(v)
            env[v] = r
            return r

        def inner_loop(body, reduction=False):
            # several passes over one row: fully unrolled, LLVM would keep the whole row in
            # registers across them and spill (W4 ran 2x slower); vectorised loops are enough.
            # A reduction's loop is interleaved (4 independent accumulators): with one, a
            # plain sum waits on its add's latency each vector (3-4 cycles), and layer_norm's
            # rows took ~690 ns instead of ~500 in L2 (znver3, LLVM 22). An earlier rule kept
            # one accumulator for plain sums ("0.90 ms against 1.15" on layer_norm); that did
            # not hold here.
            def at(inner):
                offs = {x: b.add(base[x], o) for x, o in zip(accessed, inner)}
                offs["row"] = inner[-1]
                body(offs)
            emit_nest(b, space[k:], [inner_view(x) for x in accessed] + [row_view], at,
                      name="j", unroll=not group.reductions,
                      interleave=4 if reduction else _single(unreduced))
            stored.update(pending)
            pending.clear()

        for m in group.members:
            if not group.is_row(m):
                continue
            if m.opdef.kind == "reduce":
                acc = entry_alloca(b, llvm_type(m.dtype))
                b.store(identity(m.op, m.dtype), acc)

                def reduce_body(offs, m=m, acc=acc):
                    x = evaluate(m.inputs[0], dict(row_env), offs)
                    b.store(combine(b, m.op, m.dtype, b.load(acc), x), acc)

                inner_loop(reduce_body, reduction=True)
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
                    to = b.gep(staged[m], [offs["row"]]) if m in staged else \
                        b.gep(ptr[m], [offs[m]])
                    store(b, v, to, m.dtype)
            inner_loop(store_body)
            for m, buf in staged.items():
                emit_stream_copy(b, b.gep(ptr[m], [base[m]]), buf, row_elems, m.dtype)

    outer_views = [outer_view(x) for x in accessed]
    outer_shape, _ = collapse(space[:k], outer_views)
    n0 = outer_shape[0] if outer_shape else 1
    emit_nest(b, space[:k], outer_views, outer_body, name="i",
              first=(lo, hi) if outer_shape else None, interleave=_single(unreduced))
    if staged:
        emit_store_fence(b)
    if exact is not None:
        with b.if_then(unreduced.seen(b), likely=False):
            b.call(exact, list(body.args))
    b.ret_void()
    return body, n0


# Expensive values (OpDef.expensive) a later pass over the row needs again are kept in a row
# buffer on the stack (softmax: exp(x - max) is summed, then divided) when the row is at most
# this big.
ROW_CACHE_BYTES = 1 << 16


def _pass_values(group: Group, roots) -> set[Value]:
    """The full (per-element) members a pass over the row computes to get `roots`."""
    full = {m for m in group.members if not group.is_row(m)}
    acc: set = set()
    stack = list(roots)
    while stack:
        v = stack.pop()
        if v in full and v not in acc:
            acc.add(v)
            stack.extend(v.inputs)
    return acc


def _recomputed_expensive(group: Group) -> list[Value]:
    """Full members with a transcendental op that more than one of the row's passes (each
    reduction, then the stores) would compute."""
    passes = [_pass_values(group, [r.inputs[0]]) for r in group.reductions]
    passes.append(_pass_values(group, [o for o in group.outputs if not group.is_row(o)]))
    return [m for m in group.members if m.opdef.expensive and sum(m in p for p in passes) > 1]


def _single(unreduced) -> int:
    """The interleave count of a loop that ORs sin/cos's flag: 1, as LLVM chose without the
    flag. Its reduction makes LLVM interleave two vector iterations, which on AVX2 (16
    registers, the polynomials' constants do not fit) took 10% (f32) to 22% (f64) more
    instructions than one iteration unrolled twice, mostly reloads."""
    return 1 if unreduced is not None else 0


def _row_buffer(b: ir.IRBuilder, dtype, n: int, align: int | None = None):
    buf = entry_alloca(b, ir.ArrayType(mem_type(dtype), n))
    buf.align = align
    return b.gep(buf, [ir.Constant(ir.IntType(64), 0), ir.Constant(ir.IntType(64), 0)])


def _dense_view(shape, space) -> View:
    """A dense buffer of `shape` (a full or row shape of space; a reduction's output without
    keepdims is space[:split]) as a view of the space."""
    shape = tuple(shape) + (1,) * (len(space) - len(shape))
    strides = row_major_strides(shape)
    return View(0, tuple(0 if s == 1 and o != 1 else st
                         for s, o, st in zip(shape, space, strides)))

