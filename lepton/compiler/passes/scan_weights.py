"""Loop-invariant weights read transposed: in a scan body, `x @ W` with W a const of the loop (a
weight, the same every step) becomes `x @ transpose(Wt)` with `Wt = transpose(W)` computed once
before the loop and passed as a new const.

Why: a GEMM with few rows (a batch of 32 per step) and B stored untransposed takes the
streaming few-rows path (codegen/gemm.py `plan_gemm`), which re-reads all of B from memory each
call; with B transposed it takes the packed path, ~3x faster for the 32x1024 @ 1024x256 of an
LSTM's backward step on znver3. One transpose per call of the whole loop pays for it from a few
steps on. (The gradient of `h @ W.T` is `dz @ W`: every recurrent backward step has one.)

    g2 = scan_weights(g, counts)       # counts["transposed_weights"]
"""
from __future__ import annotations

from collections import Counter

from ...ir.graph import Graph, Value
from ..codegen.gemm import ROWS_MAX_M as ROWS   # GEMMs with more rows are packed anyway
from .scan_residuals import _body, _new_input, _rebuild

MIN_STEPS = 4           # below this many steps the transpose may cost more than it saves


def _candidates(scan: Value) -> list:
    """The (body const index, matmul) pairs to rewrite."""
    a = scan.attrs
    body, nc = a["body"], a["num_consts"]
    if a["length"] < MIN_STEPS:
        return []
    found = []
    for v in body.nodes:
        if v.op != "matmul" or len(v.shape) != 2 or v.shape[0] > ROWS or not v.dtype.is_float:
            continue
        w = v.inputs[1]
        if w in body.inputs[:nc] and v.inputs[0] is not w and len(w.shape) == 2:
            found.append((body.inputs.index(w), v))
    return found


def scan_weights(g: Graph, counts: Counter | None = None) -> Graph:
    """A new graph in which scans read their GEMMs' few-row weights transposed (g itself when
    no scan has one)."""
    emits = {}
    for s in (v for v in g.nodes if v.op == "scan"):
        found = _candidates(s)
        if found:
            emits[s] = _emitter(s, found)
            if counts is not None:
                counts["transposed_weights"] += len(found)
    return _rebuild(g, emits) if emits else g


def _emitter(s: Value, found: list):
    a = s.attrs
    body, nc = a["body"], a["num_consts"]
    consts = sorted({i for i, _ in found})
    new_ins = {i: _new_input(body.inputs[i].type.__class__(
        body.inputs[i].dtype, body.inputs[i].shape[::-1]), body.inputs[i].loc) for i in consts}
    env: dict[Value, Value] = {}
    nodes = list(body.inputs[:nc]) + list(new_ins.values()) + list(body.inputs[nc:])
    for v in body.nodes:
        if v.op == "input":
            continue
        ins = tuple(env.get(i, i) for i in v.inputs)
        if any(v is m for _, m in found):
            i = body.inputs.index(v.inputs[1])
            wt = Value("transpose", (new_ins[i],), {"perm": (1, 0)}, v.inputs[1].type, v.loc)
            nodes.append(wt)
            ins = (ins[0], wt)
        w = v if ins == v.inputs else Value(v.op, ins, v.attrs, v.type, v.loc)
        env[v] = w
        nodes.append(w)
    inputs = list(body.inputs[:nc]) + list(new_ins.values()) + list(body.inputs[nc:])
    new_body = _body(body.name, inputs, nodes, [env.get(o, o) for o in body.outputs])

    def emit(out, env_outer):
        ops = [env_outer.get(i, i) for i in s.inputs]
        wts = [out.add("transpose", [ops[i]], s.loc, perm=(1, 0)) for i in consts]
        new = out.add("scan", ops[:nc] + wts + ops[nc:], s.loc,
                      **{**a, "body": new_body, "num_consts": nc + len(consts)})
        return {s: new}
    return emit
