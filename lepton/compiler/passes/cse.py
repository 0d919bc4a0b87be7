"""Common-subexpression elimination: values with the same op, the same inputs and the same
attributes are one value. Constants are the same when dtype, shape and bytes agree (so -0.0 and
0.0 stay apart, and NaNs with one bit pattern merge); the inputs of commutative ops are compared
as a set (`add %0, %1` and `add %1, %0` are one value). Graph inputs are never merged.

    %1 = exp %0 ; %2 = exp %0 ; %3 = add %1, %2     ->   %1 = exp %0 ; %2 = add %1, %1

    g2 = cse(g, counts)         # counts["cse"]: the values merged into an earlier one
"""
from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from ...ir.graph import Graph, Value
from ...ir.ops import OPS, REGIONS
from .regions import attr_key, map_regions

COMMUTATIVE = frozenset(n for n, d in OPS.items() if d.commutative)
# Constants up to this many bytes are keyed by their bytes, bigger ones by a digest of them.
_INLINE_BYTES = 4096


def _uid(v: Value) -> int:
    return v.uid


def _constant_key(a: np.ndarray):
    data = np.ascontiguousarray(a)
    raw = data.tobytes() if data.nbytes <= _INLINE_BYTES else \
        hashlib.blake2b(memoryview(data).cast("B")).digest()
    return (a.dtype.str, a.shape, raw)


def cse(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph in which every value is computed once (g is not changed)."""
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    seen: dict = {}
    new: dict[Value, Value] = {}
    merged = 0
    for v in g.nodes:
        if v.op == "input":
            out.nodes.append(v)
            new[v] = v
            continue
        ins = tuple([new[i] for i in v.inputs])
        # tuples of Values compare by identity; a changed input means a rebuilt value
        v2 = v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)
        if v.op in REGIONS:  # CSE inside loop bodies and branches; regions compare by text
            v2 = map_regions(v2, lambda r: cse(r, counts))
        if v.op == "constant":
            key = ("constant", _constant_key(v.attrs["value"]))
        else:
            ids = tuple(sorted(ins, key=_uid)) if v.op in COMMUTATIVE else ins
            key = (v.op, ids, attr_key(v2.attrs) if v.op in REGIONS else tuple(v.attrs.items()))
        hit = seen.get(key)
        if hit is not None:
            new[v] = hit
            merged += 1
            continue
        seen[key] = v2
        new[v] = v2
        out.nodes.append(v2)
    out.outputs = [new[o] for o in g.outputs]
    if counts is not None and merged:
        counts["cse"] += merged
    return out
