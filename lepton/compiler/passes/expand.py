"""Expansion: ops that are defined in other ops (`OpDef.expand`) are replaced by those ops, so
later passes, fusion and lowering see only ops with kernels of their own; then ops on 16-bit
floats become float32 ops between casts (widen.py).

    %2: f32[1,4,9,9] = conv_transpose2d[stride=(2, 2), ...] %0, %1
        ->   %3 = pad[...] %0 ; %4 = slice[...] %1 (the flipped kernel) ; %2 = conv2d %3, %4

    g2 = expand(g, counts)      # counts["expand-conv_transpose2d"]: the ops replaced
"""
from __future__ import annotations

from collections import Counter

from ...ir.emit import Emitter
from ...ir.graph import Graph, Value
from .widen import widen


def expand(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph without expandable ops, widened (g is not changed); the new values keep the
    replaced op's source line."""
    return widen(_expand(g, counts), counts)


def _expand(g: Graph, counts: Counter | None = None) -> Graph:
    if not any(v.opdef.expand for v in g.nodes):
        return g
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    new: dict[Value, Value] = {}
    for v in g.nodes:
        ins = tuple(new[i] for i in v.inputs)
        if v.opdef.expand is None:
            v2 = v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)
            out.nodes.append(v2)
            new[v] = v2
            continue
        v2 = v.opdef.expand(Emitter(out, v.loc), Value(v.op, ins, v.attrs, v.type, v.loc))
        if v2.type != v.type:
            raise RuntimeError(f"pass 'expand': {v.op} at {v.loc} became {v2.type}, not "
                               f"{v.type}")
        new[v] = v2
        if counts is not None:
            counts[f"expand-{v.op}"] += 1
    out.outputs = [new[o] for o in g.outputs]
    return out
