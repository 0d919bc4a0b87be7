"""Widening: every op on narrow types (ir/halfs.py) that computes (not one of `halfs.MOVES`)
computes in their wide type between casts (small floats in float32, int4/uint4/int2/uint2 in
int32), and matmul of 8/16-bit or unsigned integers in i32/i64 (the GEMM kernels' types; the
low bits of a product sum do not depend on the width, so the result wraps around as NumPy's
does). Code generation then sees narrow types only in loads, stores, casts, selects and copies.

    %2: f16[4] = exp %1            ->   %3: f32[4] = cast %1 ; %4 = exp %3 ; %2 = cast %4 f16
    %2: u8[2,2] = matmul %0, %1    ->   the same in i32, cast back to u8
    %2: i4[8] = add %0, %1         ->   the same in i32, cast back to i4 (wraps around)

    g2 = widen(g, counts)      # counts["widen-exp"]: the ops rewritten
"""
from __future__ import annotations

from collections import Counter

from ...ir import halfs
from ...ir.graph import Graph, Value
from ...ir.ops import REGIONS
from ...ir.types import DType, int32, int64
from .regions import map_regions

_GEMM_OPS = frozenset(["matmul"])


def _wide(op: str, d: DType) -> DType:
    if d.is_narrow:
        return halfs.compute_dtype(d)
    if op in _GEMM_OPS and d.is_int and (d.unsigned or d.itemsize < 4):
        return int64 if d.itemsize == 8 else int32
    return d


def _needs(v: Value) -> bool:
    if v.op in ("input", "constant"):
        return False
    types = [x.type for x in v.inputs] + [v.type]
    return halfs.touches_halfs(v.op, types) or (
        v.op in _GEMM_OPS and any(_wide(v.op, t.dtype) != t.dtype for t in types))


def widen(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph in which no op computes on narrow types or GEMMs small integers (g is not
    changed); new values keep the source line of the op they replace."""
    if not any(_needs(v) or v.op in REGIONS for v in g.nodes):
        return g
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    new: dict[Value, Value] = {}
    for v in g.nodes:
        ins = tuple(new.get(i, i) for i in v.inputs)
        if not _needs(v):
            v2 = v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)
            if v2.op in REGIONS:
                v2 = map_regions(v2, lambda r: widen(r, counts))
            out.nodes.append(v2)
            new[v] = v2
            continue
        cast = [out.add("cast", (x,), v.loc, dtype=_wide(v.op, x.dtype))
                if _wide(v.op, x.dtype) != x.dtype else x for x in ins]
        r = out.add(v.op, cast, v.loc, **v.attrs)
        new[v] = r if r.dtype == v.dtype else out.add("cast", (r,), v.loc, dtype=v.dtype)
        if new[v].type != v.type:
            raise RuntimeError(f"pass 'widen': {v.op} at {v.loc} became {new[v].type}, not "
                               f"{v.type}")
        if counts is not None:
            counts[f"widen-{v.op}"] += 1
    out.outputs = [new[o] for o in g.outputs]
    return out
