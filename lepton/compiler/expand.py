"""The compiled path's first lowering of control flow: `expand_control_flow` turns scan,
fori_loop and cond into plain ops the code generator knows (Graph -> Graph), before fusion.

- a scan is unrolled: its body, inlined once per step, reads x[t] through `slice` and its ys
  are `concatenate`d; nested control flow in the body is expanded first;
- a cond computes both branches and selects each result with `where` (bodies are pure, so
  this is the same function; a failing index check in the branch not taken still fails);
- a while_loop has a data-dependent trip count and cannot be unrolled: NotImplementedError
  naming it and the user's line (the interpreter runs it).

This keeps `lp.compile` correct on graphs with control flow, but compile time grows with the
trip count. A native loop kernel (the body compiled once, carries double-buffered) replaces
it in codegen; the IR above does not change.
"""
from __future__ import annotations

from ..ir.emit import Emitter
from ..ir.graph import Graph, Value
from ..ir.ops import REGIONS
from ..ir.ops.control import inline_region


def has_control_flow(g: Graph) -> bool:
    return any(v.op in REGIONS for v in g.nodes)


def expand_control_flow(g: Graph) -> Graph:
    """g with its control-flow ops expanded (a new graph; g is not changed)."""
    out = Graph(g.name)
    out.inputs = list(g.inputs)
    out.nodes = list(g.inputs)
    e = Emitter(out)
    env: dict = {v: v for v in g.inputs}
    for v in g.nodes:
        if v.op == "input":
            continue
        ins = [env[i] for i in v.inputs]
        e.loc = v.loc
        if v.op == "scan":
            env[v] = _unroll(e, v, ins)
        elif v.op == "cond":
            env[v] = _select(e, v, ins)
        elif v.op == "while_loop":
            raise NotImplementedError(
                f"lp.compile cannot run while_loop yet{' (at ' + v.loc + ')' if v.loc else ''}: "
                "its trip count is data and the code generator has no native loop; use "
                "fori_loop or scan with a static trip count, or lepton.ir.interpret")
        elif v.op == "get":
            env[v] = env[v.inputs[0]][v.attrs["index"]]
        else:
            w = v if all(a is b for a, b in zip(ins, v.inputs)) else \
                Value(v.op, tuple(ins), v.attrs, v.type, v.loc)
            out.nodes.append(w)
            env[v] = w
    out.set_outputs([env[o] for o in g.outputs])
    return out


def _unroll(e: Emitter, v: Value, ins: list) -> list:
    a = v.attrs
    body = expand_control_flow(a["body"])
    nc, nk, n = a["num_consts"], a["num_carry"], a["length"]
    consts, carry, xs = ins[:nc], ins[nc:nc + nk], ins[nc + nk:]
    steps: list = [None] * n
    for t in (range(n - 1, -1, -1) if a["reverse"] else range(n)):
        x_t = [e.reshape(e.slice(x, (t,) + (0,) * (x.type.ndim - 1), (t + 1,) + x.shape[1:],
                                 (1,) * x.type.ndim), x.shape[1:]) for x in xs]
        outs = inline_region(e.graph, body, consts + carry + x_t)
        carry, steps[t] = outs[:nk], outs[nk:]
    ys = []
    for j, t in enumerate(v.type.types[nk:]):
        if n == 0:
            ys.append(e.zeros(t))
            continue
        parts = [e.reshape(s[j], (1,) + t.shape[1:]) for s in steps]
        ys.append(parts[0] if n == 1 else e.op("concatenate", *parts, axis=0))
    return list(carry) + ys


def _select(e: Emitter, v: Value, ins: list) -> list:
    pred, ops = ins[0], ins[1:]
    yes = inline_region(e.graph, expand_control_flow(v.attrs["true_branch"]), ops)
    no = inline_region(e.graph, expand_control_flow(v.attrs["false_branch"]), ops)
    return [e.where(pred, a, b) for a, b in zip(yes, no)]
