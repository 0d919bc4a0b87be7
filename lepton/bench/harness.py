"""`lepton bench`: every framework in its own process, one after another, then one table.

    >>> report = run(only="W1,W5", peers="none", quick=True)
    >>> print(format_table(report))

Each framework's worker (worker.py) is a subprocess with one-thread settings in its environment,
pinned to one CPU, and watched with a per-workload timeout: a crash or hang costs that workload's
cell (CRASH / TIMEOUT) and the worker is restarted for the workloads after it, so one broken peer
never takes the table down. The float64 references are computed once here and shared through
files.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .peers import PEERS, peer_name
from .runners import get_runner
from .timing import Result
from .workloads import Workload, select

# What the environment of every worker says about threads (BENCHMARKS.md compares one thread).
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "LEPTON_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                  "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
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


def _write_references(workloads: list[Workload], directory: Path) -> None:
    for w in workloads:
        np.save(directory / f"{w.id}.npy", w.reference(*w.make_inputs()))


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def run_worker(framework: str, ids: list[str], quick: bool, workdir: Path, refs: Path | None,
               timeout_s: float, python: str = sys.executable, poll_s: float = 0.05
               ) -> FrameworkRun:
    """Runs `framework` on the workloads `ids` in subprocesses; never raises for their failures.

    `timeout_s` bounds each workload (and the worker's start-up), not the whole run.
    """
    run = FrameworkRun(framework)
    remaining = list(ids)
    env = {**os.environ, **ONE_THREAD_ENV}
    attempt = 0
    while remaining:
        attempt += 1
        tag = framework.replace(".", "_")
        events_path = workdir / f"{tag}-{attempt}.jsonl"
        log_path = workdir / f"{tag}-{attempt}.log"
        cmd = [python, "-m", "lepton.bench.worker", "--framework", framework,
               "--only", ",".join(remaining), "--out", str(events_path)]
        if quick:
            cmd.append("--quick")
        if refs is not None:
            cmd += ["--refs", str(refs)]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        current, since, consumed, killed = None, time.monotonic(), 0, False
        while True:
            done = proc.poll() is not None
            text = events_path.read_text() if events_path.exists() else ""
            complete = text[:text.rfind("\n") + 1]     # a half-written line waits
            for line in complete[consumed:].splitlines():
                ev = json.loads(line)
                kind = ev["event"]
                if kind == "unavailable":
                    run.note = ev["detail"]
                    return run
                if kind == "info":
                    run.version = ev.get("version", "")
                elif kind == "start":
                    current, since = ev["id"], time.monotonic()
                elif kind == "result":
                    r = Result.from_json(ev["result"])
                    run.results[r.workload] = r
                    if r.workload in remaining:
                        remaining.remove(r.workload)
                    current = None
            consumed = len(complete)
            if done:
                break
            if time.monotonic() - since > timeout_s:
                _kill(proc)
                killed = True
                break
            time.sleep(poll_s)
        if not remaining:
            break
        # The worker died or was killed: charge it to the workload it was running, then go on.
        victim = current or remaining[0]
        if killed:
            why = f"no result within {timeout_s:.0f} s"
            run.results[victim] = Result(victim, framework, "timeout", detail=why)
        else:
            why = f"worker exited with status {proc.returncode}: {_last_line(log_path)}"
            run.results[victim] = Result(victim, framework, "crash", detail=why)
        remaining.remove(victim)
    return run


def _kill(proc: subprocess.Popen) -> None:
    # The worker leads its own session: end it and whatever it started (compilers, pools).
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def machine_info() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def run(only: str | None = None, peers: str | None = None, quick: bool = False,
        timeout_s: float | None = None, lepton: bool = True, progress=None) -> Report:
    """Measures NumPy, the chosen peers and Lepton on the selected workloads.

    `progress(msg)` (if given) is told as each framework starts, for a live status line.
    """
    workloads = select(only)
    ids = [w.id for w in workloads]
    peer_names, notes = resolve_peers(peers, quick)
    names = ["NumPy", *peer_names] + (["Lepton"] if lepton else [])
    if timeout_s is None:
        timeout_s = 120.0 if quick else 600.0
    frameworks = []
    with tempfile.TemporaryDirectory(prefix="lepton-bench-") as tmp:
        workdir = Path(tmp)
        refs = workdir / "refs"
        refs.mkdir()
        _write_references(workloads, refs)
        for name in names:
            if progress:
                progress(f"{name} ...")
            why = get_runner(name).unavailable()
            if why:           # cheap check here: no process for a package that is not there
                frameworks.append(FrameworkRun(name, note=why))
                continue
            frameworks.append(run_worker(name, ids, quick, workdir, refs, timeout_s))
    return Report(workloads, frameworks, quick, notes, machine_info())


def write_json(report: Report, path: str) -> None:
    Path(path).write_text(json.dumps(report.to_json(), indent=2) + "\n")
