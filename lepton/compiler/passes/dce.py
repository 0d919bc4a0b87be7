"""Dead-code elimination: keep the graph's inputs and the values its outputs depend on.

    before: %1 = exp %0 ; %2 = log %0 ; return %1      after: %1 = exp %0 ; return %1
"""
from __future__ import annotations

from collections import Counter

from ...ir.graph import Graph


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
    return out
