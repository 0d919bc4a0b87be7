"""A networkx view of a graph (built from the IR, never its storage) and DOT export."""
from __future__ import annotations

import networkx as nx

from .graph import Graph


def to_networkx(g: Graph) -> nx.DiGraph:
    """Nodes are Values (attribute `label`), edges run producer -> user."""
    d = nx.DiGraph()
    for i, v in enumerate(g.nodes):
        d.add_node(v, label=f"%{i}: {v.type} = {v.op}")
    for v in g.nodes:
        for x in v.inputs:
            d.add_edge(x, v)
    return d


def to_dot(g: Graph) -> str:
    lines = [f'digraph "{g.name}" {{', "  node [shape=box, fontname=monospace];"]
    ids = {v: i for i, v in enumerate(g.nodes)}
    outs = set(g.outputs)
    for v, i in ids.items():
        style = ", style=bold" if v in outs else ""
        lines.append(f'  n{i} [label="%{i}: {v.type} = {v.op}"{style}];')
    for v in g.nodes:
        for x in v.inputs:
            lines.append(f"  n{ids[x]} -> n{ids[v]};")
    lines.append("}")
    return "\n".join(lines)
