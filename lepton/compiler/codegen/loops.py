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


NO_UNROLL = "lepton.nounroll"
NO_UNROLL_INTERLEAVE = "lepton.nounroll.interleave"


@contextmanager
def for_range(b: ir.IRBuilder, n, start=0, step=1, name="i", unroll: bool = True,
              interleave: bool = False):
    """A loop `for i in range(start, n, step)`; the body is emitted inside the `with` block.
    Emits nothing observable when the trip count is zero. unroll=False keeps LLVM from
    unrolling it (it still vectorises), interleave=True (with unroll=False) asks for four
    interleaved vector iterations (independent accumulators): see `loop_metadata`."""
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
    latch = b.branch(head)
    if not unroll:
        latch.set_metadata(NO_UNROLL_INTERLEAVE if interleave else NO_UNROLL,
                           b.module.add_metadata([]))
    b.position_at_end(done)


def loop_metadata(llvm_ir: str) -> str:
    """Turns the latches marked by for_range(unroll=False) into LLVM loop metadata (a distinct
    self-referencing node per loop, which llvmlite's builder cannot express)."""
    defs = ['!900000 = !{!"llvm.loop.unroll.disable"}',
            '!900001 = !{!"llvm.loop.interleave.count", i32 4}']
    for marker, props in ((NO_UNROLL_INTERLEAVE, "!900000, !900001"), (NO_UNROLL, "!900000")):
        parts = llvm_ir.split(f"!{marker} !")
        out = [parts[0]]
        for part in parts[1:]:
            node = 900002 + len(defs)
            out.append(f"!llvm.loop !{node}" + part.lstrip("0123456789"))
            defs.append(f"!{node} = distinct !{{!{node}, {props}}}")
        llvm_ir = "".join(out)
    return llvm_ir + "\n" + "\n".join(defs) + "\n" if len(defs) > 2 else llvm_ir


def entry_alloca(b: ir.IRBuilder, t: ir.Type):
    """Stack space in the function's entry block (where LLVM promotes it to registers)."""
    with b.goto_entry_block():
        return b.alloca(t)


def new_function(module: ir.Module, name: str, arg_types, arg_names=None,
                 noalias=True, ret: ir.Type = ir.VoidType()) -> tuple[ir.Function, ir.IRBuilder]:
    """A function (void unless `ret`) with pointer args marked noalias (buffers never overlap)
    and nounwind; returns it and a builder at its entry block. (znver4/5 hosts already pick
    512-bit vectors.)"""
    fn = ir.Function(module, ir.FunctionType(ret, list(arg_types)), name)
    fn.attributes.add("nounwind")
    for k, a in enumerate(fn.args):
        if arg_names:
            a.name = arg_names[k]
        if noalias and isinstance(a.type, ir.PointerType):
            a.add_attribute("noalias")
    return fn, ir.IRBuilder(fn.append_basic_block("entry"))
