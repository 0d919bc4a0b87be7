"""Tracing a region: the body of a control-flow op (lp.scan, lp.while_loop, lp.cond), traced once
into a `Graph` of its own, with closure conversion.

A body may read tensors of the graphs being traced around it (a weight, an outer loop's carry)
and arrays from its closure. `RegionScope` turns each such value, the first time the body reads
it, into an extra input of the region, and records the enclosing graph's value as an operand the
op must pass (outer regions capture it in turn), so a region is self-contained:

    >>> r = trace_region(lambda c, x: (c * w + x, c), [f32[3], f32[3]], [False, False], "scan")
    >>> r.graph.inputs     # [w's input, c, x]: the captures come first
    >>> r.consts           # [w's Value in the enclosing graph]
"""
from __future__ import annotations

from ..ir.graph import Graph, Value
from ..ir.types import TensorType, dtype as to_dtype
from .pytree import tree_flatten
from .tensor import Tensor, current_graph, lift, tracing, value_in, _current_captures


class RegionScope:
    """The captures of one region being traced (what `tensor.value_in` asks for)."""

    def __init__(self, graph: Graph, outer: Graph, outer_caps):
        self.graph, self.outer, self.outer_caps = graph, outer, outer_caps
        self.inputs: dict[Value, Value] = {}   # enclosing graph's value -> region input

    def capture(self, t: Tensor) -> Value:
        """The region input standing for tensor t of an enclosing graph."""
        v = t.value if t.graph is self.outer else self.outer_caps.capture(t)
        return self._input(v)

    def _input(self, v: Value) -> Value:
        if v not in self.inputs:
            self.inputs[v] = self.graph.input(v.type, v.loc)
        return self.inputs[v]

    def lift(self, x, make_input):
        """An array read from the closure: what the enclosing trace makes of it (an input of
        the compiled function, or None: a constant), passed into the region."""
        if self.outer_caps is None:
            return None
        v = self.outer_caps.lift(x, lambda a: self.outer.input(
            TensorType(to_dtype(a.dtype), a.shape)))
        return None if v is None else self._input(v)

    def done(self) -> None:
        pass


class Region:
    """A traced region: `graph` (inputs: captures, then the body's parameters), `consts` (the
    enclosing graph's values for the captures, the op's extra operands) and `out_tree`."""

    def __init__(self, graph: Graph, consts: list[Value], out_tree, outputs: list[Tensor]):
        self.graph, self.consts, self.out_tree, self.outputs = graph, consts, out_tree, outputs


def trace_region(fn, types: list[TensorType], weak: list[bool], name: str, unflatten,
                 out_dtypes=None) -> Region:
    """Traces fn(*unflatten(params)) once with one parameter per type. `out_dtypes(leaves)`
    may give a dtype per output leaf for Python scalars to take (weak outputs)."""
    outer = current_graph()
    g = Graph(name)
    scope = RegionScope(g, outer, _current_captures())
    with tracing(g, scope):
        params = [Tensor(g.input(t), g, w) for t, w in zip(types, weak)]
        leaves, tree = tree_flatten(fn(*unflatten(params)))
        dts = out_dtypes(tree, leaves) if out_dtypes else [None] * len(leaves)
        outs = [_output(x, d, g) for x, d in zip(leaves, dts)]
    args = g.inputs[:len(types)]
    g.inputs = list(scope.inputs.values()) + args
    g.nodes = g.inputs + [v for v in g.nodes if v.op != "input"]
    g.set_outputs([t.value for t in outs])
    return Region(g, list(scope.inputs), tree, outs)


def _output(x, dt, g: Graph) -> Tensor:
    if isinstance(x, Tensor):
        if x.graph is not g:  # a tensor of an enclosing graph, returned as is: capture it
            return Tensor(value_in(x, g), g, x.weak)
        return x
    try:
        return lift(x, dt)
    except TypeError:
        raise TypeError(f"a body returned a {type(x).__name__}, not a tensor, array or "
                        "number") from None


def unify(regions: list[Region]) -> list[Value]:
    """Gives regions that one op runs (cond's branches, while_loop's cond and body) the same
    captures: the union of their consts, in order, each region taking an input for every one
    (unused where it did not read it). Returns the union, the op's const operands."""
    union = list(dict.fromkeys(v for r in regions for v in r.consts))
    for r in regions:
        g, n = r.graph, len(r.consts)
        mine = dict(zip(r.consts, g.inputs[:n]))
        caps = [mine[v] if v in mine else Value("input", (), {}, v.type, v.loc) for v in union]
        g.inputs = caps + g.inputs[n:]
        g.nodes = g.inputs + [v for v in g.nodes if v.op != "input"]
        r.consts = union
    return union
