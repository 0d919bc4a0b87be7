"""`lepton bench`: every framework in its own process, one table.

    >>> report = run(only="W1,W5", peers="none", quick=True)
    >>> print(format_table(report))

Each framework has a worker process (worker.py, driven through supervisor.py) with its thread
pools sized for one CPU (see worker.py for how). The workers stay alive and take turns: each
workload is measured in every framework back to back before the next workload starts, so a change
of load on a shared machine shifts the whole table rather than the ratios within a row. A crash or
hang costs one cell (CRASH / TIMEOUT) and the worker is started again for the next workload.
The float64 references are computed once here and shared through files.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .peers import PEERS, peer_name
from .runners import get_runner
from .supervisor import WorkerProcess
from .timing import Result
from .worker import save_reference
from .workloads import Workload, select

# Peers left out under --quick unless named: each of its compiles takes seconds.
SLOW_PEERS = ("torch.compile",)


@dataclass
class FrameworkRun:
    """What one framework's worker(s) reported."""
    name: str
    version: str = ""
    note: str = ""                 # why there are no numbers (not installed, skipped, ...)
    results: dict[str, Result] = field(default_factory=dict)


@dataclass
class Report:
    workloads: list[Workload]
    frameworks: list[FrameworkRun]          # NumPy first, Lepton last
    quick: bool
    notes: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)

    def framework(self, name: str) -> FrameworkRun | None:
        return next((f for f in self.frameworks if f.name == name), None)

    def to_json(self) -> dict:
        return {"quick": self.quick, "machine": self.machine, "notes": self.notes,
                "workloads": [{"id": w.id, "title": w.title, "unit": w.unit}
                              for w in self.workloads],
                "frameworks": [{"name": f.name, "version": f.version, "note": f.note,
                                "results": {k: r.to_json() for k, r in f.results.items()}}
                               for f in self.frameworks]}


def resolve_peers(spec: str | None, quick: bool) -> tuple[list[str], list[str]]:
    """The peers to run and a footer note for those left out by default.

    spec: None (all, but the slow ones under quick), "none", "all", or "torch,jax,...".
    >>> resolve_peers("ort,torch", quick=False)
    (['torch', 'onnxruntime'], [])
    """
    if spec is None or spec.strip().lower() == "default":
        chosen = [p for p in PEERS if not (quick and p in SLOW_PEERS)]
        left = [p for p in PEERS if p not in chosen]
        return chosen, ([f"{', '.join(left)}: skipped under --quick (seconds of compile per "
                          f"workload); name it with --peers to include it"] if left else [])
    key = spec.strip().lower()
    if key == "none":
        return [], []
    if key == "all":
        return list(PEERS), []
    wanted = {peer_name(p) for p in spec.split(",") if p.strip()}
    return [p for p in PEERS if p in wanted], []


def machine_info(threads: int = 1) -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "threads": threads}


def run(only: str | None = None, peers: str | None = None, quick: bool = False,
        timeout_s: float | None = None, lepton: bool = True, threads: int = 1,
        progress=None) -> Report:
    """Measures NumPy, the chosen peers and Lepton on the selected workloads.

    `timeout_s` bounds each (framework, workload) cell and each worker's start-up.
    `progress(msg)` (if given) is told what is being measured, for a live status line.
    """
    workloads = select(only)
    peer_names, notes = resolve_peers(peers, quick)
    if quick and only is None:
        heavy = [w.id for w in workloads if w.heavy]
        workloads = [w for w in workloads if not w.heavy]
        if heavy:
            notes.append(f"{', '.join(heavy)}: skipped under --quick (seconds of compile in some "
                         f"frameworks); name them with --only to include them")
    names = ["NumPy", *peer_names] + (["Lepton"] if lepton else [])
    if timeout_s is None:
        timeout_s = 120.0 if quick else 600.0
    runs = {n: FrameworkRun(n) for n in names}
    with tempfile.TemporaryDirectory(prefix="lepton-bench-") as tmp:
        workdir = Path(tmp)
        refs = workdir / "refs"
        refs.mkdir()
        if progress:
            progress("float64 references ...")
        for w in workloads:
            save_reference(w, refs)
        workers: dict[str, WorkerProcess] = {}
        try:
            for n in names:
                why = get_runner(n).unavailable()    # cheap: no process for a missing package
                if why is None:
                    if progress:
                        progress(f"starting {n} ...")
                    workers[n] = WorkerProcess(n, workdir, quick, refs, threads)
                    why = workers[n].start(timeout_s)
                    runs[n].version = workers[n].version
                if why is not None:
                    runs[n].note = why.removeprefix("unavailable: ")
                    workers.pop(n, None)
            for w in workloads:
                for n, worker in workers.items():
                    if progress:
                        progress(f"{w.id} {n} ...")
                    runs[n].results[w.id] = worker.run(w.id, timeout_s)
        finally:
            for worker in workers.values():
                worker.close()
    return Report(workloads, list(runs.values()), quick, notes, machine_info(threads))


def write_json(report: Report, path: str) -> None:
    Path(path).write_text(json.dumps(report.to_json(), indent=2) + "\n")
