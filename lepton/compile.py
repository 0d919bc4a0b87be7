"""`lp.compile`: the driver that traces, optimises, lowers, JIT-compiles and caches per signature.

    f = lp.compile(fn)                         # compiles at the first call of each signature
    y = f(x, w)
    f = lp.compile(fn, example_args=(x, w))    # compiles now
    print(f.ir()); print(f.llvm_ir()); f.stats()

A signature is the arguments' pytree structure with each leaf's shape and dtype. Python scalars
become 0-d arrays (float -> f32, int -> i64, bool -> bool), as when tracing.
"""
from __future__ import annotations

import functools
import os
import time

import numpy as np

from . import config
from .compiler.codegen.lower import ENTRY, lower_graph, statuses
from .compiler.fusion import partition
from .compiler.memory import plan_memory
from .compiler.pipeline import run_pipeline
from .frontends.pytree import tree_flatten, tree_unflatten
from .frontends.tensor import constant
from .frontends.trace import trace_flat
from .ir.graph import Graph
from .ir.interpreter import evaluate
from .ir.printer import print_graph
from .nn import Module
from .runtime.executable import Executable
from .runtime.cache import DiskCache, cache_key
from .runtime.jit import NativeLibrary, compile_object, openmp_available

_SCALARS = {float: np.float32, int: np.int64, bool: np.bool_}


def as_array(x):
    """A call-time leaf as a NumPy array (Python scalars by the tracing rule)."""
    if type(x) in _SCALARS:
        try:
            return np.asarray(x, dtype=_SCALARS[type(x)])
        except OverflowError:
            raise ValueError(f"the Python int {x} does not fit in int64") from None
    return x if isinstance(x, np.ndarray) else np.asarray(x)


class CompileResult:
    """Everything produced for one signature: graphs, LLVM IR, executable, timings."""

    def __init__(self, traced: Graph, in_tree, out_tree, *, check: bool = False,
                 profile: bool = False):
        cfg = config.current()
        times = {}
        self.traced, self.in_tree, self.out_tree = traced, in_tree, out_tree
        t = time.perf_counter()
        self.graph, self.passes = run_pipeline(traced, verify_each=cfg.debug or check,
                                               dump_dir=cfg.dump_dir)
        times["passes"] = time.perf_counter() - t
        t = time.perf_counter()
        self.groups = partition(self.graph)
        self.plan = plan_memory(self.graph, {v for grp in self.groups for v in grp.outputs},
                                [(grp.outputs, grp.reads(), grp.in_place_pairs())
                                 for grp in self.groups])
        times["plan"] = time.perf_counter() - t
        self.threads = cfg.threads if cfg.threads > 1 and openmp_available() else 1
        self._native_code(cfg, profile, times)
        if cfg.dump_dir:
            with open(os.path.join(cfg.dump_dir, f"{traced.name}.llvm.ll"), "w") as f:
                f.write(self.llvm_ir)
            with open(os.path.join(cfg.dump_dir, f"{traced.name}.llvm-opt.ll"), "w") as f:
                f.write(self.lib.optimized_ir)
        g = self.graph
        self.executable = Executable(
            self.lib, ENTRY, [v.type for v in g.inputs], [v.type for v in g.outputs],
            [s.source for s in self.plan.outputs], self.plan.constants, self.plan.workspace_bytes,
            errors=status_messages(g))
        self.times = times

    def _native_code(self, cfg, profile: bool, times: dict) -> None:
        """Object code for the planned graph: from the disk cache, or lowered and compiled
        (then cached). Sets llvm_ir, kernel_names, kernels (None from the cache) and lib."""
        cache = DiskCache.from_config(cfg.cache_dir, cfg.cache and not cfg.dump_dir)
        flags = f"O3 threads={self.threads}" + (" profile" if profile else "")
        key = cache_key(print_graph(self.graph, locs=False), flags) if cache else None
        hit = cache.get(key) if cache else None
        self.cached = hit is not None
        t = time.perf_counter()
        if hit:
            obj, meta = hit
            self.llvm_ir, self.kernel_names = meta["llvm_ir"], meta["kernels"]
            self.plan.scratch_bytes = meta["scratch_bytes"]
            self.kernels = None
            self.lib = NativeLibrary(obj)
            times["cache_load"] = time.perf_counter() - t
            return
        lowered = lower_graph(self.graph, self.plan, self.groups, profile, self.threads)
        self.kernels = lowered.kernels
        self.kernel_names = [k.fn.name for k in self.kernels]
        self.llvm_ir = lowered.llvm_ir
        times["lower"] = time.perf_counter() - t
        t = time.perf_counter()
        obj, optimized = compile_object(self.llvm_ir)
        self.lib = NativeLibrary(obj, optimized)
        times["llvm"] = time.perf_counter() - t
        if cache:
            cache.put(key, obj, {"llvm_ir": self.llvm_ir, "kernels": self.kernel_names,
                                 "scratch_bytes": self.plan.scratch_bytes})

    def stats(self) -> dict:
        p = self.plan
        return {
            "kernels": len(self.kernel_names),
            "kernel_ops": list(self.kernel_names),
            "from_disk_cache": self.cached,
            "threads": self.threads,
            "fused_groups": [grp.describe() for grp in self.groups if len(grp.members) > 1],
            "values": len(self.graph.nodes),
            "workspace_bytes": p.workspace_bytes,
            "intermediate_bytes": p.intermediate_bytes,
            "naive_intermediate_bytes": p.naive_bytes,
            "scratch_bytes": p.scratch_bytes,
            "constant_bytes": sum(c.nbytes for c in p.constants),
            "passes": [{"name": r.name, "seconds": r.seconds, "change": r.change,
                        "rewrites": r.rewrites} for r in self.passes],
            "compile_seconds": dict(self.times),
        }


