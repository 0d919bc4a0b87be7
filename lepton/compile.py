"""`lp.compile`: the driver that traces, optimises, lowers, JIT-compiles and caches per signature.

    f = lp.compile(fn)                         # compiles at the first call of each signature
    y = f(x, w)
    f = lp.compile(fn, example_args=(x, w))    # compiles now
    f = lp.compile(fn, static_argnums=(2,), static_argnames=("training",))   # as jax.jit
    print(f.ir()); print(f.llvm_ir()); f.stats()

A signature is the arguments' pytree structure, each traced leaf's shape and dtype, and the
values of the static ones (frontends/arguments.py). Arrays and modules fn reads from its closure
or globals are read at every call by reference (frontends/capture.py); `freeze=True` bakes them
in as constants at the first trace of each signature instead.
"""
from __future__ import annotations

import functools
import time
import weakref
from dataclasses import replace

import numpy as np

from . import config
from .compiler import stages, store
from .frontends.arguments import ArgSpec, Call
from .frontends.capture import NO_CAPTURES, Captures, scan
from .frontends.pytree import tree_unflatten
from .frontends.trace import graph_name, trace_flat
from .ir.graph import Graph
from .ir.interpreter import evaluate
from .ir.ops import OpError
from .ir.printer import print_graph
from .ir.types import TupleType, dtype as to_dtype, float32, is_float_numpy
from .runtime.executable import Executable
from .runtime.cache import DiskCache
from .runtime.jit import openmp_available
from .tuning import host_vector_width

class CompileResult:
    """Everything produced for one signature: the traced graph, each stage's artefact (those a
    disk-cache hit skipped are made again when asked for: `graph`, `groups`, `plan`), the
    executable, and the seconds per stage."""

    def __init__(self, traced: Graph, in_tree, out_tree, *, check: bool = False,
                 profile: bool = False, captures: Captures = NO_CAPTURES,
                 input_names: list[str] | None = None, cfg: config.Config | None = None):
        cfg = cfg or config.current()
        self.traced, self.in_tree, self.out_tree = traced, in_tree, out_tree
        self.captures = captures
        self._reads = bool(captures.sources or captures.guards or captures.writes)
        self.threads = cfg.threads if cfg.threads > 1 and openmp_available() else 1
        self.vector_width = host_vector_width(cfg)
        cache_on = cfg.cache and not cfg.dump_dir
        self.options = stages.Options(self.threads, self.vector_width, profile,
                                      cfg.debug or check, cfg.dump_dir,
                                      cache_dir=cfg.cache_dir if cache_on else None,
                                      compile_threads=cfg.compile_threads)
        self.times: dict = {}
        self._artefacts: dict = {}
        self._code = self._load(cfg)     # (it keeps the code's entry in _LOADED alive)
        loaded = self._code.loaded
        self.lib, self.layout = loaded.lib, loaded.layout
        self.kernel_names = list(loaded.layout.kernel_names)
        lay = loaded.layout
        errors = store.relocate(lay.errors, self._code.traced, traced)
        self.executable = Executable(
            self.lib, loaded.entry, lay.input_types, lay.output_types, lay.output_sources,
            lay.constants, lay.workspace_bytes,
            None if input_names is None else input_names + [
                f"captured {n}" for n in captures.names()],
            errors={k: msg + (f" at {loc}" if loc else "") for k, (msg, loc) in errors.items()})

    def _load(self, cfg) -> "_Code":
        """The loaded code: already loaded in this process for the same key, or from the disk
        cache (keyed by the traced graph, so a hit runs no pass), or through the stages (then
        cached)."""
        cache = DiskCache.from_config(cfg.cache_dir, cfg.cache and not cfg.dump_dir)
        key, native = None, None
        self.cached = False
        if cache:
            t = time.perf_counter()
            key = store.traced_key(self.traced, self.options)
            self.times["key"] = time.perf_counter() - t
            code = _LOADED.get(key)
            if code is not None:
                self.cached = True
                return code
            t = time.perf_counter()
            native = store.fetch(cache, key, self.traced, self.vector_width)
            if native is not None:
                self.times["cache_load"] = time.perf_counter() - t
                self.cached = True
        if native is None:
            native = stages.run(self.traced, self.options, until="llvm", times=self.times,
                                keep=self._artefacts, name=self.traced.name)
            if cache:
                store.store(cache, key, self.traced, native)
        code = _Code(native, stages.run(native, self.options, times=self.times), self.traced)
        if key is not None:
            _LOADED[key] = code
        return code

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR the code was compiled from."""
        ir = self._code.native.llvm_ir
        return ir.decode() if isinstance(ir, bytes) else ir

    def _artefact(self, stage: str):
        """The artefact of `stage` (one a disk-cache hit skipped: made again now, untimed)."""
        if stage not in self._artefacts:
            stages.run(self.traced, replace(self.options, dump_dir=None), until=stage,
                       keep=self._artefacts)
        return self._artefacts[stage]

    @property
    def graph(self) -> Graph:
        """The optimised graph."""
        return self._artefact("passes").graph

    @property
    def passes(self):
        return self._artefact("passes").passes

    @property
    def groups(self):
        return list(self._artefact("partition").groups)

    @property
    def plan(self):
        return self._artefact("plan").plan

    @property
    def kernels(self):
        """The lowered kernels (None when the code came from the disk cache)."""
        low = self._artefacts.get("lower")
        return None if low is None else list(low.kernels)

    def run(self, leaves) -> list | None:
        """The outputs for the argument leaves, with the captured arrays read now; None when
        a capture no longer matches the trace (the caller traces again)."""
        if not self._reads:
            return self.executable(*leaves)
        captured = self.captures.read()
        if captured is None:
            return None
        outs = self.executable(*leaves, *captured)
        n = len(self.captures.writes)
        if n:
            self.captures.write(outs[-n:])
            del outs[-n:]
        return outs

    def holds(self) -> bool:
        """Whether the values this code read from the closure still match it."""
        return not self._reads or self.captures.read() is not None

    def inputs(self, leaves) -> list:
        """All the graph's inputs for a call: the leaves and the captured arrays now."""
        return list(leaves) + (self.captures.read() or [])

    def stats(self) -> dict:
        p, lay = self.plan, self.layout
        return {
            "kernels": len(self.kernel_names),
            "kernel_functions": len(set(self.kernel_names)),
            "kernel_ops": list(self.kernel_names),
            "from_disk_cache": self.cached,
            "threads": self.threads,
            "vector_width": self.vector_width,
            "fused_groups": [grp.describe() for grp in self.groups if len(grp.members) > 1],
            "values": len(self.graph.nodes),
            "workspace_bytes": lay.workspace_bytes,
            "intermediate_bytes": p.intermediate_bytes,
            "naive_intermediate_bytes": p.naive_bytes,
            "scratch_bytes": lay.workspace_bytes - p.intermediate_bytes,
            "constant_bytes": sum(c.nbytes for c in lay.constants),
            "passes": [{"name": r.name, "seconds": r.seconds, "change": r.change,
                        "rewrites": r.rewrites} for r in self.passes],
            "compile_seconds": dict(self.times),
        }


