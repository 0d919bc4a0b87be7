"""Lowering a graph to one LLVM module: one kernel function per distinct structure of a group of
ops (groups the same up to their buffers share it, see kernel_key.py), and the entry
`i32 lepton_main(i8** buffers)` that calls them in order, so a call from Python is one foreign
call. The entry returns 0, or the status of the first check that failed (it stops there):
`statuses(g)` numbers the graph's ops that can fail (`OpDef.runtime_error`) 1, 2, ... in graph
order, so the code and the runtime's table of messages agree without storing anything.

Lowering is one table, `GROUPS`, from the kind of a fusion group (rows, matmul, conv2d,
single, control) to the emitter of its kernel, walked by one loop (`emit_kernels`); a `single`
group's op is looked up in `SINGLE`. Every emitter returns a `kernel.Kernel`. An op that needs
a kernel (OpDef.lowered) and has none is an import-time error.

    lowered = lower_graph(graph, plan)       # -> Lowered(llvm_ir=..., kernels=[...], ...)
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, replace

from llvmlite import ir

from ...ir.graph import Graph, Value
from ...ir.ops import OPS
from ..memory import MemoryPlan
from . import control, conv, conv_grad, grad_kernels
from ..fusion import Group, partition
from .epilogue import emit_epilogue_kernel
from .fused import emit_rows, operands
from .kernel import Kernel
from .kernel_key import correspondence, group_key, key_hash
from .loops import const, i1, i32, i8, loop_metadata, new_function
from .movement import emit_check_index, emit_concatenate, emit_copy_view, emit_take
from .random import emit_philox
from .reduce import emit_argmax, emit_reduce
from .scalar import SCALAR, mem_type

ENTRY = "lepton_main"
TICKS = "lepton_ticks"


def statuses(g: Graph) -> dict[Value, int]:
    """The status the entry returns when the op (one that can fail) fails: 1, 2, ..., in
    graph order, the ops of a region numbered where its op stands (control.all_values)."""
    fails = (v for v in control.all_values(g) if v.opdef.runtime_error is not None)
    return {v: k for k, v in enumerate(fails, 1)}


def _ptr(v: Value):
    return mem_type(v.dtype).as_pointer()


def _map_kernel(body):
    """Wraps a body emitter `body(b, value, out_ptr, in_ptrs)` as a kernel over all inputs."""
    def emit(module, name, v):
        fn, b = new_function(module, name, [_ptr(v)] + [_ptr(x) for x in v.inputs]
                             + [i8.as_pointer()])
        body(b, v, fn.args[0], list(fn.args[1:-1]))
        b.ret_void()
        return Kernel(fn, outputs=(v,), operands=v.inputs)
    return emit


def _check_index(module, name, v):
    fn, b = new_function(module, name, [_ptr(v), _ptr(v.inputs[0]), i8.as_pointer()], ret=i1)
    b.ret(emit_check_index(b, v, fn.args[0], fn.args[1]))
    return Kernel(fn, outputs=(v,), operands=v.inputs)


def _reduce(b, v, out, ins):
    x = v.inputs[0]
    emit_reduce(b, v.op, x.dtype, ins[0], x.shape, v.attrs["axes"], out)


def _argmax(b, v, out, ins):
    x = v.inputs[0]
    emit_argmax(b, x.dtype, ins[0], x.shape, v.attrs["axis"], out)


def _pool(kind):
    def emit(module, name, v):
        a = v.attrs
        k = conv.emit_pool2d(module, name, kind, v.inputs[0].type, v.type, a["kernel"],
                             a["stride"], a["padding"])
        return replace(k, outputs=(v,), operands=v.inputs)
    return emit


def _conv2d_weight_grad(module, name, v, threads=1):
    a = v.attrs
    k = conv_grad.emit_conv2d_weight_grad(module, name, v.inputs[0].type, v.inputs[1].type,
                                          v.type, a["stride"], a["padding"], a["dilation"],
                                          a["groups"], threads)
    return replace(k, outputs=(v,), operands=v.inputs)


def _copy(b, v, out, ins):
    emit_copy_view(b, v, out, ins[0])


# The kernel of an op alone (a `single` group): every op fusion leaves on its own.
SINGLE = {
    "sum": _map_kernel(_reduce), "prod": _map_kernel(_reduce),  # a reduction fusion did not
    "max": _map_kernel(_reduce), "min": _map_kernel(_reduce),   # take (not over trailing axes)
    "argmax": _map_kernel(_argmax),
    "transpose": _map_kernel(_copy),
    "broadcast_to": _map_kernel(_copy),
    "slice": _map_kernel(_copy),
    "concatenate": _map_kernel(lambda b, v, out, ins: emit_concatenate(b, v, out, ins)),
    "take": _map_kernel(lambda b, v, out, ins: emit_take(b, v, out, *ins)),
    "check_index": _check_index,
    "conv2d_weight_grad": _conv2d_weight_grad,
    "max_pool2d": _pool("max"),
    "avg_pool2d": _pool("avg"),
    "philox": _map_kernel(emit_philox),
    **{op: _map_kernel(body) for op, body in grad_kernels.BODIES.items()},
}


@dataclass(frozen=True)
class How:
    """What a group's kernel depends on besides the group: whether its outputs may not alias
    its inputs, the threads it may use, every failing op's status (the whole program's)."""
    noalias: bool
    threads: int
    status: dict
    in_place: dict | None = None    # {operand index: output index} read through the output


def _rows(module, name, grp: Group, how: How) -> Kernel:
    fn, ext = emit_rows(module, name, grp, how.noalias, how.threads, how.in_place)
    return Kernel(fn, outputs=tuple(grp.outputs), operands=tuple(ext))


def _gemm(module, name, grp: Group, how: How) -> Kernel:
    fn, ops, scratch = emit_epilogue_kernel(module, name, grp, how.threads)
    return Kernel(fn, scratch, tuple(grp.outputs), tuple(ops))


# single-op kernels that may split their work across threads: SINGLE[op](..., threads)
THREADED = {"conv2d_weight_grad"}


def _single(module, name, grp: Group, how: How) -> Kernel:
    v = grp.members[0]
    extra = (how.threads,) if v.op in THREADED else ()
    return replace(SINGLE[v.op](module, name, v, *extra), status=how.status.get(v, 0))


def _control(module, name, grp: Group, how: How) -> Kernel:
    op = grp.members[0]
    fn, scratch = control.CONTROL_KERNELS[op.op](module, name, grp, how.status, how.threads)
    return Kernel(fn, scratch, tuple(grp.outputs), op.inputs, status=-1)


# Lowering: one emitter per kind of fusion group (fusion.py), walked by emit_kernels.
GROUPS = {
    "rows": _rows,          # elementwise ops and row reductions in one loop nest (fused.py)
    "matmul": _gemm,        # a GEMM with its elementwise epilogue (epilogue.py, gemm.py)
    "conv2d": _gemm,        # a convolution with its epilogue (epilogue.py, conv.py)
    "single": _single,      # any other op alone: SINGLE[op]
    "control": _control,    # scan / while_loop / cond calling their regions (control.py)
}

# Every op a kernel computes is covered: elementwise ones by rows groups (scalar.py), the
# heads of GEMM groups, control ops by control.py, the rest by SINGLE.
_missing = {n for n, d in OPS.items() if d.lowered} - set(SCALAR) - set(SINGLE) \
    - {"matmul", "conv2d"} - set(control.CONTROL_KERNELS)
if _missing:
    raise ImportError(f"ops without a lowering: {sorted(_missing)}")


# per LLVM module: the kernels emitted so far by structure, so a region's body reuses them
_EMITTED: "weakref.WeakKeyDictionary[ir.Module, dict]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Lowered:
    llvm_ir: str
    kernels: list[Kernel]
    workspace_bytes: int    # the plan's intermediates, then the kernels' scratch (shared)


def scratch_bytes(kernels: list[Kernel]) -> int:
    """The scratch the kernels need: one buffer after the intermediates, reused by each."""
    return max([k.scratch_bytes for k in kernels], default=0)


def lower_graph(g: Graph, plan: MemoryPlan, groups: list[Group] | None = None,
                profile: bool = False, threads: int = 1) -> Lowered:
    """Emits one kernel per fusion group and the entry (the plan is left as it is). With
    profile, the entry records the cycle counter before the first kernel and after each one
    in the global array `TICKS` (len(kernels) + 1 entries)."""
    module = ir.Module(name=g.name)
    kernels = emit_kernels(module, g, plan, groups, statuses(g), threads)
    emit_entry(module, kernels, plan, profile)
    return Lowered(loop_metadata(str(module)), kernels,
                   plan.intermediate_bytes + scratch_bytes(kernels))


def emit_kernels(module: ir.Module, g: Graph, plan: MemoryPlan, groups: list[Group] | None,
                 status: dict[Value, int], threads: int = 1, prefix: str = "") -> list[Kernel]:
    """One internal kernel call per fusion group of g, emitted by GROUPS[group kind]. Groups
    that are the same up to their buffers share one function in the module (named by the
    structure, `k{hash}_{ops}`), bodies of control ops included. A control op's kernel holds
    its regions: it is its own (`{prefix}k{n}_{op}`). `status`: every failing op's status (of
    the whole program)."""
    kernels: list[Kernel] = []
    emitted = _EMITTED.setdefault(module, {})   # structural key -> first group, its kernel
    for n, grp in enumerate(groups if groups is not None else partition(g)):
        shared = grp.kind != "control"
        if shared and all(v.type.size == 0 for v in grp.outputs or grp.members):
            continue
        noalias, in_place = _in_place(grp, plan) if grp.kind == "rows" else (True, None)
        how = How(noalias, threads, status, in_place)
        key = group_key(grp, f"in place {sorted(in_place.items())}" if in_place else noalias,
                        threads) if shared else None
        if key in emitted:   # the same function up to its buffers: call it with this group's
            template, k = emitted[key]
            corr = correspondence(template, grp)
            k = replace(k, outputs=tuple(corr[v] for v in k.outputs),
                        operands=tuple(corr[x] for x in k.operands))
            if grp.kind == "single":
                k = replace(k, status=status.get(grp.members[0], 0))
        else:
            k = GROUPS[grp.kind](module, _name(grp, key, f"{prefix}k{n}"), grp, how)
            if shared:
                emitted[key] = grp, k
        kernels.append(k)
    for k in kernels:
        k.fn.linkage = "internal"
        if "noinline" not in k.fn.attributes:   # a kernel called N times is not copied N times
            k.fn.attributes.add("noinline")
    return kernels


def _in_place(grp: Group, plan: MemoryPlan) -> tuple[bool, dict | None]:
    """(noalias, {operand index: output index}) of a rows group: outputs sharing a buffer with
    an input only as its in-place pairs (fusion.Group.in_place_pairs) keep noalias, the kernel
    reading those inputs through the outputs' pointers (fused.emit_rows)."""
    outs = {plan.where[v]: v for v in grp.outputs}
    shared = [x for x in grp.reads() if plan.where.get(x) in outs]
    if not shared:
        return True, None
    pairs = set(grp.in_place_pairs())
    if not all((outs[plan.where[x]], x) in pairs for x in shared):
        return False, None
    ext = operands(grp)
    if not all(x in ext for x in shared):
        return False, None
    return True, {ext.index(x): grp.outputs.index(outs[plan.where[x]]) for x in shared}


