"""The native code of an exported model: one LLVM module holding the lowered graph, its weights
as global constants and the C entry `int NAME_run(const void *const *inputs, void *const
*outputs)`, compiled to position-independent object code.

    lib = build_library(graph, n_inputs, "mlp")   # weights already constants of the graph
    lib.object                                    # bytes of the .o; lib.plan, lib.errors

NAME_run builds the pointer array Lepton's entry takes (`[inputs, outputs, constants,
workspace]`, compiler/memory.py), mallocs the workspace for this call (64-byte aligned) and
frees it, then copies the outputs no kernel writes (an input or constant returned as it is). It
returns the entry's status: 0, k > 0 when index check k failed, -1 when malloc failed. Nothing
is written to a global, so calls from several threads run at once. The code is compiled for one
thread (no libgomp) and references no symbol of Lepton's runtime; `_check_externals` proves it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from ..compiler import stages
from ..compiler.codegen.lower import ENTRY
from ..compiler.memory import MemoryPlan
from ..ir.graph import Graph
from ..runtime.jit import host_cpu, machine_features, optimize

i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
i8p = i8.as_pointer()

# What the object may call besides itself: the C library's allocator and copies, and libm.
_LIBC = {"malloc", "free", "memcpy", "memmove", "memset"}
_LIBM = re.compile(r"^(exp|expm1|exp2|log|log1p|log2|log10|sqrt|tanh|sinh|cosh|sin|cos|tan|"
                   r"asin|acos|atan|atan2|erf|erfc|pow|fmod|floor|ceil|round|rint|nearbyint|"
                   r"trunc|fabs|fmin|fmax|ldexp|frexp|hypot|cbrt|lgamma|tgamma)f?$")


@dataclass
class Library:
    object: bytes
    plan: MemoryPlan
    errors: dict[int, str]


def build_library(graph: Graph, name: str, width: int | None) -> Library:
    """Lowers `graph` (its weights constants) for one thread and wraps it as NAME_run."""
    kept: dict = {}
    lowered = stages.run(graph, stages.Options(threads=1), until="lower", keep=kept)
    g, plan = kept["plan"].graph, kept["plan"].plan
    mod = llvm.parse_assembly(lowered.llvm_ir)
    mod.link_in(llvm.parse_assembly(str(_wrapper(g, plan, lowered.layout.workspace_bytes,
                                                 name))))
    for f in mod.functions:   # only NAME_run is exported: LLVM may inline the rest
        if not f.is_declaration and f.name != f"{name}_run":
            f.linkage = "internal"
    cpu, features = host_cpu()
    tm = llvm.Target.from_default_triple().create_target_machine(
        cpu=cpu, features=machine_features(features, width), opt=3, reloc="pic",
        codemodel="default")
    mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
    mod.verify()
    optimize(mod, 3, tm)
    _check_externals(mod, name)
    return Library(tm.emit_object(mod), plan, lowered.layout.messages())


def _wrapper(g: Graph, plan: MemoryPlan, workspace_bytes: int, name: str) -> ir.Module:
    m = ir.Module(name=f"{name}_run")
    entry = ir.Function(m, ir.FunctionType(i32, [i8p.as_pointer()]), ENTRY)
    malloc = ir.Function(m, ir.FunctionType(i8p, [i64]), "malloc")
    free = ir.Function(m, ir.FunctionType(ir.VoidType(), [i8p]), "free")
    memcpy = ir.Function(m, ir.FunctionType(i8p, [i8p, i8p, i64]), "memcpy")
    consts = []
    for j, c in enumerate(plan.constants):
        data = np.ascontiguousarray(c).tobytes()
        gv = ir.GlobalVariable(m, ir.ArrayType(i8, len(data)), f"{name}_weight{j}")
        gv.global_constant, gv.linkage, gv.align = True, "internal", 64
        gv.initializer = ir.Constant(gv.value_type, bytearray(data))
        consts.append(gv)

    fn = ir.Function(m, ir.FunctionType(i32, [i8p.as_pointer(), i8p.as_pointer()]),
                     f"{name}_run")
    fn.attributes.add("nounwind")
    inputs, outputs = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    n_in, n_out = plan.n_inputs, plan.n_outputs
    ptrs = b.alloca(i8p, plan.workspace_slot + 1, name="buffers")

    def slot(k):
        return b.gep(ptrs, [ir.Constant(i32, k)])

    def arg(array, k):
        return b.load(b.gep(array, [ir.Constant(i32, k)]))
    for i in range(n_in):
        b.store(arg(inputs, i), slot(i))
    for k in range(n_out):
        b.store(arg(outputs, k), slot(n_in + k))
    for j, gv in enumerate(consts):
        b.store(b.bitcast(gv, i8p), slot(n_in + n_out + j))
    raw = ir.Constant(i8p, None)
    if workspace_bytes:
        raw = b.call(malloc, [ir.Constant(i64, workspace_bytes + 64)])
        with b.if_then(b.icmp_unsigned("==", raw, ir.Constant(i8p, None)), likely=False):
            b.ret(ir.Constant(i32, -1))
        at = b.and_(b.add(b.ptrtoint(raw, i64), ir.Constant(i64, 63)), ir.Constant(i64, ~63))
        b.store(b.inttoptr(at, i8p), slot(plan.workspace_slot))
    status = b.call(entry, [ptrs])
    if workspace_bytes:
        b.call(free, [raw])
    with b.if_then(b.icmp_signed("!=", status, ir.Constant(i32, 0)), likely=False):
        b.ret(status)
    for k, spec in enumerate(plan.outputs):   # outputs no kernel writes: copies
        kind = spec.source[0]
        if kind == "kernel" or not g.outputs[k].type.nbytes:
            continue
        j = spec.source[1]
        src = {"input": lambda: arg(inputs, j), "output": lambda: arg(outputs, j),
               "constant": lambda: b.bitcast(consts[j], i8p)}[kind]()
        b.call(memcpy, [arg(outputs, k), src, ir.Constant(i64, g.outputs[k].type.nbytes)])
    b.ret(ir.Constant(i32, 0))
    return m


def _check_externals(mod, name: str) -> None:
    """The library must stand alone: no mutable global (threads share it), no symbol of
    Lepton's runtime or libgomp."""
    for gv in mod.global_variables:
        if gv.is_declaration or " constant " not in str(gv).split("=", 1)[-1][:60]:
            raise RuntimeError(f"export {name}: the generated code uses the global "
                               f"{gv.name!r}, which an exported library cannot have (a bug)")
    for f in mod.functions:
        if f.is_declaration and not f.name.startswith("llvm.") and \
                f.name not in _LIBC and not _LIBM.match(f.name):
            raise RuntimeError(f"export {name}: the generated code calls {f.name!r}, which a "
                               f"stand-alone library cannot (a bug)")