def status_messages(g: Graph) -> dict[int, str]:
    """What each status of the compiled entry means, from the graph (so a disk-cache hit, whose
    key leaves out source lines, still names this program's lines)."""
    return {k: v.opdef.runtime_error(v.attrs) + (f" at {v.loc}" if v.loc else "")
            for v, k in statuses(g).items()}


class CompiledFunction:
    """The callable `lp.compile` returns; caches one CompileResult per signature."""

    def __init__(self, fn, example_args=None, *, check: bool = False):
        self.fn = fn
        self.check = check
        self._cache: dict = {}
        self._fast: dict = {}
        self._last: CompileResult | None = None
        functools.update_wrapper(self, fn, updated=())
        if example_args is not None:
            self.lower(*example_args)

    # -- compilation ------------------------------------------------------------------------
    def lower(self, *args) -> CompileResult:
        """Compiles (or fetches) the code for these arguments' signature."""
        leaves, tree = tree_flatten(args)
        leaves = [as_array(x) for x in leaves]
        return self._get(tree, leaves)

    def _get(self, tree, leaves) -> CompileResult:
        key = (tree, tuple((a.shape, a.dtype) for a in leaves))
        res = self._cache.get(key)
        if res is None:
            t = time.perf_counter()
            graph, in_tree, out_tree = trace_flat(self.fn, tree_unflatten(tree, leaves))
            traced_s = time.perf_counter() - t
            res = CompileResult(graph, in_tree, out_tree, check=self.check)
            res.times = {"trace": traced_s, **res.times,
                         "total": time.perf_counter() - t}
            self._cache[key] = res
            if tree.kind == "tuple" and all(c.kind == "leaf" for c in tree.children):
                self._fast[key[1]] = res
        self._last = res
        return res

    # -- calling ----------------------------------------------------------------------------
    def __call__(self, *args):
        if not self.check and all(type(a) is np.ndarray for a in args):  # fast path
            res = self._fast.get(tuple((a.shape, a.dtype) for a in args))
            if res is not None:
                self._last = res
                outs = res.executable(*args)
                if res.out_tree.kind == "leaf":
                    return outs[0]
                return tree_unflatten(res.out_tree, outs)
            leaves, tree = list(args), tree_flatten(args)[1]
        else:
            leaves, tree = tree_flatten(args)
            leaves = [as_array(x) for x in leaves]
        res = self._get(tree, leaves)
        outs = res.executable(*leaves)
        if self.check:
            _check_against_interpreter(res, leaves, outs)
        return tree_unflatten(res.out_tree, outs)

    # -- inspection -------------------------------------------------------------------------
    def _result(self) -> CompileResult:
        if self._last is None:
            raise RuntimeError(f"{getattr(self.fn, '__name__', 'function')} has not been "
                               "compiled yet: call it or pass example_args=")
        return self._last

    def ir(self) -> str:
        """The optimised IR that was compiled (the most recent signature)."""
        return str(self._result().graph)

    def traced_ir(self) -> str:
        return str(self._result().traced)

    def llvm_ir(self) -> str:
        return self._result().llvm_ir

    def stats(self) -> dict:
        return self._result().stats()

    def profile(self, *args, repeat: int = 100) -> list:
        """Time per kernel on these arguments (lepton.profiler.profile)."""
        from .profiler import profile
        return profile(self.lower(*args), [as_array(x) for x in tree_flatten(args)[0]], repeat)


