"""The pass pipeline: one flat, ordered list of named passes.

A pass is a function `fn(g: Graph, counts: Counter | None = None) -> Graph`: it builds a new
graph (sharing the input's unchanged Values, never mutating them) and adds what it did to
`counts` (rule name -> applications) when given one; the pipeline always gives one.

    g2, records = run_pipeline(g)
    records[0]   # PassRecord("canonicalize", 0.0008, "-3 values, 2 rewrites (mul-by-one x2)")

With `verify_each`, the verifier runs on the input and after every pass and a broken graph
raises `VerifyError` naming the pass and the node; a pass that mutates its input graph raises
`PassError` naming the pass and the value. `dump_dir` gets the IR before the first pass and
after each one, headed by the pass's wall time and change.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass

from ..ir.graph import Graph
from ..ir.verifier import VerifyError, verify
from .passes.canonicalize import canonicalize
from .passes.constant_fold import constant_fold
from .passes.cse import cse
from .passes.dce import dce
from .passes.expand import expand
from .passes.merge_scans import merge_scans
from .passes.scan_residuals import scan_residuals
from .passes.scan_weights import scan_weights

# Ops defined in other ops are expanded first, so every pass sees what will run. Canonical
# forms next (so folding and CSE see one spelling of each thing), then folding,
# then CSE; CSE and folding expose more simplifications (x * x once both x are one value,
# rules on freshly folded constants), so canonicalize runs again; a scan another one extends
# (a gradient's primal and residual scans) is merged into it once CSE has unified their
# operands; then a backward scan reads the products its forward scan computed and sums of
# per-step products leave the loop (scan_residuals), and loop weights are read transposed
# where that picks a faster GEMM (scan_weights); DCE last.
PIPELINE = [
    ("expand", expand),
    ("canonicalize", canonicalize),
    ("constant_fold", constant_fold),
    ("cse", cse),
    ("canonicalize", canonicalize),
    ("merge_scans", merge_scans),
    ("scan_residuals", scan_residuals),
    ("scan_weights", scan_weights),
    ("dce", dce),
]


class PassError(RuntimeError):
    pass


@dataclass(frozen=True)
class PassRecord:
    name: str
    seconds: float
    change: str
    rewrites: dict


def describe_change(before: Graph, after: Graph, counts: Counter) -> str:
    """'-3 values, 2 rewrites (mul-by-one x2)', '+1 values', 'changed' or 'no change'."""
    parts = []
    d = len(after.nodes) - len(before.nodes)
    if d:
        parts.append(f"{d:+d} values")
    n = sum(counts.values())
    if n:
        what = ", ".join(f"{k} x{c}" for k, c in counts.most_common())
        parts.append(f"{n} rewrite{'s' if n != 1 else ''} ({what})")
    if parts:
        return ", ".join(parts)
    same = (after.outputs == before.outputs and len(after.nodes) == len(before.nodes)
            and all(a is b for a, b in zip(after.nodes, before.nodes)))
    return "no change" if same else "changed"


def _fingerprint(g: Graph):
    return ([(v, v.op, v.inputs, v.type, tuple(v.attrs.items())) for v in g.nodes],
            list(g.inputs), list(g.outputs))


def _check_untouched(g: Graph, before, name: str) -> None:
    now = _fingerprint(g)
    if now[1:] != before[1:] or len(now[0]) != len(before[0]):
        raise PassError(f"pass '{name}' changed its input graph's inputs, outputs or values "
                        "(a pass must build a new graph)")
    for i, (a, b) in enumerate(zip(now[0], before[0])):
        if a[0] is not b[0] or a[1:4] != b[1:4] or any(
                k1 != k2 or x1 is not x2 for (k1, x1), (k2, x2) in zip(a[4], b[4])):
            raise PassError(f"pass '{name}' mutated %{i} ({b[1]}) of its input graph "
                            "(a pass must build a new graph)")


def run_pipeline(g: Graph, *, verify_each: bool = False, dump_dir: str | None = None,
                 passes=None) -> tuple[Graph, list[PassRecord]]:
    """Runs `passes` (default PIPELINE: (name, fn) pairs) in order; returns the final graph
    and one PassRecord per pass."""
    records = []
    if verify_each:
        try:
            verify(g)
        except VerifyError as e:
            raise VerifyError(f"the pipeline's input graph is broken: {e}") from None
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        _write(dump_dir, f"{g.name}.00-input.ir", str(g))
    for n, (name, fn) in enumerate(PIPELINE if passes is None else passes, 1):
        counts: Counter = Counter()
        snapshot = _fingerprint(g) if verify_each else None
        t = time.perf_counter()
        out = fn(g, counts)
        dt = time.perf_counter() - t
        if not isinstance(out, Graph):
            raise PassError(f"pass '{name}' returned {type(out).__name__}, not a Graph")
        if verify_each:
            _check_untouched(g, snapshot, name)
            verify(out, after=name)
        records.append(PassRecord(name, dt, describe_change(g, out, counts), dict(counts)))
        if dump_dir:
            _write(dump_dir, f"{g.name}.{n:02d}-{name}.ir",
                   f"// pass {name}: {dt * 1e3:.3f} ms, {records[-1].change}\n{out}")
        g = out
    return g, records


def _write(directory: str, name: str, text: str) -> None:
    with open(os.path.join(directory, name), "w") as f:
        f.write(text + "\n")