class _Code:
    """Code loaded in this process for one key (stages.Native and stages.Loaded, and the graph
    it was traced as), shared by every compile of that key while one of them lives: a second
    lp.compile of a model reads and loads nothing."""
    __slots__ = ("native", "loaded", "traced", "__weakref__")

    def __init__(self, native: stages.Native, loaded: stages.Loaded, traced: Graph):
        self.native, self.loaded, self.traced = native, loaded, traced


_LOADED: "weakref.WeakValueDictionary[str, _Code]" = weakref.WeakValueDictionary()


VARIANTS = 8  # compiled variants kept per signature (modes, captured scalars' values, ...)


class CompiledFunction:
    """The callable `lp.compile` returns; caches the CompileResults of each signature."""

    def __init__(self, fn, example_args=None, *, check: bool = False, freeze: bool = False,
                 static_argnums=(), static_argnames=()):
        self.fn = fn
        self.check = check
        self.freeze = freeze
        self.spec = ArgSpec(fn, static_argnums, static_argnames)
        self._cache: dict = {}
        self._fast: dict = {}   # leaf types -> result, for calls of plain arrays only
        self._last: CompileResult | None = None
        functools.update_wrapper(self, fn, updated=())
        if example_args is not None:
            self.lower(*example_args)

    # -- compilation ------------------------------------------------------------------------
    def lower(self, *args, **kwargs) -> CompileResult:
        """Compiles (or fetches) the code for these arguments' signature."""
        return self._get(self.spec.split(args, kwargs))

    def _get(self, call: Call) -> CompileResult:
        """The code for this call: a compiled variant of its signature whose captured values
        still hold (a module's mode, a captured array's shape, a Python scalar: each variant
        is kept, up to VARIANTS), or a new one."""
        variants = self._cache.setdefault(call.key, [])
        res = next((r for r in variants if r.holds()), None)
        if res is None:
            res = self._compile(call)
            variants.insert(0, res)
            del variants[VARIANTS:]
            if self.spec.simple and len(call.key[0]) == len(call.leaves) and not call.weak \
                    and all(t.kind == "leaf" for _, t, _ in call.key[0]):
                self._fast[call.key[2]] = res
        self._last = res
        return res

    def _compile(self, call: Call) -> CompileResult:
        t = time.perf_counter()
        captures = scan(self.fn, *call.static_values(), freeze=self.freeze)

        def traced(*leaves):
            args, kwargs = call.rebuild(leaves)
            return self.fn(*args, **kwargs)

        traced.__name__ = graph_name(self.fn)
        try:
            graph, _, out_tree = trace_flat(traced, call.leaves, captures, call.weak)
        except (OpError, TypeError, ValueError, IndexError) as e:
            if getattr(e, "op", None):
                _name_arguments(e, traced.__name__, call, captures)
            raise
        traced_s = time.perf_counter() - t
        res = CompileResult(graph, None, out_tree, check=self.check,
                            captures=captures, input_names=call.names)
        res.times = {"trace": traced_s, **res.times, "total": time.perf_counter() - t}
        return res

    # -- calling ----------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if not kwargs and not self.check and all(type(a) is np.ndarray for a in args):
            res = self._fast.get(tuple((a.shape, a.dtype) for a in args))
            if res is not None:
                outs = res.run(args)
                if outs is not None:
                    self._last = res
                    return outs[0] if res.out_tree.kind == "leaf" else \
                        tree_unflatten(res.out_tree, outs)
        call = self.spec.split(args, kwargs)
        res = self._get(call)
        if self.check:  # the inputs before the call writes any captured array
            inputs = [np.array(a) for a in res.inputs(call.leaves)]
        outs = res.run(call.leaves)
        if outs is None:
            raise RuntimeError(f"{graph_name(self.fn)}: the values it reads from its closure "
                               f"changed while it was being called (from another thread?)")
        if self.check:
            _check_against_interpreter(res, inputs, outs)
        return tree_unflatten(res.out_tree, outs)

    # -- inspection -------------------------------------------------------------------------
    def _result(self) -> CompileResult:
        if self._last is None:
            raise RuntimeError(f"{graph_name(self.fn)} has not been "
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

    def profile(self, *args, repeat: int = 100, **kwargs) -> list:
        """Time per kernel on these arguments (lepton.profiler.profile)."""
        from .profiler import profile
        call = self.spec.split(args, kwargs)
        res = self._get(call)
        return profile(res, res.inputs(call.leaves), repeat)


def _name_arguments(e: Exception, fn_name: str, call: Call, captures: Captures | None) -> None:
    """Adds to an op's error raised while tracing the arguments it involves (the graph inputs
    its operands derive from) and the signature being traced."""
    names = call.names + [f"captured {n}" for n in (captures.names() if captures else [])]
    inputs = getattr(e, "graph_inputs", [])
    types = {v: n for v, n in zip(inputs, names)}
    involved, todo, seen = [], list(getattr(e, "operands", ())), set()
    while todo:
        v = todo.pop()
        if v in seen:
            continue
        seen.add(v)
        if v in types:
            involved.append(v)
        todo.extend(v.inputs)
    lines = [str(e.args[0]) if e.args else str(e)]
    if involved:
        involved.sort(key=inputs.index)
        lines.append("  arguments involved: " + ", ".join(f"{types[v]}: {v.type}"
                                                           for v in involved))
    lines.append(f"  while compiling {fn_name} for the arguments ({call.describe()})")
    e.args = ("\n".join(lines),) + tuple(e.args[1:])


class CheckError(AssertionError):
    pass


def tolerance(dtype) -> tuple[float, float]:
    if dtype == np.float32:
        return 2e-4, 2e-5
    if dtype == np.float64:
        return 1e-9, 1e-12
    if dtype == np.float16:          # a last-bit difference: 2**-10
        return 2e-3, 1e-4
    if is_float_numpy(dtype) and np.dtype(dtype).itemsize == 1:   # 8-bit floats: 2**-2 ...
        return 2.0 ** -to_dtype(dtype).fmt.man_bits, 1e-2                # float4: 2**-1
    if is_float_numpy(dtype):        # bfloat16: 2**-7
        return 1.6e-2, 1e-3
    return 0.0, 0.0


def graph_tolerance(g: Graph, dtype) -> tuple[float, float]:
    """A value's tolerance is its dtype's, or float32's when the graph computes anything in
    float32 (its rounding shows through a later cast to float64), or a small float's when
    it computes anything in one."""
    tols = [tolerance(dtype)]
    if is_float_numpy(dtype):
        types = [t for v in g.nodes
                 for t in (v.type.types if isinstance(v.type, TupleType) else (v.type,))]
        tols += [tolerance(d) for d in {t.dtype.np for t in types
                                        if t.dtype == float32 or t.dtype.is_small_float}]
    return max(tols)


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
    debug.outputs = [v for v in g.nodes if v.op not in ("input", "constant")
                     and not isinstance(v.type, TupleType)]
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


def compile(fn, example_args=None, *, check: bool = False, freeze: bool = False,
            static_argnums=(), static_argnames=()) -> CompiledFunction:
    """Compiles `fn` (a function of arrays and pytrees of arrays, or an `lp.nn.Module`) to
    native code. `freeze=True` bakes the arrays and parameters fn reads from its closure in as
    constants at the first trace of each signature (later changes to them are not seen);
    static_argnums / static_argnames are as in jax.jit."""
    if isinstance(fn, CompiledFunction):
        fn = fn.fn
    return CompiledFunction(fn, example_args, check=check, freeze=freeze,
                            static_argnums=static_argnums, static_argnames=static_argnames)


def from_onnx(model, *, shapes: dict | None = None, check: bool = False):
    """Loads an ONNX model (a path, an onnx.ModelProto or its bytes) as a compiled function.

    shapes: optional {input name: shape} fixing symbolic dims ahead of the first call. A model
    whose inputs all have concrete dims is compiled now, so errors surface at load time.
    check=True: every call is also run by the reference interpreter (as lp.compile's check).
    Raises NotImplementedError naming the node and the op (or attribute) Lepton lacks.
    """
    from .frontends.onnx import load
    return load(model, compile, shapes=shapes, check=check)
