"""Dead-code elimination: keep the graph's inputs and the values its outputs depend on.

    before: %1 = exp %0 ; %2 = log %0 ; return %1      after: %1 = exp %0 ; return %1

Inside regions too: a control-flow op's bodies lose their dead values, a scan loses the ys no
`get` reads, and a cond the results no `get` reads (their `get`s are renumbered).
"""
from __future__ import annotations

from collections import Counter

from ...ir.graph import Graph, Value
from ...ir.ops import OPS, REGIONS
from .regions import map_regions


def dce(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph without the values no output needs (g is not changed)."""
    live = set(g.outputs)
    for v in reversed(g.nodes):
        if v in live:
            live.update(v.inputs)
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    out.nodes = [v for v in g.nodes if v in live or v.op == "input"]
    out.outputs = list(g.outputs)
    if counts is not None and len(out.nodes) < len(g.nodes):
        counts["dead"] += len(g.nodes) - len(out.nodes)
    if any(v.op in REGIONS for v in out.nodes):
        _in_regions(out, counts)
    return out


def _in_regions(g: Graph, counts) -> None:
    """Rebuilds g's control-flow ops with dead code and unread results removed (in place: g is
    the pass's new graph)."""
    read: dict[Value, set] = {}
    for v in g.nodes:
        if v.op == "get":
            read.setdefault(v.inputs[0], set()).add(v.attrs["index"])
    new: dict[Value, Value] = {}
    renumber: dict[Value, dict] = {}
    nodes = []
    for v in g.nodes:
        ins = tuple(new.get(i, i) for i in v.inputs)
        w = v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)
        if v.op in REGIONS:
            w = map_regions(w, lambda r: dce(r, counts))
            w, renumber[v] = _drop_unread(w, read.get(v, set()), counts)
        elif v.op == "get" and v.inputs[0] in renumber:
            index = renumber[v.inputs[0]][v.attrs["index"]]
            if ins != v.inputs or index != v.attrs["index"]:
                w = Value("get", ins, {"index": index}, v.type, v.loc)
        new[v] = w
        nodes.append(w)
    g.nodes = nodes
    g.outputs = [new.get(o, o) for o in g.outputs]


def _drop_unread(v: Value, read: set, counts) -> tuple[Value, dict]:
    """v without the ys (scan) or results (cond) no `get` reads; and old index -> new."""
    n = len(v.type.types)
    first = v.attrs["num_carry"] if v.op == "scan" else 0 if v.op == "cond" else n
    keep = [k for k in range(n) if k < first or k in read]
    index = {k: i for i, k in enumerate(keep)}
    if len(keep) == n:
        return v, index
    attrs = dict(v.attrs)
    for name in REGIONS[v.op]:
        r = attrs[name]
        r2 = Graph(r.name)
        r2.inputs, r2.nodes = list(r.inputs), list(r.nodes)
        r2.set_outputs([r.outputs[k] for k in keep])
        attrs[name] = dce(r2, counts)
    if counts is not None:
        counts["dead-result"] += n - len(keep)
    attrs, t = OPS[v.op].check(v.inputs, attrs, v.loc)
    return Value(v.op, v.inputs, attrs, t, v.loc), index
