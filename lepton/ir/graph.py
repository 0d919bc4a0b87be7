"""The typed SSA graph: a `Graph` is an ordered list of `Value`s, each the single result of one op.

    >>> g = Graph()
    >>> x = g.input(TensorType(float32, (2, 3)))
    >>> y = g.add("exp", [x])
    >>> g.set_outputs([y]); print(g)
    graph(%0: f32[2,3]) {
      %1: f32[2,3] = exp %0
      return %1
    }

Values are created through `Graph.add`, which checks the op's arity and attributes and infers the
result type with the op's rule; an error names the op and the user's source line.
"""
from __future__ import annotations

import itertools
from typing import Iterable

from .types import TensorType
from .ops import OPS, OpError

_ids = itertools.count()


class Value:
    """One SSA value: the result of `op` applied to `inputs` with `attrs`, of type `type`."""
    __slots__ = ("op", "inputs", "attrs", "type", "loc", "uid")

    def __init__(self, op: str, inputs: tuple["Value", ...], attrs: dict, type: TensorType,
                 loc: str | None = None):
        self.op = op
        self.inputs = inputs if inputs.__class__ is tuple else tuple(inputs)
        self.attrs = attrs
        self.type = type
        self.loc = loc
        self.uid = next(_ids)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def opdef(self):
        return OPS[self.op]

    def __repr__(self) -> str:
        return f"<{self.op}:{self.type} #{self.uid}>"


class Graph:
    """Inputs, values in a topological order (inputs first), and outputs."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.nodes: list[Value] = []
        self.outputs: list[Value] = []

    # -- construction -------------------------------------------------------------------------
    def input(self, type: TensorType, loc: str | None = None) -> Value:
        v = Value("input", (), {}, type, loc)
        self.inputs.append(v)
        self.nodes.append(v)
        return v

    def add(self, op: str, inputs: Iterable[Value], loc: str | None = None, **attrs) -> Value:
        """Appends `op(inputs)[attrs]`, inferring its type; raises OpError naming op and loc."""
        return self.append(op, tuple(inputs), attrs, loc)

    def append(self, op: str, inputs: tuple, attrs: dict, loc: str | None = None) -> Value:
        """`add` with the inputs as a tuple and the attributes as a dict (the tracer's call)."""
        opdef = OPS.get(op)
        if opdef is None or op == "input":
            raise OpError(f"unknown op {op!r}", op, loc)
        try:
            attrs, type_ = opdef.check(inputs, attrs, loc)
        except OpError as e:
            e.operands = inputs  # lets a caller name the graph inputs the bad operands come from
            raise
        v = Value(op, inputs, attrs, type_, loc)
        self.nodes.append(v)
        return v

    def set_outputs(self, outputs: Iterable[Value]) -> None:
        self.outputs = list(outputs)

    # -- queries ------------------------------------------------------------------------------
    def users(self) -> dict[Value, list[Value]]:
        """Maps each value to the values that read it (in order, with repeats)."""
        out: dict[Value, list[Value]] = {v: [] for v in self.nodes}
        for v in self.nodes:
            for i in v.inputs:
                out[i].append(v)
        return out

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)

    def __eq__(self, other) -> bool:
        """Structural equality: the same canonical text (value numbering is positional)."""
        return isinstance(other, Graph) and str(self) == str(other)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} values>"
