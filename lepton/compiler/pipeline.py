"""The pass pipeline: one flat, ordered list of named passes, each a function Graph -> Graph.

    g2, records = run_pipeline(g)          # records: [PassRecord("dce", 0.0001, "-2 values"), ...]
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ..ir.graph import Graph
from ..ir.verifier import verify
from .passes.dce import dce

PIPELINE = [
    ("dce", dce),
]


@dataclass(frozen=True)
class PassRecord:
    name: str
    seconds: float
    change: str


def _change(before: Graph, after: Graph) -> str:
    d = len(after.nodes) - len(before.nodes)
    if d:
        return f"{d:+d} values"
    return "changed" if str(before) != str(after) else "no change"


def run_pipeline(g: Graph, *, verify_each: bool = False, dump_dir: str | None = None,
                 passes=None) -> tuple[Graph, list[PassRecord]]:
    """Runs the passes in order; with verify_each, a broken graph raises naming the pass."""
    records = []
    if dump_dir:
        os.makedirs(dump_dir, exist_ok=True)
        _write(dump_dir, f"{g.name}.00-input.ir", str(g))
    for n, (name, fn) in enumerate(passes or PIPELINE, 1):
        t = time.perf_counter()
        out = fn(g)
        dt = time.perf_counter() - t
        if verify_each:
            verify(out, after=name)
        records.append(PassRecord(name, dt, _change(g, out)))
        if dump_dir:
            _write(dump_dir, f"{g.name}.{n:02d}-{name}.ir",
                   f"// pass {name}: {dt * 1e3:.3f} ms, {records[-1].change}\n{out}")
        g = out
    return g, records


def _write(directory: str, name: str, text: str) -> None:
    with open(os.path.join(directory, name), "w") as f:
        f.write(text + "\n")
