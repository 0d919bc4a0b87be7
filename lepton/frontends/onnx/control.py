"""ONNX's If, Scan and Loop on Lepton's control flow (lepton/frontends/control.py).

If with a condition known while tracing converts the chosen branch only; otherwise both
branches become `lp.cond`'s (they must give the same types). Scan becomes `lp.scan`: the
states are the carry, the scan inputs are moved so that their scanned axis leads (reversed for
direction 1), and the scan outputs are stacked, then moved to their axes. Scan before opset 9
(batch axis 0, sequence_lens) runs one such scan per batch row.
Subgraphs read the names of the graphs around them (loader._Builder.subgraph).
"""
from __future__ import annotations

import numpy as np

from ...ir.types import int64
from .. import ops
from ..control import cond, scan, while_loop
from ..tensor import Tensor, cast, constant
from . import neural


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


def _scan(n, states, seqs, in_axes, in_dirs, out_axes, out_dirs) -> list[Tensor]:
    """Scan's body over the scan inputs' `in_axes` (reversed where in_dirs is 1) on lp.scan:
    the final states, then the scan outputs stacked along out_axes (reversed where out_dirs
    is 1)."""
    body = n.attr("body")
    seqs = [ops.swapaxes(x, a % x.ndim, 0) if a % x.ndim else x for x, a in zip(seqs, in_axes)]
    seqs = [_flip(x) if d else x for x, d in zip(seqs, in_dirs)]

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


def scan_(n) -> list[Tensor]:
    old = "directions" in n.attrs
    if old != (n.opset < 9) and (old or any(a.startswith("scan_") for a in n.attrs)):
        n.invalid(f"attribute '{'directions' if old else 'scan_*'}' is not Scan's at opset "
                  f"{n.opset} (opset 8 has 'directions', 9 on the scan_* axes and directions)")
    if n.opset < 9:
        return _scan8(n)
    m = n.attr("num_scan_inputs")
    xs_all = n.xs()
    states, seqs = xs_all[:len(xs_all) - m], xs_all[len(xs_all) - m:]
    k = len(n.attr("body").output) - len(states)
    return _scan(n, states, seqs, n.attr("scan_input_axes") or [0] * m,
                 n.attr("scan_input_directions") or [0] * m,
                 n.attr("scan_output_axes") or [0] * k, n.attr("scan_output_directions") or [0] * k)


def _scan8(n) -> list[Tensor]:
    """Scan before opset 9: (sequence_lens, states..., scan inputs...) with a batch axis 0 on
    every input and the sequence on axis 1 of the scan inputs; `directions` reverses scan
    inputs. Each batch row is its own scan (the batch is unrolled; it is static) over its
    first sequence_lens[b] steps; its scan outputs, in iteration order, are padded with zeros
    to the longest sequence (ONNX leaves those values undefined). sequence_lens must be known
    while tracing."""
    m = n.attr("num_scan_inputs")
    ins = [n.x(i) for i in range(1, len(n.inputs))]
    states, seqs = ins[:len(ins) - m], ins[len(ins) - m:]
    if not seqs or any(x.ndim < 2 for x in seqs):
        n.invalid("scan inputs need a batch axis and a sequence axis")
    batch, longest = seqs[0].shape[:2]
    if any(x.shape[:2] != (batch, longest) for x in seqs) or any(
            s.ndim < 1 or s.shape[0] != batch for s in states):
        n.invalid(f"every input needs batch size {batch} and every scan input sequence length "
                  f"{longest}")
    lens = n.ints(0) if n.opt(0) is not None else (longest,) * batch
    if len(lens) != batch or any(not 0 < t <= longest for t in lens):
        n.invalid(f"sequence_lens {list(lens)} must give each of the {batch} batch rows a length "
                  f"in 1..{longest}")
    dirs = n.attr("directions") or [0] * m
    if len(dirs) != m or any(d not in (0, 1) for d in dirs):
        n.invalid(f"attribute 'directions' must be {m} flags of 0 or 1, got {list(dirs)}")
    k = len(n.attr("body").output) - len(states)
    rows = []
    for b, t in enumerate(lens):
        out = _scan(n, [s[b] for s in states], [x[b, :t] for x in seqs], [0] * m, dirs,
                    [0] * k, [0] * k)
        ys = [neural.pad_zeros(y, (0,) * y.ndim, (longest - t,) + (0,) * (y.ndim - 1))
              for y in out[len(states):]]
        rows.append(out[:len(states)] + ys)
    return [ops.stack([r[i] for r in rows]) for i in range(len(rows[0]))]


