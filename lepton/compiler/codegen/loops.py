"""Loop-building helpers for llvmlite's IR builder: counted loops with constant or dynamic bounds
that LLVM's vectoriser recognises (canonical phi induction, unit step, no side exits).

    with for_range(b, n) as i:      # i: i64 from 0 to n-1
        b.store(..., b.gep(out, [i]))
"""
from __future__ import annotations

import functools
import re
from contextlib import contextmanager

from llvmlite import ir

i64 = ir.IntType(64)
i32 = ir.IntType(32)
i8 = ir.IntType(8)
i1 = ir.IntType(1)


def const(v: int) -> ir.Constant:
    return ir.Constant(i64, int(v))


def vconst(vt: ir.VectorType, value) -> ir.Constant:
    """A vector constant: `value` for every lane, a list of lanes, or None for zeros. One object
    per distinct constant, so llvmlite formats its text once (it caches a value's text): it
    formatted each use afresh, and that was half the time of building a kernel's IR (vmath's
    and the micro-kernels' splats)."""
    if value is None:
        return _vector(vt, None, False)
    if isinstance(value, (list, tuple)):
        return _vector(vt, tuple(_key(x) for x in value), False)
    return _vector(vt, (_key(value),), True)


def _key(x):
    return x.hex() if isinstance(x, float) else x   # -0.0 and 0.0 are equal as keys


@functools.lru_cache(maxsize=4096)
def _vector(vt: ir.VectorType, key: tuple | None, splat: bool) -> ir.Constant:
    if key is None:
        return ir.Constant(vt, None)
    lanes = [float.fromhex(x) if isinstance(x, str) else x for x in key]
    return ir.Constant(vt, lanes * vt.count if splat else lanes)


# for_range marks a latch with `!lepton.loop.<unroll 0/1>.<interleave count>`; loop_metadata
# turns the marks into LLVM loop metadata.
_MARK = re.compile(r"!lepton\.loop\.([01])\.(\d+) !\d+")


@contextmanager
def for_range(b: ir.IRBuilder, n, start=0, step=1, name="i", unroll: bool = True,
              interleave: int = 0):
    """A loop `for i in range(start, n, step)`; the body is emitted inside the `with` block.
    Emits nothing observable when the trip count is zero. unroll=False keeps LLVM from
    unrolling it (it still vectorises); interleave=n asks the vectoriser for n interleaved
    vector iterations (4: independent accumulators; 1: none, when two would not fit in the
    registers), 0 lets it choose: see `loop_metadata`."""
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
    if not unroll or interleave:
        latch.set_metadata(f"lepton.loop.{int(unroll)}.{interleave}", b.module.add_metadata([]))
    b.position_at_end(done)


def loop_metadata(llvm_ir: str) -> str:
    """Turns the latches marked by for_range into LLVM loop metadata (a distinct
    self-referencing node per loop, which llvmlite's builder cannot express)."""
    defs: list[str] = []

    def node(m):
        n = 900000 + len(defs)
        props = ([] if m[1] == "1" else ['!{!"llvm.loop.unroll.disable"}']) + \
            ([f'!{{!"llvm.loop.interleave.count", i32 {m[2]}}}'] if m[2] != "0" else [])
        defs.append(f"!{n} = distinct !{{!{n}, {', '.join(props)}}}")
        return f"!llvm.loop !{n}"

    llvm_ir = _MARK.sub(node, llvm_ir)
    return llvm_ir + "\n" + "\n".join(defs) + "\n" if defs else llvm_ir


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
