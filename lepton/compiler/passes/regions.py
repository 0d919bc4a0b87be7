"""Passes inside regions: a pass rebuilds a control-flow op whose regions (Graph attributes) it
changed, so canonicalisation, folding, CSE and DCE run inside loop bodies and branches too.

    w = map_regions(v, lambda r: cse(r, counts))   # v itself when no region changed
"""
from __future__ import annotations

from ...ir.graph import Graph, Value
from ...ir.printer import print_graph


def unchanged(a: Graph, b: Graph) -> bool:
    """Whether pass output b is a's values, outputs and inputs as they were."""
    return (len(a.nodes) == len(b.nodes) and all(x is y for x, y in zip(a.nodes, b.nodes))
            and len(a.outputs) == len(b.outputs)
            and all(x is y for x, y in zip(a.outputs, b.outputs)))


def map_regions(v: Value, fn) -> Value:
    """v with fn (a pass, Graph -> Graph keeping the signature) applied to each region; a new
    Value when some region changed, else v itself."""
    new = {}
    for k, r in v.attrs.items():
        if isinstance(r, Graph):
            r2 = fn(r)
            if not unchanged(r, r2):
                new[k] = r2
    if not new:
        return v
    return Value(v.op, v.inputs, {**v.attrs, **new}, v.type, v.loc)


def attr_key(attrs: dict) -> tuple:
    """Attributes as a hashable key that compares regions by their text without source lines
    (CSE's key, as CSE ignores the lines of other ops)."""
    return tuple((k, print_graph(x, locs=False) if isinstance(x, Graph) else x)
                 for k, x in attrs.items())
