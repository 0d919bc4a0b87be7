"""A compile's disk-cache entry, keyed by the traced graph, so a warm compile skips every stage
after tracing but `load`.

    key = traced_key(traced, options)          # before any pass runs
    store(cache, key, traced, native)          # after the llvm stage
    native = fetch(cache, key, traced)         # a stages.Native, or None

The key hashes the traced graph's structure (ops, attributes, types, wiring; constants by their
bytes; no source lines) with the options that change code (stages.Options.flags, the vector
width) through runtime.cache.cache_key (target CPU, llvmlite, the compiler's source). The entry
is the object code followed by the bytes of the constants the passes made (a folded weight)
and the LLVM IR's text (decoded only when `f.llvm_ir()` asks for it);
a constant the traced graph already holds is stored as its index there, so frozen weights are
not written twice. Each failure status's source line is stored as the index of a traced value
with that line, so a hit names the lines of the program being compiled, not of the one that
filled the cache.
"""
from __future__ import annotations

import array
import functools
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

FORMAT = 2   # the layout of entries this module writes (and of the key's text)


def traced_key(g: Graph, options: Options) -> str:
    h = hashlib.sha256()
    _feed(h, g)
    return cache_key(h.hexdigest(), f"{options.flags()} entry={FORMAT}", options.width)


def _feed(h, g: Graph) -> None:
    """Adds g's structure to h: per value its op, type, operands (by position) and attributes
    (a region's values nested in its op's), a constant's array by its dtype, shape and bytes.
    The key is on every warm compile's path, so the structure is a flat list of ints, each
    op name, type and plain attribute a number in a table of the distinct ones (the table's
    repr is hashed, then the ints' bytes, then each constant's bytes (an array of more than
    64 bytes by their sha256, computed once however many values hold it) in the order met: the
    table holds the lengths, dtypes and shapes)."""
    words: dict = {}
    ints: list = []
    blobs: list = []
    _structure(g, ints, words, blobs, {})
    h.update(repr(list(words)).encode())
    h.update(array.array("q", ints).tobytes())
    for b in blobs:
        h.update(b)


def _structure(g: Graph, ints: list, words: dict, blobs: list, arrays: dict) -> None:
    """Appends g's record to `ints`: name, input count, value count, per value its op, type,
    operand count, operand positions, attribute count and attributes, then the outputs."""
    def word(w) -> int:
        n = words.get(w)
        if n is None:
            n = words[w] = len(words)
        return n

    index = {v: i for i, v in enumerate(g.nodes)}
    pos, get = index.__getitem__, words.get
    ints += (word(("graph", g.name)), len(g.inputs), len(g.nodes))
    for v in g.nodes:
        t, ins, attrs = v.type, v.inputs, v.attrs
        try:
            operands = tuple(map(pos, ins))
        except KeyError:        # (not in the graph: not a valid graph, but keyed all the same)
            operands = tuple(index.get(x, -1) for x in ins)
        op = get(v.op)      # (word(), inlined for the two words of every value)
        if op is None:
            op = words[v.op] = len(words)
        t = (t.dtype.name, t.shape) if t.__class__ is TensorType else str(t)
        ty = get(t)
        if ty is None:
            ty = words[t] = len(words)
        ints += (op, ty, len(ins), *operands, len(attrs))
        if attrs:
            for k, a in attrs.items():
                ta = type(a)
                if ta is int or ta is bool or ta is str or (
                        ta is tuple and all([type(x) is int for x in a])):
                    ints.append(word((k, ta.__name__, a)))    # (True == 1: the type tells)
                elif ta is float:
                    ints.append(word((k, "float", repr(a))))    # (-0.0 == 0.0: repr tells)
                elif isinstance(a, np.ndarray):
                    data = arrays.get(id(a))     # (`a` is alive: ids are unique here)
                    if data is None:    # an array held by several values is read once
                        data = np.ascontiguousarray(a).reshape(-1).view(np.uint8).data
                        if a.nbytes > 64:
                            data = hashlib.sha256(data).digest()
                        arrays[id(a)] = data
                    blobs.append(data)
                    ints.append(word((k, "array", len(data), _dtype_name(a.dtype), a.dtype.str,
                                      a.shape)))
                elif isinstance(a, Graph):
                    ints.append(word((k, "region")))
                    _structure(a, ints, words, blobs, arrays)
                else:
                    ints.append(word((k, "attr", format_attr(a))))
    ints.append(len(g.outputs))
    ints += [index.get(o, -1) for o in g.outputs]


_DTYPE_NAMES: dict = {}


def _dtype_name(d: np.dtype) -> str:
    """d's name (ml_dtypes' types all have the type string '|V1'), found once per dtype."""
    name = _DTYPE_NAMES.get(d)
    if name is None:
        name = _DTYPE_NAMES[d] = d.name
    return name


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
    ir = native.llvm_ir.encode() if isinstance(native.llvm_ir, str) else native.llvm_ir
    blob.append(ir)     # (in the blob, not the JSON: a hit parses no IR text it never shows)
    meta = {
        "object_bytes": len(native.object),
        "llvm_ir": [size, len(ir)],
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
    layout = Layout(tuple(map(_parse_type, meta["inputs"])),
                    tuple(map(_parse_type, meta["outputs"])),
                    tuple(tuple(s) for s in meta["sources"]), tuple(constants),
                    int(meta["workspace_bytes"]), tuple(meta["kernels"]), errors)
    at, n = meta["llvm_ir"]
    if at + n > len(blob):
        raise ValueError("truncated")
    return Native(blob[:meta["object_bytes"]], blob[at:at + n], None, layout)


_parse_type = functools.lru_cache(maxsize=4096)(TensorType.parse)   # (types are immutable)
