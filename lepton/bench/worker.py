"""One framework's measurements in a process of its own: `python -m lepton.bench.worker`.

    python -m lepton.bench.worker --framework jax --out events.jsonl [--quick] < ids
    python -m lepton.bench.worker --framework jax --out events.jsonl --only W1,W4

Reads workload ids one a line from stdin (or takes --only) and appends one JSON object a line to
--out, flushed as it goes, so the harness has every finished result even if this process then
crashes or hangs:
    {"event": "unavailable", "detail": "jax is not installed"}     (and nothing else)
    {"event": "info", "framework": "jax", "version": "0.4.30", "cpus": [1]}
    {"event": "start", "id": "W1"}
    {"event": "result", "result": {...a timing.Result...}}
The process pins itself to `--cpus` CPUs first (default 1, the last ones it may use): XLA and
some BLAS builds start a thread per core whatever their settings say, and the comparison is one
thread. The harness sets the *_NUM_THREADS variables in the environment before NumPy loads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .runners import get_runner
from .timing import Settings, bench_one, one_line
from .workloads import select


def pin_to_cpus(n: int) -> list[int] | None:
    """Restricts this process (and the threads it starts later) to its last n allowed CPUs."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    chosen = sorted(os.sched_getaffinity(0))[-n:]
    os.sched_setaffinity(0, chosen)
    return chosen


def reference(workload, args, refs_dir: str | None) -> np.ndarray:
    """The float64 reference: from the harness's shared directory when it wrote one."""
    if refs_dir:
        path = Path(refs_dir) / f"{workload.id}.npy"
        if path.exists():
            return np.load(path)
    return workload.reference(*args)


def _ids(opts):
    if opts.only is not None:
        yield from (w.id for w in select(opts.only))
        return
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lepton.bench.worker")
    ap.add_argument("--framework", required=True)
    ap.add_argument("--only", default=None, help="run these ids instead of reading stdin")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--refs", default=None, help="directory of <id>.npy float64 references")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs to pin to (0: do not pin)")
    opts = ap.parse_args(argv)

    with open(opts.out, "a") as out:
        def emit(**event):
            out.write(json.dumps(event) + "\n")
            out.flush()

        cpus = pin_to_cpus(opts.cpus) if opts.cpus > 0 else None
        runner = get_runner(opts.framework)
        why = runner.unavailable()
        if why:
            emit(event="unavailable", detail=why)
            return 0
        try:
            runner.setup()
        except Exception as e:
            emit(event="unavailable", detail="setup failed: " + one_line(e))
            return 0
        emit(event="info", framework=runner.name, version=runner.version(), cpus=cpus)
        settings = Settings.quick_mode() if opts.quick else Settings.full()
        for wid in _ids(opts):
            emit(event="start", id=wid)
            w = select([wid])[0]
            args = w.make_inputs()
            result = bench_one(runner, w, args, reference(w, args, opts.refs), settings)
            emit(event="result", result=result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