def _name(grp: Group, key: str | None, own: str) -> str:
    """A shared kernel's name from its structure (k3f2a..._matmul_add_relu), or `own`_op."""
    if key is None:
        return f"{own}_{grp.members[0].op}"
    ops = "_".join(dict.fromkeys(v.op for v in grp.members))
    return f"k{key_hash(key)}_{ops[:48]}"


def emit_entry(module: ir.Module, kernels: list[Kernel], plan: MemoryPlan,
               profile: bool = False, name: str = ENTRY) -> ir.Function:
    """`i32 name(i8** buffers)` calling the kernels in order on plan's buffers; each kernel's
    scratch starts after the plan's intermediates in the workspace."""
    i8p = i8.as_pointer()
    fn = ir.Function(module, ir.FunctionType(i32, [i8p.as_pointer()]), name)
    fn.attributes.add("nounwind")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slots: dict[int, ir.Value] = {}
    tick = _ticker(module, b, len(kernels)) if profile else (lambda k: None)
    tick(0)

    def address(v: Value):
        slot, offset = plan.where[v]
        if slot not in slots:
            slots[slot] = b.load(b.gep(fn.args[0], [const(slot)]), name=f"buf{slot}")
        p = b.gep(slots[slot], [const(offset)]) if offset else slots[slot]
        return b.bitcast(p, _ptr(v))

    ws = plan.workspace_slot
    workspace = plan.intermediate_bytes + scratch_bytes(kernels)
    for i, k in enumerate(kernels, 1):
        args = [address(v) for v in k.outputs + k.operands]
        if workspace:
            if ws not in slots:
                slots[ws] = b.load(b.gep(fn.args[0], [const(ws)]), name="workspace")
            args.append(b.gep(slots[ws], [const(plan.intermediate_bytes)]))
        else:
            args.append(ir.Constant(i8p, None))
        failed = b.call(k.fn, args)
        tick(i)
        if k.status == -1:  # a control kernel returns the i32 status of its regions' checks
            with b.if_then(b.icmp_unsigned("!=", failed, ir.Constant(i32, 0)), likely=False):
                b.ret(failed)
        elif k.status:  # stop at a failed check: later kernels would read its zeroed indices
            with b.if_then(failed, likely=False):
                b.ret(ir.Constant(i32, k.status))
    b.ret(ir.Constant(i32, 0))
    return fn


def _ticker(module: ir.Module, b: ir.IRBuilder, n: int):
    """tick(i) stores the cycle counter in TICKS[i]."""
    i64 = ir.IntType(64)
    ticks = ir.GlobalVariable(module, ir.ArrayType(i64, n + 1), TICKS)
    ticks.initializer = ir.Constant(ticks.type.pointee, None)
    counter = ir.Function(module, ir.FunctionType(i64, []), "llvm.readcyclecounter")

    def tick(i: int):
        b.store(b.call(counter, []), b.gep(ticks, [ir.Constant(ir.IntType(32), 0), const(i)]))
    return tick
