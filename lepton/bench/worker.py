"""One framework's measurements in a process of its own: `python -m lepton.bench.worker`.

    python -m lepton.bench.worker --framework jax --only W1,W4 --quick --out events.jsonl

Writes one JSON object a line to --out, flushed as it goes, so that the harness still has every
finished workload if this process crashes or hangs:
    {"event": "unavailable", "detail": "jax is not installed"}     (and nothing else)
    {"event": "info", "framework": "jax", "version": "0.4.30", "cpu": 1}
    {"event": "start", "id": "W1"}
    {"event": "result", "result": {...a timing.Result...}}
The process pins itself to one CPU first (`--cpu`, default the last one it may use): XLA and some
BLAS builds start a thread per core whatever their settings say, and the comparison is one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Before NumPy (and any BLAS) is imported: one thread everywhere we can say so.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "LEPTON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from .runners import get_runner  # noqa: E402
from .timing import Settings, bench_one, one_line  # noqa: E402
from .workloads import select  # noqa: E402


def pin_to_one_cpu(cpu: int | None) -> int | None:
    """Restricts this process (and threads it starts later) to one CPU; returns it."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[-1] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


def reference(workload, args, refs_dir: str | None) -> np.ndarray:
    """The float64 reference: from the harness's shared directory when it wrote one."""
    if refs_dir:
        path = Path(refs_dir) / f"{workload.id}.npy"
        if path.exists():
            return np.load(path)
    return workload.reference(*args)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lepton.bench.worker")
    ap.add_argument("--framework", required=True)
    ap.add_argument("--only", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--refs", default=None, help="directory of <id>.npy float64 references")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--no-pin", action="store_true")
    opts = ap.parse_args(argv)

    with open(opts.out, "a", buffering=1) as out:
        def emit(**event):
            out.write(json.dumps(event) + "\n")
            out.flush()

        cpu = None if opts.no_pin else pin_to_one_cpu(opts.cpu)
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
        emit(event="info", framework=runner.name, version=runner.version(), cpu=cpu)
        settings = Settings.quick_mode() if opts.quick else Settings.full()
        for w in select(opts.only):
            emit(event="start", id=w.id)
            args = w.make_inputs()
            result = bench_one(runner, w, args, reference(w, args, opts.refs), settings)
            emit(event="result", result=result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
