"""One framework's measurements in a process of its own: `python -m lepton.bench.worker`.

    python -m lepton.bench.worker --framework jax --out events.jsonl [--quick] < ids
    python -m lepton.bench.worker --framework jax --out events.jsonl --only W1,W4

Reads workload ids one a line from stdin (or takes --only) and appends one JSON object a line to
--out, flushed as it goes, so the harness has every finished result even if this process then
crashes or hangs:
    {"event": "unavailable", "detail": "jax is not installed"}     (and nothing else)
    {"event": "info", "framework": "jax", "version": "0.4.30", "threads": 1}
    {"event": "start", "id": "W1"}
    {"event": "result", "result": {...a timing.Result...}}
Threads: the harness sets the *_NUM_THREADS variables (before NumPy loads) and each runner's
setup sets its framework's own knobs; on top of that the process is pinned to `--cpus` CPUs
while the framework loads, because XLA sizes its thread pool from the CPUs it may use whatever
its flags say. Afterwards every thread may run on any CPU again, so that on a shared machine the
scheduler can move a busy thread to an idle core; timing.bench_one records the CPU time per wall
second so that a framework that still runs on more than one CPU shows up in the table.
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
from .check import as_outputs
from .workloads import select


def pin_to_cpus(n: int) -> set[int] | None:
    """Restricts this process to its last n allowed CPUs; returns the set it had before."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, sorted(before)[-n:])
    return before


def release(cpus: set[int] | None) -> None:
    """Lets every thread of this process run on `cpus` again (pools keep their size)."""
    if cpus is None:
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except (ProcessLookupError, PermissionError):
            pass       # a thread that ended meanwhile


def save_reference(workload, directory: Path) -> None:
    """Writes `workload`'s float64 reference outputs to <directory>/<id>.npz."""
    np.savez(directory / f"{workload.id}.npz",
             *as_outputs(workload.reference(*workload.make_inputs())))


def reference(workload, args, refs_dir: str | None) -> tuple[np.ndarray, ...]:
    """The float64 reference: from the harness's shared directory when it wrote one."""
    if refs_dir:
        path = Path(refs_dir) / f"{workload.id}.npz"
        if path.exists():
            with np.load(path) as z:
                return tuple(z[f"arr_{i}"] for i in range(len(z.files)))
    return as_outputs(workload.reference(*args))


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
    ap.add_argument("--refs", default=None, help="directory of <id>.npz float64 references")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs the framework may size pools for")
    opts = ap.parse_args(argv)

    with open(opts.out, "a") as out:
        def emit(**event):
            out.write(json.dumps(event) + "\n")
            out.flush()

        runner = get_runner(opts.framework)
        why = runner.unavailable()
        if why:
            emit(event="unavailable", detail=why)
            return 0
        allowed = pin_to_cpus(opts.cpus)
        try:
            runner.setup()
        except Exception as e:
            emit(event="unavailable", detail="setup failed: " + one_line(e))
            return 0
        finally:
            release(allowed)
        emit(event="info", framework=runner.name, version=runner.version(), threads=opts.cpus)
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
