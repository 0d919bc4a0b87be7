"""Tracing: run a Python function on symbolic Tensors and record the graph it computes.

    >>> def f(x, params):
    ...     return {"y": lp.relu(x @ params["w"] + params["b"])}
    >>> g = trace(f, np.ones((4, 3), np.float32), {"w": np.ones((3, 2), np.float32),
    ...                                            "b": np.zeros(2, np.float32)})
    >>> print(g)
    graph @f(%0: f32[4,3], %1: f32[2], %2: f32[3,2]) {      # inputs in pytree order: b < w
      %3: f32[4,2] = matmul %0, %2  # model.py:2
      ...

Arguments may be NumPy arrays, NumPy or Python scalars (float -> f32[], int -> i64[],
bool -> bool[]), `TensorType`s or anything with `.shape` and `.dtype`, inside dicts, lists,
tuples. The result may be Tensors, arrays or scalars (these become constants) in a pytree.
"""
from __future__ import annotations

import re

from ..ir.graph import Graph
from .pytree import PyTreeDef, tree_flatten, tree_unflatten
from .tensor import Tensor, graph_of, lift, spec_of, tracing, value_in


def graph_name(fn) -> str:
    """A name the IR text accepts ([\\w.-]+): the function's __name__, '<lambda>' -> 'lambda'."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    name = re.sub(r"[^\w.\-]", "", name)
    return name or "main"


def trace_flat(fn, args, captures=None, weak=()) -> tuple[Graph, PyTreeDef, PyTreeDef]:
    """Traces fn(*args). Returns (graph, in_treedef, out_treedef): the graph's inputs are the
    leaves of `args` (a tuple) in pytree order, then the arrays `captures` (a
    `capture.Captures`) found fn reading from its closure; its outputs are the leaves of the
    result, then the values the trace assigned to arrays (`tensor.assign`), which the caller
    writes into them after each call. Leaves whose index is in `weak` are Python scalars:
    their tensors take the dtype of what they meet. An exception raised while tracing carries `graph_inputs` (the graph's
    inputs so far), so a caller can name the arguments an op error involves."""
    args = tuple(args)
    leaves, in_tree = tree_flatten(args)
    g = Graph(graph_name(fn))
    try:
        with tracing(g, captures):
            inputs = [Tensor(g.input(spec_of(x)), g, i in weak) for i, x in enumerate(leaves)]
            out_leaves, out_tree = tree_flatten(fn(*tree_unflatten(in_tree, inputs)))
            outs = [_output(g, i, leaf) for i, leaf in enumerate(out_leaves)]
        writes = captures.finish() if captures is not None else []
    except Exception as e:
        if captures is not None:
            captures.finish()
        e.graph_inputs = list(g.inputs)
        raise
    g.set_outputs([t.value for t in outs] + writes)
    # captured inputs were added where first read; a graph lists its inputs first
    g.nodes = g.inputs + [v for v in g.nodes if v.op != "input"]
    return g, in_tree, out_tree


def _output(g: Graph, i: int, leaf) -> Tensor:
    if isinstance(leaf, Tensor) and leaf.graph is not g:
        raise RuntimeError(f"output {i} of {g.name} ({leaf!r}) belongs to another trace")
    try:
        return lift(leaf)
    except TypeError:
        raise TypeError(f"output {i} of {g.name} is a {type(leaf).__name__}, not a "
                        f"tensor, array or number") from None


def trace(fn, *args) -> Graph:
    """The graph of fn applied to args (before any optimisation)."""
    return trace_flat(fn, args)[0]


def call_graph(g: Graph, *inputs) -> list[Tensor]:
    """Inlines graph `g` into the trace under way, applied to `inputs` (tensors, arrays or
    scalars matching g's parameter types); returns its outputs as Tensors. Lets a traced
    function call a function that was traced (or transformed) separately."""
    if len(inputs) != len(g.inputs):
        raise TypeError(f"graph @{g.name} takes {len(g.inputs)} inputs, got {len(inputs)}")
    env = {}
    for i, (param, x) in enumerate(zip(g.inputs, inputs)):
        t = lift(x, param.type.dtype)
        if t.type != param.type:
            raise TypeError(f"input {i} of @{g.name}: expected {param.type}, got {t.type}")
        env[param] = t
    host = graph_of(*env.values())
    for v in g.nodes:
        if v.op == "input":
            continue
        ins = [value_in(env[i], host) for i in v.inputs]
        env[v] = Tensor(host.add(v.op, ins, loc=v.loc, **v.attrs), host)
    return [env[o] for o in g.outputs]
