"""The verifier, separate from construction: checks SSA order, input/output membership and that
every value's stored type is the one its op's rule infers; regions (Graph attributes of
control-flow ops) are verified recursively, their signatures by the op's rule. Passes are
followed by it in tests and in debug mode; an error names the pass and the node."""
from __future__ import annotations

from .graph import Graph
from .ops import OPS, OpError
from .types import TensorType


class VerifyError(ValueError):
    pass


def verify(g: Graph, after: str | None = None) -> Graph:
    """Returns g unchanged or raises VerifyError('after pass P: %N op: problem')."""
    where = f"after pass '{after}': " if after else ""
    seen = set()
    for i, v in enumerate(g.nodes):
        tag = f"{where}%{i} ({v.op}{' at ' + v.loc if v.loc else ''})"
        if v in seen:
            raise VerifyError(f"{tag}: value appears twice")
        if v.op not in OPS:
            raise VerifyError(f"{tag}: unknown op")
        for x in v.inputs:
            if x not in seen:
                raise VerifyError(f"{tag}: uses a value not defined before it")
        if v.op == "input":
            if v not in g.inputs:
                raise VerifyError(f"{tag}: input value is not a graph parameter")
        else:
            try:
                attrs, t = OPS[v.op].check(v.inputs, v.attrs, v.loc)
            except OpError as e:
                raise VerifyError(f"{tag}: {e}") from None
            if t != v.type:
                raise VerifyError(f"{tag}: stored type {v.type}, op rule gives {t}")
            for k, region in attrs.items():
                if isinstance(region, Graph):
                    try:
                        verify(region)
                    except VerifyError as e:
                        raise VerifyError(f"{tag}: in region '{k}': {e}") from None
        seen.add(v)
    for x in g.inputs:
        if x not in seen:
            raise VerifyError(f"{where}graph parameter {x} missing from the values")
    for o in g.outputs:
        if o not in seen:
            raise VerifyError(f"{where}output {o} is not a value of the graph")
        if not isinstance(o.type, TensorType):
            raise VerifyError(f"{where}output {o} is a tuple; read its results with get")
    return g
