"""Reverse-mode automatic differentiation as a graph transform.

`differentiate(g, wrt)` is a pass Graph -> Graph: the result has g's inputs and returns
(optionally g's value, then) the gradient of g's scalar output with respect to each input in
`wrt`. `backward(e, nodes, out, wrt)` is its core, also used in place by `lp.grad` inside a
trace: walking `nodes` (a topological order) backwards from `out`, it calls each op's VJP rule
(lepton/ir/ops, next to the op) to turn the cotangent of a value into cotangents of its inputs,
and sums the cotangents of values used several times. The rules emit ordinary IR, so the
gradient graph is optimised, compiled and differentiated again like any other.

    >>> g = lp.trace(lambda x, w: lp.sum(lp.tanh(x @ w)), x, w)
    >>> dg = differentiate(g, wrt=[1], with_value=True)
    >>> value, dw = lp.ir.interpret(dg, x, w)

Only float values carry cotangents: integer and bool values (labels, masks, argmax) stop the
flow, as do ops marked NONDIFF. An input the output does not depend on gets zeros.
"""
from __future__ import annotations

from typing import Sequence

from ..ir.emit import Emitter
from ..ir.graph import Graph, Value
from ..ir.types import TupleType
from ..ir.ops import NONDIFF, OPS, TupleCotangent
from ..ir.ops.base import GradientError
from .passes.dce import dce


def check_scalar_output(out: Value, what: str) -> None:
    if out.type.shape != () or not out.dtype.is_float:
        raise GradientError(f"{what} must return a scalar (a 0-d float tensor) to be "
                            f"differentiated, got {out.type}")


def backward(e: Emitter, nodes: Sequence[Value], out: Value, wrt: Sequence[Value],
             seed: Value | None = None) -> list[Value]:
    """Emits, through `e`, the gradients of the scalar `out` with respect to each of `wrt`.

    `nodes` must hold, in a topological order, every value on a path from `wrt` to `out`
    (more is fine). `seed` is out's cotangent (default 1). Returns one Value per `wrt`, of its
    type. Values `e` emitted that the gradients do not use are removed from `e.graph`.
    """
    check_scalar_output(out, "the differentiated function")
    first_new = len(e.created)
    seeds = {out: seed if seed is not None else e.const(1, out.dtype)}
    return _accumulate(e, nodes, seeds, wrt, first_new)


def backward_seeded(e: Emitter, nodes: Sequence[Value], seeds: dict, wrt: Sequence[Value]
                    ) -> list[Value]:
    """`backward` from several values at once, each with its cotangent (`seeds`: value ->
    cotangent of its type): the VJP of a graph with several outputs. The control-flow ops'
    rules use it (as `e.backward`) to transpose their regions."""
    return _accumulate(e, nodes, seeds, wrt, len(e.created))


def _is_float(t) -> bool:
    return any(x.dtype.is_float for x in t.types) if isinstance(t, TupleType) else t.dtype.is_float


def _accumulate(e, nodes, seeds, wrt, first_new) -> list[Value]:
    for w in wrt:
        if not w.dtype.is_float:
            raise GradientError(f"cannot differentiate with respect to a {w.type} value: only "
                                "float inputs have gradients")
    e.backward = backward_seeded  # rules that transpose a region recurse through it
    # active: float values that depend on some wrt value (the only ones worth a cotangent)
    active = set(wrt)
    for v in nodes:
        if _is_float(v.type) and any(i in active for i in v.inputs):
            active.add(v)
    ct: dict = {v: c for v, c in seeds.items() if v in active}
    for v in reversed(nodes):
        c = ct.get(v)
        if c is None or not v.inputs:
            continue
        rule = OPS[v.op].vjp
        if rule is NONDIFF:
            continue
        e.loc = v.loc
        cts = rule(e, v, c)
        if len(cts) != len(v.inputs):
            raise AssertionError(f"VJP rule of '{v.op}' returned {len(cts)} cotangents for "
                                 f"{len(v.inputs)} inputs")
        for x, cx in zip(v.inputs, cts):
            if cx is None or x not in active:
                continue
            if cx.type != x.type:
                raise AssertionError(f"VJP rule of '{v.op}' gave a {cx.type} cotangent for an "
                                     f"input of type {x.type}")
            if x not in ct:
                ct[x] = cx
            elif isinstance(cx, TupleCotangent):  # several `get`s of one multi-result op
                ct[x] = ct[x].plus(cx, e)
            else:
                ct[x] = e.add(ct[x], cx)
    e.loc = None
    grads = [ct[w] if w in ct else e.zeros(w.type) for w in wrt]
    _prune(e, first_new, grads)
    return grads


def _prune(e: Emitter, first_new: int, keep: Sequence[Value]) -> None:
    """Drops the values emitted since `first_new` that `keep` does not depend on (cotangents
    of inputs nobody asked for); nothing else can refer to them yet."""
    new = set(e.created[first_new:])
    live = set()
    stack = [v for v in keep if v in new]
    while stack:
        v = stack.pop()
        if v in live:
            continue
        live.add(v)
        stack.extend(i for i in v.inputs if i in new and i not in live)
    dead = new - live
    if dead:
        e.graph.nodes = [v for v in e.graph.nodes if v not in dead]
        e.created = [v for v in e.created if v not in dead]


def differentiate(g: Graph, wrt: Sequence[int] | None = None, *,
                  with_value: bool = False) -> Graph:
    """The gradient graph of g (one 0-d float output) with respect to g.inputs[i] for i in
    `wrt` (default: every float input). Its inputs are g's; its outputs are [g's value if
    with_value] + one gradient per wrt index, each of that input's type."""
    if len(g.outputs) != 1:
        raise GradientError(f"graph @{g.name} has {len(g.outputs)} outputs; differentiate "
                            "needs exactly one, a scalar")
    if wrt is None:
        wrt = [i for i, v in enumerate(g.inputs) if v.dtype.is_float]
    for i in wrt:
        if not 0 <= i < len(g.inputs):
            raise GradientError(f"graph @{g.name} has {len(g.inputs)} inputs, cannot "
                                f"differentiate with respect to input {i}")
    out = g.outputs[0]
    check_scalar_output(out, f"graph @{g.name}")
    dg = Graph(g.name + ".grad")
    dg.inputs, dg.nodes = list(g.inputs), list(g.nodes)
    grads = backward(Emitter(dg), g.nodes, out, [g.inputs[i] for i in wrt])
    dg.set_outputs(([out] if with_value else []) + grads)
    return dce(dg)
