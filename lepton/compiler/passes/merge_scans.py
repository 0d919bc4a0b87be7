"""Merging a scan into a scan that computes all it does and more: same operands and
attributes, and a body whose first outputs, with the rest dropped, are the other body (by
text, without source lines). The gradient of a scan makes such a pair, the primal scan and
the one that also stacks the carries each step starts from (ir/ops/control.py `_scan_vjp`), so
merging them runs the forward loop once instead of twice.

    %4 = scan[...] %0, %1, %2 (body returns c, y)     %5 = scan[...] %0, %1, %2 (c, y, r)
    %6 = get[index=1] %4                         ->   %6 = get[index=1] %5

    g2 = merge_scans(g, counts)   # counts["merge_scans"]: the scans merged away
"""
from __future__ import annotations

from collections import Counter

from ...ir.graph import Graph, Value
from ...ir.printer import print_graph
from .dce import dce


def _text(body: Graph, n_outputs: int) -> str:
    g = Graph(body.name)
    g.inputs, g.nodes, g.outputs = list(body.inputs), list(body.nodes), body.outputs[:n_outputs]
    return print_graph(dce(g), locs=False)


def _extends(b: Value, a: Value) -> bool:
    """Whether scan b computes every result of scan a, as a's results' first indices."""
    na, nb = len(a.type.types), len(b.type.types)
    same = all(x is y for x, y in zip(a.inputs, b.inputs)) and len(a.inputs) == len(b.inputs)
    attrs = all(a.attrs[k] == b.attrs[k] for k in a.attrs if k != "body")
    return (nb > na and same and attrs and b.type.types[:na] == a.type.types
            and _text(b.attrs["body"], na) == _text(a.attrs["body"], na))


def merge_scans(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph in which each scan another scan extends reads that one's results."""
    scans = [v for v in g.nodes if v.op == "scan"]
    into: dict[Value, Value] = {}
    for a in scans:
        for b in scans:
            if b is not a and b not in into and _extends(b, a):
                into[a] = b
                break
    if not into:
        return g
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    env: dict[Value, Value] = {}
    for v in g.nodes:
        if v in env:  # a scan emitted early, where a scan merged into it stood
            continue
        src = v
        while src in into:
            src = into[src]
        ins = tuple(env.get(i, i) for i in src.inputs)
        if v.op == "get" and v.inputs[0] in into:
            w = Value("get", (env[v.inputs[0]],), v.attrs, v.type, v.loc)
        else:
            w = src if ins == src.inputs else Value(src.op, ins, src.attrs, src.type, src.loc)
        if src is not v and src in env:
            w = env[src]
        else:
            out.nodes.append(w)
        env[v] = env[src] = w
    out.set_outputs([env.get(o, o) for o in g.outputs])
    if counts is not None:
        counts["merge_scans"] += len(into)
    return out