class CheckError(AssertionError):
    pass


def tolerance(dtype) -> tuple[float, float]:
    if dtype == np.float32:
        return 2e-4, 2e-5
    if dtype == np.float64:
        return 1e-9, 1e-12
    return 0.0, 0.0


def graph_tolerance(g: Graph, dtype) -> tuple[float, float]:
    """A value's tolerance is its dtype's, or float32's when the graph computes anything in
    float32 (its rounding shows through a later cast to float64)."""
    if np.dtype(dtype).kind == "f" and any(v.dtype.np == np.float32 for v in g.nodes):
        return tolerance(np.float32)
    return tolerance(dtype)


def _check_against_interpreter(res: CompileResult, leaves, outs) -> None:
    """check=True: the compiled outputs must match the reference interpreter on the traced
    graph; on a difference, name the first node of the optimised graph that differs."""
    env = evaluate(res.traced, leaves)
    for k, (o, got) in enumerate(zip(res.traced.outputs, outs)):
        want = env[o]
        rtol, atol = graph_tolerance(res.traced, want.dtype)
        if not np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True):
            raise CheckError(f"output {k}: compiled result differs from the reference "
                             f"interpreter beyond tolerance; {_first_bad_node(res, leaves)}")


def _first_bad_node(res: CompileResult, leaves) -> str:
    """Recompiles the optimised graph with every value as an output and compares in order."""
    g = res.graph
    debug = Graph(g.name + "_debug")
    debug.inputs, debug.nodes = list(g.inputs), list(g.nodes)
    debug.outputs = [v for v in g.nodes if v.op not in ("input", "constant")]
    if not debug.outputs:
        return "no computed node"
    dres = CompileResult(debug, None, None)
    got = dres.executable(*leaves)
    env = evaluate(g, leaves)
    index = {v: i for i, v in enumerate(g.nodes)}
    for v, x in zip(debug.outputs, got):
        rtol, atol = graph_tolerance(g, env[v].dtype)
        if not np.allclose(x, env[v], rtol=rtol, atol=atol, equal_nan=True):
            where = f" from {v.loc}" if v.loc else ""
            return f"first differing node: %{index[v]} = {v.op} ({v.type}){where}"
    return "every node agrees on its own: the difference comes from accumulated rounding"


class CompiledModule(CompiledFunction):
    """`lp.compile(model)` for an `lp.nn.Module`: compiles model.apply(params, *args) and passes
    the model's current parameters at each call, so parameter updates (optimiser steps,
    load_parameters) are seen without recompiling."""

    def __init__(self, module, example_args=None, *, check: bool = False):
        self.module = module

        def forward(params, *args):
            return module.apply(params, *args)

        forward.__name__ = type(module).__name__
        super().__init__(forward, None, check=check)
        if example_args is not None:
            self.lower(*example_args)

    def lower(self, *args) -> CompileResult:
        return super().lower(self.module.parameters(), *args)

    def __call__(self, *args):
        return super().__call__(self.module.parameters(), *args)


class FrozenModule(CompiledFunction):
    """`lp.compile(model, freeze=True)`: the model's parameters, copied when this is created,
    are constants of the graph, so weight transforms (a Linear's transpose, reshapes, scales
    folded together) are computed once at compile time by constant folding. Later parameter
    updates (optimiser steps, load_parameters) are NOT seen: compile again to pick them up."""

    def __init__(self, module, example_args=None, *, check: bool = False):
        self.module = module
        frozen = {k: np.array(v, copy=True) for k, v in module.parameters().items()}

        def forward(*args):
            return module.apply({k: constant(v) for k, v in frozen.items()}, *args)

        forward.__name__ = type(module).__name__
        super().__init__(forward, example_args, check=check)


def compile(fn, example_args=None, *, check: bool = False, freeze: bool = False
            ) -> CompiledFunction:
    """Compiles `fn` (a function of arrays and pytrees of arrays, or an `lp.nn.Module`) to
    native code. `freeze=True` (modules only) bakes the module's current parameters in as
    constants (see FrozenModule)."""
    if isinstance(fn, (CompiledModule, FrozenModule)):
        fn = fn.module
    elif isinstance(fn, CompiledFunction):
        fn = fn.fn
    if freeze:
        if not isinstance(fn, Module):
            raise TypeError(f"freeze=True needs an lp.nn.Module, got {type(fn).__name__}")
        return FrozenModule(fn, example_args, check=check)
    if isinstance(fn, Module):
        return CompiledModule(fn, example_args, check=check)
    return CompiledFunction(fn, example_args, check=check)
