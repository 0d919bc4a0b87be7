"""A compile's disk-cache entry, keyed by the traced graph, so a warm compile skips every stage
after tracing but `load`.

    key = traced_key(traced, options)          # before any pass runs
    store(cache, key, traced, native)          # after the llvm stage
    native = fetch(cache, key, traced)         # a stages.Native, or None

The key hashes the traced graph's structure (ops, attributes, types, wiring; constants by their
bytes; no source lines) with the options that change code (stages.Options.flags, the vector
width) through runtime.cache.cache_key (target CPU, llvmlite, the compiler's source). The entry
is the object code followed by the bytes of the constants the passes made (a folded weight);
a constant the traced graph already holds is stored as its index there, so frozen weights are
not written twice. Each failure status's source line is stored as the index of a traced value
with that line, so a hit names the lines of the program being compiled, not of the one that
filled the cache.
"""
from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from ..ir.graph import Graph
from ..ir.ops import REGIONS
from ..ir.printer import format_attr
from ..ir.types import TensorType
from ..runtime import kernel_cache, routines
from ..runtime.cache import DiskCache, cache_key
from .stages import Layout, Native, Options

FORMAT = 1   # the layout of entries this module writes


def traced_key(g: Graph, options: Options) -> str:
    h = hashlib.sha256()
    _feed(h, g)
    return cache_key(h.hexdigest(), f"{options.flags()} entry={FORMAT}", options.width)


def _feed(h, g: Graph) -> None:
    """Adds g's structure to h: per value its op, type, operands (by position) and attributes,
    a constant's array by its dtype, shape and bytes, a region recursively."""
    index = {v: i for i, v in enumerate(g.nodes)}
    text = [f"graph {g.name} {len(g.inputs)}"]
    for v in g.nodes:
        line = f"{v.op} {v.type} " + ",".join([str(index.get(x, -1)) for x in v.inputs])
        for k, a in v.attrs.items():
            if isinstance(a, np.ndarray):
                h.update("\n".join(text).encode())
                text = []
                h.update(f"{a.dtype.name}{a.dtype.str}{a.shape}".encode())
                h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)   # any dtype
                line += f" {k}=<array>"
            elif isinstance(a, Graph):
                h.update("\n".join(text).encode())
                text = []
                _feed(h, a)
                line += f" {k}=<region>"
            else:
                line += f" {k}={format_attr(a)}"
        text.append(line)
    text.append("return " + ",".join(str(index.get(o, -1)) for o in g.outputs))
    h.update("\n".join(text).encode())


def _values(g: Graph):
    """g's values in order, each control op followed by its regions' values (recursively)."""
    for v in g.nodes:
        yield v
        for r in REGIONS.get(v.op, ()):
            yield from _values(v.attrs[r])


def _lines(traced: Graph) -> dict:
    """Source line -> the index (in _values order) of the first traced value with it."""
    line: dict = {}
    for i, v in enumerate(_values(traced)):
        if v.loc is not None:
            line.setdefault(v.loc, i)
    return line


def relocate(errors: dict, source: Graph, target: Graph) -> dict:
    """The `errors` (status -> (message, line)) of code traced as `source`, with the lines of
    `target`, a program of the same structure (the same key)."""
    if not errors or source is target:
        return errors
    line, values = _lines(source), list(_values(target))
    return {k: (msg, None if line.get(loc) is None else values[line[loc]].loc)
            for k, (msg, loc) in errors.items()}


def store(cache: DiskCache, key: str, traced: Graph, native: Native) -> None:
    lay = native.layout
    held = {id(v.attrs["value"]): i for i, v in enumerate(traced.nodes) if v.op == "constant"}
    line = _lines(traced)
    blob = [native.object]
    size = len(native.object)
    constants = []
    for c in lay.constants:
        if id(c) in held:
            constants.append({"traced": held[id(c)]})
            continue
        data = np.ascontiguousarray(c).tobytes()
        # ml_dtypes' types by name (their type string is a void's, '|V1')
        dtype = c.dtype.name if c.dtype.isbuiltin == 2 else c.dtype.str
        constants.append({"at": size, "dtype": dtype, "shape": list(c.shape)})
        blob.append(data)
        size += len(data)
    meta = {
        "object_bytes": len(native.object),
        "llvm_ir": native.llvm_ir,
        "inputs": [str(t) for t in lay.input_types],
        "outputs": [str(t) for t in lay.output_types],
        "sources": [list(s) for s in lay.output_sources],
        "constants": constants,
        "workspace_bytes": lay.workspace_bytes,
        "kernels": list(lay.kernel_names),
        "errors": {str(k): [msg, line.get(loc)] for k, (msg, loc) in lay.errors.items()},
        "routines": list(native.routines),
        "kernel_objects": list(native.kernel_keys),
    }
    cache.put(key, b"".join(blob), meta)


def fetch(cache: DiskCache, key: str, traced: Graph, width: int | None = None) -> Native | None:
    """The entry, with the shared routines it calls loaded and its big kernels' objects; None
    when any of them is no longer in the cache (compile again)."""
    hit = cache.get(key)
    if hit is None:
        return None
    blob, meta = hit
    try:
        native = _native(blob, meta, traced)
    except (KeyError, IndexError, TypeError, ValueError):
        return None     # an entry of another layout, or damaged: a miss
    keys = meta.get("kernel_objects", [])
    extra = kernel_cache.cached_objects(keys, cache)
    if extra is None or not routines.load_cached(meta.get("routines", []), cache, width):
        return None
    return replace(native, routines=tuple(meta.get("routines", [])),
                   kernel_objects=tuple(extra), kernel_keys=tuple(keys))


def _native(blob: bytes, meta: dict, traced: Graph) -> Native:
    nodes = traced.nodes
    constants = []
    for c in meta["constants"]:
        if "traced" in c:
            v = nodes[c["traced"]]
            if v.op != "constant":
                raise ValueError("not a constant")
            constants.append(np.ascontiguousarray(v.attrs["value"]))
        else:
            dt = np.dtype(c["dtype"])
            n = int(np.prod(c["shape"], dtype=np.int64))
            constants.append(np.frombuffer(blob, dt, n, c["at"]).reshape(c["shape"]).copy())
    values = list(_values(traced)) if meta["errors"] else []
    errors = {int(k): (msg, None if i is None else values[i].loc)
              for k, (msg, i) in meta["errors"].items()}
    layout = Layout(tuple(TensorType.parse(t) for t in meta["inputs"]),
                    tuple(TensorType.parse(t) for t in meta["outputs"]),
                    tuple(tuple(s) for s in meta["sources"]), tuple(constants),
                    int(meta["workspace_bytes"]), tuple(meta["kernels"]), errors)
    return Native(blob[:meta["object_bytes"]], meta["llvm_ir"], None, layout)
