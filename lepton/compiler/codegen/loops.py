"""Loop-building helpers for llvmlite's IR builder: counted loops with constant or dynamic bounds
that LLVM's vectoriser recognises (canonical phi induction, unit step, no side exits).

    with for_range(b, n) as i:      # i: i64 from 0 to n-1
        b.store(..., b.gep(out, [i]))
"""
from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir

i64 = ir.IntType(64)
i32 = ir.IntType(32)
i8 = ir.IntType(8)
i1 = ir.IntType(1)


def const(v: int) -> ir.Constant:
    return ir.Constant(i64, int(v))


@contextmanager
def for_range(b: ir.IRBuilder, n, start=0, step=1, name="i"):
    """A loop `for i in range(start, n, step)`; the body is emitted inside the `with` block.
    Emits nothing observable when the trip count is zero."""
    n = const(n) if isinstance(n, int) else n
    start = const(start) if isinstance(start, int) else start
    fn = b.function
    pre = b.block
    head = fn.append_basic_block(f"{name}.head")
    body = fn.append_basic_block(f"{name}.body")
    done = fn.append_basic_block(f"{name}.end")
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(i64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, n), body, done)
    b.position_at_end(body)
    yield i
    nxt = b.add(i, const(step), name=f"{name}.next", flags=("nsw",))
    i.add_incoming(nxt, b.block)
    b.branch(head)
    b.position_at_end(done)


def new_function(module: ir.Module, name: str, arg_types, arg_names=None,
                 noalias=True) -> tuple[ir.Function, ir.IRBuilder]:
    """A void function with pointer args marked noalias (buffers never overlap) and nounwind;
    returns it and a builder at its entry block. (znver4/5 hosts already pick 512-bit vectors.)"""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), list(arg_types)), name)
    fn.attributes.add("nounwind")
    for k, a in enumerate(fn.args):
        if arg_names:
            a.name = arg_names[k]
        if noalias and isinstance(a.type, ir.PointerType):
            a.add_attribute("noalias")
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))
