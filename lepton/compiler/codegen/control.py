"""Native control flow: `scan`, `while_loop` and `cond` lowered to an LLVM loop or branch around
calls of their regions, each region compiled once, so code size and compile time do not grow
with the trip count.

A region is lowered like a graph (its own fusion partition, memory plan and kernels, by
lower.emit_kernels, recursively for nested control flow) into `i32 name(i8** buffers)`, the
calling convention of `lepton_main`: buffers `[inputs..., outputs..., constants..., workspace]`,
returning 0 or the status of the check that failed (statuses are numbered over the whole
program, regions included: `all_values`). The region's constants are globals of the module;
its workspace is planned once and lives in the control kernel's scratch.

A control kernel is `i32 name(out..., operand..., i8* scratch)`: its outputs are the `get`s
reading the op's results (each result's buffer is the get's, so a get is never a copy), its
operands the op's. Per kind:
- scan: step t reads its x slices at x + t*slice (reverse: t = length-1 .. 0) and writes its
  y slices straight into the stacked ys at y + t*slice. Each carry has two buffers that steps
  write in turn (no copy between steps; step 0 reads the init in place); the one the last step
  writes is the result's buffer, chosen by the parity of the static trip count.
- while_loop: the cond region, then the body, until cond is false; the carries alternate
  between a scratch buffer and the result's, and a copy is made at the end when the trip
  count's parity left the carry in the scratch one.
- cond: loads the predicate and calls only the taken branch.
A region's output that no kernel of it writes (an input returned as is, a value returned twice)
is copied by the caller after the call.

    fn, scratch_bytes = CONTROL_KERNELS["scan"](module, name, group, status, threads)
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...ir.graph import Graph
from ...ir.ops import REGIONS
from ..fusion import Group, partition
from ..memory import MemoryPlan, align, plan_memory, schedule_of
from .loops import const, entry_alloca, for_range, i1, i32, i64, i8, new_function
from .scalar import mem_type

I8P = i8.as_pointer()


def all_values(g: Graph):
    """g's values in order, each control op followed by its regions' values (recursively)."""
    for v in g.nodes:
        yield v
        for r in REGIONS.get(v.op, ()):
            yield from all_values(v.attrs[r])


@dataclass
class Region:
    """A region lowered to `i32 fn(i8** buffers)` with its memory plan and the bytes of its
    workspace (intermediates, then its kernels' scratch)."""
    fn: ir.Function
    plan: MemoryPlan
    graph: Graph
    constants: list[ir.GlobalVariable]
    workspace: int


def lower_region(module: ir.Module, g: Graph, name: str, status, threads: int) -> Region:
    from . import lower  # lower.py's table holds this module's kernels
    groups = partition(g)
    plan = plan_memory(g, {v for grp in groups for v in grp.outputs}, schedule_of(groups))
    kernels = lower.emit_kernels(module, g, plan, groups, status, threads, prefix=name + "_")
    fn = lower.emit_entry(module, kernels, plan, name=name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    consts = []
    for j, c in enumerate(plan.constants):
        data = bytearray(c.tobytes()) or bytearray(1)
        gv = ir.GlobalVariable(module, ir.ArrayType(i8, len(data)), f"{name}_c{j}")
        gv.initializer = ir.Constant(gv.type.pointee, data)
        gv.global_constant, gv.linkage, gv.align = True, "private", 64
        consts.append(gv)
    return Region(fn, plan, g, consts,
                  align(plan.intermediate_bytes + lower.scratch_bytes(kernels)))


def memcpy(b: ir.IRBuilder, dst, src, nbytes: int) -> None:
    if nbytes:
        name = "llvm.memcpy.p0.p0.i64"
        f = b.module.globals.get(name) or ir.Function(
            b.module, ir.FunctionType(ir.VoidType(), [I8P, I8P, i64, i1]), name)
        b.call(f, [dst, src, const(nbytes), ir.Constant(i1, 0)])


def call_region(b: ir.IRBuilder, r: Region, ins: list, outs: list, workspace) -> ir.Value:
    """Calls region r on i8* buffers; returns from the caller with the status of a failed
    check; then copies the outputs no kernel of r writes."""
    p = r.plan
    n = p.workspace_slot + 1
    arr = entry_alloca(b, ir.ArrayType(I8P, n))
    ptrs = ins + outs + [b.bitcast(c, I8P) for c in r.constants] + [workspace]
    for k, x in enumerate(ptrs):
        b.store(x, b.gep(arr, [const(0), const(k)]))
    failed = b.call(r.fn, [b.gep(arr, [const(0), const(0)])])
    with b.if_then(b.icmp_unsigned("!=", failed, ir.Constant(i32, 0)), likely=False):
        b.ret(failed)
    for o, spec, v in zip(outs, p.outputs, r.graph.outputs):
        kind = spec.source[0]
        if kind != "kernel":
            src = {"input": ins, "output": outs, "constant": r.constants}[kind][spec.source[1]]
            memcpy(b, o, b.bitcast(src, I8P), v.type.nbytes)
    return failed


class Scratch:
    """Bump allocation of 64-byte aligned ranges of a kernel's scratch."""

    def __init__(self, b: ir.IRBuilder, base):
        self.b, self.base, self.size = b, base, 0

    def take(self, nbytes: int):
        p = self.b.gep(self.base, [const(self.size)])
        self.size += align(max(nbytes, 1))
        return p


@dataclass
class _Kernel:
    """A control kernel being built: results[k] is the i8* of result k (its first get's
    buffer; None when no get reads it), ops the operands' i8*s."""
    fn: ir.Function
    b: ir.IRBuilder
    results: list
    ops: list
    scratch: Scratch
    dups: list  # (i8* of a get, i8* of the same result's first get, bytes)

    def finish(self) -> tuple[ir.Function, int]:
        """Fills the gets that read a result another get already holds; returns 0."""
        for dst, src, n in self.dups:
            memcpy(self.b, dst, src, n)
        self.b.ret(ir.Constant(i32, 0))
        return self.fn, self.scratch.size


def _new_kernel(module: ir.Module, name: str, grp: Group) -> _Kernel:
    """`i32 name(out..., operand..., i8* scratch)` for the control op of grp."""
    v = grp.members[0]
    args = [mem_type(x.dtype).as_pointer() for x in grp.outputs + list(v.inputs)] + [I8P]
    fn, b = new_function(module, name, args, ret=i32)
    outs = [b.bitcast(a, I8P) for a in fn.args[:len(grp.outputs)]]
    ops = [b.bitcast(a, I8P) for a in fn.args[len(grp.outputs):-1]]
    results: list = [None] * len(v.type.types)
    for get, p in zip(grp.outputs, outs):
        results[get.attrs["index"]] = results[get.attrs["index"]] or p
    dups = [(p, results[g.attrs["index"]], g.type.nbytes)
            for g, p in zip(grp.outputs, outs) if p is not results[g.attrs["index"]]]
    return _Kernel(fn, b, results, ops, Scratch(b, fn.args[-1]), dups)


def _copy_if_elsewhere(b: ir.IRBuilder, cur, out, nbytes: int) -> None:
    with b.if_then(b.icmp_unsigned("!=", b.ptrtoint(cur, i64), b.ptrtoint(out, i64))):
        memcpy(b, out, cur, nbytes)


def emit_scan(module: ir.Module, name: str, grp: Group, status, threads: int):
    v = grp.members[0]
    a = v.attrs
    nc, nk, n = a["num_consts"], a["num_carry"], a["length"]
    k_ = _new_kernel(module, name, grp)
    b, results, ops, scratch = k_.b, k_.results, k_.ops, k_.scratch
    body = lower_region(module, a["body"], name + "_body", status, threads)
    consts, init, xs = ops[:nc], ops[nc:nc + nk], ops[nc + nk:]
    types = v.type.types
    bufs = []  # per carry: (the buffer steps 0, 2, ... write, the one steps 1, 3, ... write)
    for k in range(nk):
        last = results[k] or scratch.take(types[k].nbytes)
        other = scratch.take(types[k].nbytes)
        bufs.append((last, other) if (n - 1) % 2 == 0 else (other, last))
    # a y nobody reads: every step writes its slice to one scratch slice
    slices = [t.nbytes // n if n else 0 for t in types[nk:]]
    ys = [results[nk + j] or scratch.take(s) for j, s in enumerate(slices)]
    ystride = [s if results[nk + j] else 0 for j, s in enumerate(slices)]
    xstride = [x.type.nbytes // n if n else 0 for x in v.inputs[nc + nk:]]
    workspace = scratch.take(body.workspace)
    cur = [entry_alloca(b, I8P) for _ in range(nk)]
    for c, p in zip(cur, init):
        b.store(p, c)
    with for_range(b, n, name="step", unroll=False) as i:
        t = b.sub(const(n - 1), i) if a["reverse"] else i
        odd = b.trunc(i, i1)
        nxt = [b.select(odd, x1, x0) for x0, x1 in bufs]
        ins = consts + [b.load(c) for c in cur] + [
            b.gep(x, [b.mul(t, const(s))]) for x, s in zip(xs, xstride)]
        outs = nxt + [b.gep(y, [b.mul(t, const(s))]) for y, s in zip(ys, ystride)]
        call_region(b, body, ins, outs, workspace)
        for c, p in zip(cur, nxt):
            b.store(p, c)
    for k in range(nk):
        if results[k] is not None:
            _copy_if_elsewhere(b, b.load(cur[k]), results[k], types[k].nbytes)
    return k_.finish()


def emit_while(module: ir.Module, name: str, grp: Group, status, threads: int):
    v = grp.members[0]
    nc = v.attrs["num_consts"]
    k_ = _new_kernel(module, name, grp)
    fn, b, results, ops, scratch = k_.fn, k_.b, k_.results, k_.ops, k_.scratch
    cond = lower_region(module, v.attrs["cond"], name + "_cond", status, threads)
    body = lower_region(module, v.attrs["body"], name + "_body", status, threads)
    consts, init, types = ops[:nc], ops[nc:], v.type.types
    bufs = [(scratch.take(t.nbytes), results[k] or scratch.take(t.nbytes))
            for k, t in enumerate(types)]
    flag = scratch.take(1)
    workspace = scratch.take(max(cond.workspace, body.workspace))
    cur = [entry_alloca(b, I8P) for _ in types]
    for c, p in zip(cur, init):
        b.store(p, c)
    count = entry_alloca(b, i64)
    b.store(const(0), count)
    head, step, done = (fn.append_basic_block(s) for s in ("while.cond", "while.body", "while.end"))
    b.branch(head)
    b.position_at_end(head)
    carry = [b.load(c) for c in cur]
    call_region(b, cond, consts + carry, [flag], workspace)
    b.cbranch(b.icmp_unsigned("!=", b.load(flag), ir.Constant(i8, 0)), step, done)
    b.position_at_end(step)
    i = b.load(count)
    odd = b.trunc(i, i1)
    nxt = [b.select(odd, x1, x0) for x0, x1 in bufs]
    call_region(b, body, consts + carry, nxt, workspace)
    for c, p in zip(cur, nxt):
        b.store(p, c)
    b.store(b.add(i, const(1)), count)
    b.branch(head)
    b.position_at_end(done)
    for k, t in enumerate(types):
        if results[k] is not None:
            _copy_if_elsewhere(b, b.load(cur[k]), results[k], t.nbytes)
    return k_.finish()


def emit_cond(module: ir.Module, name: str, grp: Group, status, threads: int):
    v = grp.members[0]
    k_ = _new_kernel(module, name, grp)
    b, results, ops, scratch = k_.b, k_.results, k_.ops, k_.scratch
    yes = lower_region(module, v.attrs["true_branch"], name + "_true", status, threads)
    no = lower_region(module, v.attrs["false_branch"], name + "_false", status, threads)
    outs = [r or scratch.take(t.nbytes) for r, t in zip(results, v.type.types)]
    workspace = scratch.take(max(yes.workspace, no.workspace))
    taken = b.icmp_unsigned("!=", b.load(ops[0]), ir.Constant(i8, 0))
    with b.if_else(taken) as (then, otherwise):
        with then:
            call_region(b, yes, ops[1:], outs, workspace)
        with otherwise:
            call_region(b, no, ops[1:], outs, workspace)
    return k_.finish()


# the lowering of each op with regions (lower.py's loop calls these for `control` groups)
CONTROL_KERNELS = {"scan": emit_scan, "while_loop": emit_while, "cond": emit_cond}