UNROLL = 64   # a Loop with a known trip count up to this is unrolled (its iteration is known)


def _bool(t: Tensor) -> Tensor:
    t = t.reshape(())
    return t if t.dtype.name == "bool" else t != 0


def loop_(n) -> list[Tensor]:
    """Loop(M, cond, v...) with body(i, cond, v...) -> (cond, v..., scan outputs...).

    A known trip count up to UNROLL is unrolled: the iteration number is a constant in each
    copy (bodies slice with it), and a condition known while tracing ends the loop there.
    Otherwise the loop is `lp.while_loop` over (i, cond, v...), or `lp.scan` when it has scan
    outputs (which need a known trip count and a condition that stays true: their length is
    the number of iterations, a shape)."""
    body = n.attr("body")
    b = n.builder
    states = [n.x(i) for i in range(2, len(n.inputs))]
    ns = len(states)
    k = len(body.output) - 1 - ns
    if k < 0:
        n.invalid(f"the body has {len(body.output)} outputs for {ns} loop-carried values")
    m_val = n.maybe_const(0)
    if n.opt(0) is not None and m_val is None and k:
        n.unsupported("the trip count depends on the graph's data and the loop has scan "
                      "outputs, whose length (a shape) it decides")
    trips = None if m_val is None else max(int(np.asarray(m_val).reshape(-1)[0]), 0)
    cond = constant(np.array(True)) if n.opt(1) is None else _bool(n.x(1))

    def step(i, c, vs):
        outs = b.subgraph(body, [i, c] + list(vs))
        return _bool(outs[0]), list(outs[1:1 + ns]), list(outs[1 + ns:])

    if trips is not None and trips <= UNROLL:
        ys = [[] for _ in range(k)]
        for i in range(trips):
            known = b.static(cond)
            if known is not None and not bool(known):
                break
            c_out, new, scans = step(constant(np.array(i, np.int64)), cond, states)
            if known is None:            # a data-dependent condition: finished copies hold
                if k:
                    n.unsupported("the loop condition depends on the graph's data and the "
                                  "loop has scan outputs, whose length it decides")
                states = [ops.where(cond, v, s) for v, s in zip(new, states)]
                cond = cond & c_out
            else:
                states, cond = new, c_out
            for y, s in zip(ys, scans):
                y.append(s)
        if k and not ys[0]:
            n.unsupported("a loop with scan outputs that runs no iteration is not supported")
        return states + [ops.stack(y) for y in ys]

    if k:   # scan outputs: every iteration must run
        if trips is None:
            n.unsupported("a loop with scan outputs needs a trip count known while tracing")
        if not bool(b.static(cond) if b.static(cond) is not None else False):
            n.unsupported("the loop condition depends on the graph's data and the loop has "
                          "scan outputs, whose length it decides")
        true = constant(np.array(True))

        def scan_step(vs, i):
            c_out, new, scans = step(i, true, vs)
            if b.static(c_out) is None or not bool(b.static(c_out)):
                n.unsupported("the body's condition may end the loop early; the scan outputs' "
                              "length would depend on data")
            return tuple(new), tuple(scans)
        final, ys = scan(scan_step, tuple(states), constant(np.arange(trips, dtype=np.int64)))
        return list(final) + list(ys)

    limit = n.x(0).reshape(()) if n.opt(0) is not None else None

    def keep_going(carry):
        i, c = carry[0], carry[1]
        return c if limit is None else c & (i < cast(limit, int64))

    def loop_body(carry):
        i, c, vs = carry[0], carry[1], carry[2:]
        c_out, new, _ = step(i, c, vs)
        return (i + 1, c_out) + tuple(new)
    out = while_loop(keep_going, loop_body, (constant(np.array(0, np.int64)), cond) + tuple(states))
    return list(out[2:])
