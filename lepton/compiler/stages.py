"""The compile pipeline as one line of named stages. Each takes the artefact the stage before it
returned and returns a new one; no stage edits an earlier stage's result.

    trace (lepton/compile.py) -> Graph -passes-> Optimised -partition-> Partitioned -plan-> Planned
        -lower-> Lowered -llvm-> Native -load-> Loaded

    native = run(traced_graph, options, until="llvm", times=times)   # times: stage -> seconds
    loaded = run(native, options, times=times)                       # the "load" stage
    loaded.lib.address(ENTRY); loaded.layout.workspace_bytes

`run` starts at the stage that takes the artefact it is given, so a compile whose `Native`
came from the disk cache (compiler/store.py) runs only `load`. With `options.dump_dir`, each
stage writes its artefact there: the passes the IR after each pass (pipeline.py), then
`NAME.partition.txt`, `NAME.plan.txt`, `NAME.llvm.ll` (lower), `NAME.llvm-opt.ll` (llvm).
`Layout` is everything the runtime needs to call the loaded code: it is plain data (types,
output sources, constants, sizes, messages), so the disk cache stores it beside the object code.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from ..ir.graph import Graph
from ..ir.types import TensorType
from ..runtime import kernel_cache, routines
from ..runtime.cache import DiskCache
from ..runtime.compile_threads import compile_all
from ..runtime.jit import MODEL_LEVEL, ROUTINE_LEVEL, NativeLibrary
from .codegen.lower import ENTRY, lower_graph, statuses
from .fusion import Group, partition
from .memory import MemoryPlan, plan_memory, schedule_of
from .pipeline import PassRecord, run_pipeline


@dataclass(frozen=True)
class Options:
    """What changes a compile besides the graph: the flags that change the code (threads,
    profile, vector width: part of the cache key) and how to run (verify, dump)."""
    threads: int = 1
    width: int | None = None
    profile: bool = False
    verify: bool = False
    dump_dir: str | None = None
    cache_dir: str | None = None    # the disk cache, for the shared routines and big kernels
    compile_threads: int = 1        # LLVM modules compiled at once (runtime/compile_threads.py)

    def flags(self) -> str:
        return f"O{MODEL_LEVEL} threads={self.threads}" + (" profile" if self.profile else "")


@dataclass(frozen=True)
class Optimised:
    graph: Graph
    passes: tuple[PassRecord, ...]


@dataclass(frozen=True)
class Partitioned:
    graph: Graph
    groups: tuple[Group, ...]

    def dump(self) -> str:
        return "\n".join(f"group {n}: {grp.describe()} -> " + ", ".join(
            f"{v.op}:{v.type}" for v in grp.outputs) for n, grp in enumerate(self.groups))


@dataclass(frozen=True)
class Planned:
    graph: Graph
    groups: tuple[Group, ...]
    plan: MemoryPlan

    def dump(self) -> str:
        p = self.plan
        index = {v: i for i, v in enumerate(self.graph.nodes)}
        lines = [f"intermediate bytes {p.intermediate_bytes} (one buffer each: {p.naive_bytes})"]
        lines += [f"%{index[v]}: {v.type} at slot {slot} + {off}"
                  for v, (slot, off) in sorted(p.where.items(), key=lambda e: index.get(e[0], -1))
                  if v in index]
        return "\n".join(lines)


@dataclass(frozen=True)
class Layout:
    """How to call the entry: its signature, where each output comes from (memory.OutputSpec's
    source), the constants' arrays, the workspace size, the kernels it calls, and what each
    failure status means as (message, source line or None)."""
    input_types: tuple[TensorType, ...]
    output_types: tuple[TensorType, ...]
    output_sources: tuple[tuple, ...]
    constants: tuple[np.ndarray, ...]
    workspace_bytes: int
    kernel_names: tuple[str, ...]
    errors: dict

    def messages(self) -> dict[int, str]:
        return {k: msg + (f" at {loc}" if loc else "") for k, (msg, loc) in self.errors.items()}


@dataclass(frozen=True)
class Lowered:
    llvm_ir: str
    kernels: tuple
    layout: Layout

    def dump(self) -> str:
        return self.llvm_ir


@dataclass(frozen=True)
class Native:
    """Object code for the host, with the LLVM IR it came from (from the disk cache: its UTF-8
    bytes, decoded by whoever shows it) and the optimised IR when it was compiled in this
    process (None from the disk cache)."""
    object: bytes
    llvm_ir: str | bytes
    optimized_ir: str | None
    layout: Layout
    routines: tuple[str, ...] = ()          # the shared routines it calls (runtime/routines.py)
    kernel_objects: tuple[bytes, ...] = ()  # its big kernels' objects (runtime/kernel_cache.py)
    kernel_keys: tuple[str, ...] = ()       # and their disk cache keys

    def dump(self) -> str:
        return self.optimized_ir or ""


@dataclass(frozen=True)
class Loaded:
    lib: NativeLibrary
    layout: Layout
    entry: str = ENTRY


def passes(g: Graph, o: Options) -> Optimised:
    graph, records = run_pipeline(g, verify_each=o.verify, dump_dir=o.dump_dir)
    return Optimised(graph, tuple(records))


def partition_stage(a: Optimised, o: Options) -> Partitioned:
    return Partitioned(a.graph, tuple(partition(a.graph)))


def plan_stage(a: Partitioned, o: Options) -> Planned:
    groups = a.groups
    plan = plan_memory(a.graph, {v for grp in groups for v in grp.outputs}, schedule_of(groups))
    return Planned(a.graph, groups, plan)


def lower_stage(a: Planned, o: Options) -> Lowered:
    g, plan = a.graph, a.plan
    low = lower_graph(g, plan, list(a.groups), o.profile, o.threads)
    layout = Layout(tuple(v.type for v in g.inputs), tuple(v.type for v in g.outputs),
                    tuple(s.source for s in plan.outputs), tuple(plan.constants),
                    low.workspace_bytes, tuple(k.fn.name for k in low.kernels), errors(g))
    return Lowered(low.llvm_ir, tuple(low.kernels), layout)


def llvm_stage(a: Lowered, o: Options) -> Native:
    """The shared GEMM routines compiled (or loaded) once per process and host, not in this
    module; with a disk cache or several compile threads, each big kernel a module of its own
    (and with the cache its own cached object); the rest at O2. Every module still to compile
    goes to the compile threads at once."""
    cache = DiskCache(o.cache_dir) if o.cache_dir else None
    model_ir, shared = routines.split_routines(a.llvm_ir, o.width)
    todo = routines.to_compile(shared, cache, o.width)
    chunks, found = [], []
    if cache or o.compile_threads > 1:
        model_ir, chunks = kernel_cache.split_kernels(model_ir, a.layout.kernel_names,
                                                      o.flags(), o.width)
        found = kernel_cache.lookup(chunks, cache) if cache else [None] * len(chunks)
    new = [c for c, obj in zip(chunks, found) if obj is None]
    jobs = [(r.ir, ROUTINE_LEVEL) for r in todo] + [(c.ir, MODEL_LEVEL) for c in new]
    *objects, (obj, optimized) = compile_all(jobs + [(model_ir, MODEL_LEVEL)], o.width,
                                             o.compile_threads)
    objects = [b for b, _ in objects]
    routines.load_routines(shared, cache, o.width,
                           {r.symbol: b for r, b in zip(todo, objects)})
    fresh = iter(objects[len(todo):])
    extra = [b if b is not None else next(fresh) for b in found]
    if cache:
        kernel_cache.store(new, objects[len(todo):], cache)
    return Native(obj, a.llvm_ir, optimized, a.layout, tuple(r.symbol for r in shared),
                  tuple(extra), tuple(c.key for c in chunks))


def load_stage(a: Native, o: Options) -> Loaded:
    """(The routines a.object calls are loaded already: by llvm_stage or store.fetch.)"""
    return Loaded(NativeLibrary(a.object, a.optimized_ir, o.width, extra=a.kernel_objects),
                  a.layout)


# (name, the artefact type it takes, the stage, dump file suffix or None)
STAGES = (
    ("passes", Graph, passes, None),      # the pass pipeline dumps the IR after each pass
    ("partition", Optimised, partition_stage, "partition.txt"),
    ("plan", Partitioned, plan_stage, "plan.txt"),
    ("lower", Planned, lower_stage, "llvm.ll"),
    ("llvm", Lowered, llvm_stage, "llvm-opt.ll"),
    ("load", Native, load_stage, None),
)
NAMES = tuple(s[0] for s in STAGES)


def run(artefact, options: Options, *, until: str = "load", times: dict | None = None,
        keep: dict | None = None, name: str = "main"):
    """Runs the stages from the one that takes `artefact` through `until`; returns the last
    artefact. `times` gets each stage's seconds, `keep` each stage's artefact by stage name;
    `name` names the dump files."""
    if until not in NAMES:
        raise ValueError(f"until={until!r}: not a stage ({', '.join(NAMES)})")
    start = next((i for i, s in enumerate(STAGES) if isinstance(artefact, s[1])), None)
    if start is None:
        raise TypeError(f"no stage takes a {type(artefact).__name__}")
    if start > NAMES.index(until):
        raise ValueError(f"a {type(artefact).__name__} is past stage {until!r}")
    for stage, _, fn, suffix in STAGES[start:NAMES.index(until) + 1]:
        t = time.perf_counter()
        artefact = fn(artefact, options)
        if times is not None:
            times[stage] = time.perf_counter() - t
        if keep is not None:
            keep[stage] = artefact
        if options.dump_dir and suffix:
            os.makedirs(options.dump_dir, exist_ok=True)
            with open(os.path.join(options.dump_dir, f"{name}.{suffix}"), "w") as f:
                f.write(artefact.dump())
    return artefact


def errors(g: Graph) -> dict[int, tuple[str, str | None]]:
    """What each status of the compiled entry means: (the op's message, its source line)."""
    return {k: (v.opdef.runtime_error(v.attrs), v.loc) for v, k in statuses(g).items()}

