"""Dead-code elimination: keep the graph's inputs and the values its outputs depend on.

    before: %1 = exp %0 ; %2 = log %0 ; return %1      after: %1 = exp %0 ; return %1
"""
from __future__ import annotations

from ...ir.graph import Graph


def dce(g: Graph) -> Graph:
    live = set(g.outputs)
    for v in reversed(g.nodes):
        if v in live:
            live.update(v.inputs)
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    out.nodes = [v for v in g.nodes if v in live or v.op == "input"]
    out.outputs = list(g.outputs)
    return out
