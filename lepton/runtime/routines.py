"""The shared GEMM routines as a per-host runtime library: compiled once, not in every model.

Lowering puts into each model's LLVM module one copy of every shared routine it uses (the
micro-kernels, packing and drivers named `lepton.gemm.*`, codegen/microkernel.py): they depend
only on their dtype, tile and the CPU, yet LLVM used to optimise them again for every model
(a quarter of a transformer block's LLVM time). `split_routines` takes them out of a lowered
module: each becomes a module of its own, and the model's module declares it instead.

    model_ir, routines = split_routines(lowered_ir, width)
    todo = to_compile(routines, disk_cache, width)   # neither loaded nor cached: compile these
    load_routines(routines, disk_cache, width, {r.symbol: obj ...})   # (or it compiles them)
    lib = NativeLibrary(*compile_object(model_ir, width=width), width)

A routine's symbol carries a hash of its IR text, of the routines it calls (by their hashed
symbols) and of the target (`lepton.gemm.f32.mk6x1.np.3fa2c91b0d4e`): the same symbol is always
the same code, so each is loaded into the process once (`llvm.add_symbol`) and every model
engine links against it. On disk each routine is one object file under its own cache key; with
the disk cache off they are compiled once per process. `lower_graph`'s text (`f.llvm_ir()`,
`lp.export`) still holds every routine: only the JIT splits them out.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import llvmlite.binding as llvm

from .cache import DiskCache, cache_key
from .irtext import (REF, declaration, declarations, definitions, external, local_metadata,
                     metadata_of, rename)
from .jit import ROUTINE_LEVEL, NativeLibrary, compile_object, target_key

PREFIX = "lepton.gemm."
SUBDIR = "routines"   # of the disk cache's directory


@dataclass(frozen=True)
class Routine:
    name: str       # as lowering names it, e.g. lepton.gemm.f32.mk6x1.np
    symbol: str     # name + "." + hash of its code: what the model module calls
    ir: str         # a module defining `symbol` (and declaring what it calls)
    calls: tuple[str, ...]   # the symbols of the routines it calls (loaded first)


def split_routines(llvm_ir: str, width: int | None = None) -> tuple[str, list[Routine]]:
    """(the module without the shared routines' bodies, calling them by their hashed symbols;
    the routines, callees before callers). A routine that refers to anything of the module
    but declarations and other routines stays in the module."""
    spans = {n: span for n, span in definitions(llvm_ir).items() if n.startswith(PREFIX)}
    if not spans:
        return llvm_ir, []
    decls = declarations(llvm_ir)
    bodies = {n: llvm_ir[s:e] for n, (s, e) in spans.items()}
    refs = {n: set(REF.findall(body)) - {n} for n, body in bodies.items()}
    ok = set(bodies)
    while True:   # drop routines referring to a kernel, a global or a dropped routine
        bad = {n for n in ok if not refs[n] <= ok | set(decls)}
        if not bad:
            break
        ok -= bad
    metadata = metadata_of(llvm_ir)
    order = _callees_first(ok, refs)
    symbols: dict[str, str] = {}
    routines = []
    target = target_key(width)
    for n in order:
        callees = sorted(refs[n] & ok)
        body = rename(external(bodies[n]), symbols)
        body, meta = local_metadata(body, metadata)
        h = hashlib.sha256("\0".join([body, meta, target]).encode()).hexdigest()[:16]
        symbols[n] = sym = f"{n}.{h}"
        text = "\n".join([decls[r] for r in sorted(refs[n] - ok)]
                         + [declaration(bodies[c], symbols[c]) for c in callees]
                         + [body.replace(f'@"{n}"(', f'@"{sym}"(', 1), meta])
        routines.append(Routine(n, sym, text, tuple(symbols[c] for c in callees)))
    parts, at = [], 0
    for n in sorted(ok, key=lambda n: spans[n]):   # declared where its body was
        s, e = spans[n]
        parts += [llvm_ir[at:s], declaration(bodies[n], n)]
        at = e
    parts.append(llvm_ir[at:])
    return rename("".join(parts), symbols), routines


def _callees_first(names: set[str], refs: dict[str, set[str]]) -> list[str]:
    order, seen = [], set()

    def visit(n):
        if n in seen:
            return
        seen.add(n)
        for c in sorted(refs[n] & names):
            visit(c)
        order.append(n)
    for n in sorted(names):
        visit(n)
    return order


# symbol -> the loaded library defining it, for the life of the process (the symbols are
# registered with llvm.add_symbol, which cannot be undone)
_loaded: dict[str, NativeLibrary] = {}
_objects: dict[str, bytes] = {}     # symbol -> its object code (a library may hold several)
_lock = threading.Lock()
compiled_count = 0    # routines this process compiled with LLVM (the rest were loaded)


def to_compile(routines: list[Routine], cache: DiskCache | None,
               width: int | None = None) -> list[Routine]:
    """The routines neither loaded in this process nor in the disk cache: the ones
    `load_routines` needs compiled."""
    cache = cache and cache.part(SUBDIR)
    return [r for r in routines if r.symbol not in _loaded
            and not (cache and _cache_key(r.symbol, width) in cache)]


def load_routines(routines: list[Routine], cache: DiskCache | None, width: int | None = None,
                  compiled: dict[str, bytes] | None = None) -> None:
    """Makes every routine callable by model code loaded after this: loaded already in this
    process, its object in `compiled` (symbol -> object code), loaded from the disk cache, or
    compiled now; a new object is written to the cache."""
    cache = cache and cache.part(SUBDIR)
    compiled = compiled or {}
    with _lock:
        for r in routines:
            key = _cache_key(r.symbol, width)
            lib = _loaded.get(r.symbol)
            if lib is None:
                obj = compiled.get(r.symbol)
                hit = cache.get(key) if cache and obj is None else None
                if hit:
                    obj = hit[0]
                elif obj is None:
                    obj = compile_object(r.ir, ROUTINE_LEVEL, width)[0]
                global compiled_count
                compiled_count += hit is None
                _register(r.symbol, NativeLibrary(obj, width=width), obj)
            if cache and key not in cache:   # (also when loaded before from elsewhere)
                cache.put(key, _objects[r.symbol], {"routine": r.symbol,
                                                    "calls": list(r.calls)})


def load_cached(symbols: list[str], cache: DiskCache | None, width: int | None = None) -> bool:
    """Loads these routines (a cached model's) from the disk cache, all into one engine (one
    engine each cost ~1.4 ms: a third of a warm W10); False when one is neither loaded nor
    cached, or calls one that is neither (the model must be compiled again)."""
    cache = cache and cache.part(SUBDIR)
    with _lock:
        todo = [s for s in dict.fromkeys(symbols) if s not in _loaded]
        objects = []
        for sym in todo:
            hit = cache.get(_cache_key(sym, width)) if cache else None
            if hit is None or any(c not in _loaded and c not in todo
                                  for c in hit[1].get("calls", [])):
                return False
            objects.append(hit[0])
        if todo:
            lib = NativeLibrary(objects[-1], width=width, extra=objects[:-1])
            for sym, obj in zip(todo, objects):
                _register(sym, lib, obj)
    return True


def _cache_key(symbol: str, width: int | None) -> str:
    return cache_key(symbol, f"routine O{ROUTINE_LEVEL}", width)


def _register(symbol: str, lib: NativeLibrary, obj: bytes) -> None:
    llvm.add_symbol(symbol, lib.address(symbol))
    _loaded[symbol] = lib
    _objects[symbol] = obj
