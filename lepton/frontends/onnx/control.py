"""ONNX's If and Scan (opset >= 9) on Lepton's control flow (lepton/frontends/control.py).

If with a condition known while tracing converts the chosen branch only; otherwise both
branches become `lp.cond`'s (they must give the same types). Scan becomes `lp.scan`: the
states are the carry, the scan inputs are moved so that their scanned axis leads (reversed for
direction 1), and the scan outputs are stacked, then moved to their axes.
Subgraphs read the names of the graphs around them (loader._Builder.subgraph).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..control import cond, scan
from ..tensor import Tensor


def if_(n) -> list[Tensor]:
    c = n.maybe_const(0)
    then_g, else_g = n.attr("then_branch"), n.attr("else_branch")
    if c is not None:
        return n.builder.subgraph(then_g if bool(np.asarray(c).reshape(-1)[0]) else else_g, [])
    pred = n.x(0).reshape(())
    if pred.dtype.name != "bool":
        pred = pred != 0
    return list(cond(pred, lambda: tuple(n.builder.subgraph(then_g, [])),
                     lambda: tuple(n.builder.subgraph(else_g, []))))


def _flip(x: Tensor, axis: int = 0) -> Tensor:
    key = [slice(None)] * x.ndim
    key[axis] = slice(None, None, -1)
    return x[tuple(key)]


def scan_(n) -> list[Tensor]:
    if n.opset < 9:
        n.unsupported("Scan before opset 9 (with a batch axis and sequence_lens) is not "
                      "supported")
    body = n.attr("body")
    m = n.attr("num_scan_inputs")
    xs_all = n.xs()
    states, seqs = xs_all[:len(xs_all) - m], xs_all[len(xs_all) - m:]
    in_axes = n.attr("scan_input_axes") or [0] * m
    in_dirs = n.attr("scan_input_directions") or [0] * m
    seqs = [ops.swapaxes(x, a % x.ndim, 0) if a % x.ndim else x for x, a in zip(seqs, in_axes)]
    seqs = [_flip(x) if d else x for x, d in zip(seqs, in_dirs)]
    k = len(body.output) - len(states)
    out_axes = n.attr("scan_output_axes") or [0] * k
    out_dirs = n.attr("scan_output_directions") or [0] * k

    def step(carry, xs):
        outs = n.builder.subgraph(body, list(carry) + list(xs))
        return tuple(outs[:len(states)]), tuple(outs[len(states):])

    final, ys = scan(step, tuple(states), tuple(seqs))
    results = []
    for y, a, d in zip(ys, out_axes, out_dirs):
        y = _flip(y) if d else y
        a = a % y.ndim
        if a:
            y = ops.transpose(y, list(range(1, a + 1)) + [0] + list(range(a + 1, y.ndim)))
        results.append(y)
    return list(final) + results
