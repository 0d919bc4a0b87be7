"""A model traced for saving or export: its graph, with the arrays it reads from its closure (a
module's parameters, captured arrays) as the graph's last inputs, and their current values.

    t = trace_model(model, (x,))
    t.graph        # inputs: x's leaves, then one per weight; outputs: the result's leaves
    t.weights      # [(name, array)]: "fc1.weight", "global w", ... in graph-input order
    t.signature    # names, shapes and dtypes of inputs and outputs, pytree structures

Every leaf of example_args must be an array (no static or Python-scalar arguments: a saved
model takes arrays only). A model that writes into its arrays at each call (a module in training
mode updating BatchNorm statistics) cannot be saved: call `model.eval()` first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..frontends.arguments import ArgSpec
from ..frontends.capture import scan
from ..frontends.pytree import tree_flatten, tree_paths, tree_unflatten
from ..frontends.trace import graph_name, trace_flat
from ..ir.graph import Graph
from .signature import Signature, TensorSpec


@dataclass
class Traced:
    graph: Graph
    weights: list[tuple[str, np.ndarray]]
    signature: Signature


def trace_model(fn, example_args, batch_axis: int | None = None) -> Traced:
    """Traces fn(*example_args) (see the module docstring)."""
    example_args = tuple(example_args)
    call = ArgSpec(fn).split(example_args, {})
    leaves, in_tree = tree_flatten(example_args)
    name = graph_name(fn)
    if call.static_values() or len(call.leaves) != len(leaves) or call.weak:
        kinds = [f"{n}: {type(x).__name__}" for n, x in zip(_paths(example_args), leaves)
                 if not isinstance(x, (np.ndarray, np.generic))]
        raise TypeError(f"{name}: a saved or exported model takes arrays only; pass NumPy "
                        f"arrays for {', '.join(kinds)}")
    captures = scan(fn)

    def traced(*tensors):
        args, kwargs = call.rebuild(tensors)
        return fn(*args, **kwargs)

    traced.__name__ = name
    graph, _, out_tree = trace_flat(traced, call.leaves, captures)
    if captures.writes:
        written = ", ".join(s.name for s in captures.writes)
        raise ValueError(f"{name} writes into arrays it reads ({written}) at every call (a "
                         f"module in training mode?): call .eval() before saving or exporting it")
    values = captures.read()
    weights = list(zip(captures.names(), values))
    outs = graph.outputs
    out_names = ["output" + p for p in _out_paths(out_tree)]
    sig = Signature(
        tuple(TensorSpec(n, _batched(a.shape, batch_axis), a.dtype)
              for n, a in zip(call.names, call.leaves)),
        tuple(TensorSpec(n, _batched(v.shape, batch_axis), v.dtype.np)
              for n, v in zip(out_names, outs)),
        in_tree, out_tree, batch_axis)
    return Traced(graph, weights, sig)


def _batched(shape: tuple, axis: int | None) -> tuple:
    return tuple(None if i == axis else n for i, n in enumerate(shape))


def _paths(args: tuple) -> list[str]:
    return [f"argument {p}" for p in tree_paths(args)]


def _out_paths(tree) -> list[str]:
    return tree_paths(tree_unflatten(tree, [0] * tree.num_leaves))
