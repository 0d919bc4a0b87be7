"""The harness's side of a worker process (worker.py): start it, hand it one workload at a time,
and turn a crash or a hang into a result instead of an exception.

    w = WorkerProcess("jax", workdir, quick=True)
    if w.start(timeout_s=60) is None:               # None: running; else why it cannot run
        r = w.run("W4", timeout_s=60)              # a timing.Result, whatever happens
    w.close()

A worker that crashed or was killed is started again for the next workload, so a failure costs
one cell. Events come through a file rather than a pipe because frameworks print to stdout.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .timing import Result

# What the environment of a worker says about threads; XLA's flags are set by the jax runner.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "LEPTON_NUM_THREADS")


def worker_env(threads: int, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({v: str(threads) for v in THREAD_VARS})
    env.update(extra or {})
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class WorkerProcess:
    """One framework's worker, kept alive across workloads."""

    def __init__(self, framework: str, workdir: Path, quick: bool = False,
                 refs: Path | None = None, threads: int = 1, python: str = sys.executable,
                 poll_s: float = 0.02, env: dict | None = None):
        self.framework, self.workdir, self.quick, self.refs = framework, workdir, quick, refs
        self.env = env          # extra environment variables (e.g. LEPTON_VECTOR_WIDTH)
        self.threads, self.python, self.poll_s = threads, python, poll_s
        self.version = ""
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._events: Path | None = None
        self._log: Path | None = None
        self._consumed = 0

    # -- process life ----------------------------------------------------------------------
    def start(self, timeout_s: float) -> str | None:
        """Starts the worker and waits for it to load its framework. Returns None when it is
        ready, else why not ("unavailable: ...", a timeout, or how it died)."""
        self.close()
        self.starts += 1
        # Unique per worker object: several workers may share one directory.
        tag = f"{self.framework.replace('.', '_')}-{self.threads}t-{id(self):x}-{self.starts}"
        self._events = self.workdir / f"{tag}.jsonl"
        self._log = self.workdir / f"{tag}.log"
        self._consumed = 0
        cmd = [self.python, "-m", "lepton.bench.worker", "--framework", self.framework,
               "--out", str(self._events), "--cpus", str(self.threads)]
        if self.quick:
            cmd.append("--quick")
        if self.refs is not None:
            cmd += ["--refs", str(self.refs)]
        with open(self._log, "wb") as log:
            # Its own session, so a kill also ends what it started (compilers, thread pools).
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         env=worker_env(self.threads, self.env),
                                         start_new_session=True)
        ev = self._wait(lambda e: e["event"] in ("info", "unavailable"), timeout_s)
        if isinstance(ev, str):
            return ev
        if ev["event"] == "unavailable":
            self.close()
            return "unavailable: " + ev["detail"]
        self.version = ev.get("version", "")
        return None

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._kill()
        self.proc = None

    def _kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        self.proc.wait()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- one workload ------------------------------------------------------------------------
    def run(self, wid: str, timeout_s: float) -> Result:
        """The result for workload `wid`; timeout_s bounds the worker's start (if it must be
        started) and, separately, the workload itself."""
        if not self.alive:
            why = self.start(timeout_s)
            if why is not None:
                status = "timeout" if why.startswith("no answer") else "crash"
                if why.startswith("unavailable"):
                    status, why = "unavailable", why.split(": ", 1)[1]
                return Result(wid, self.framework, status, detail=why)
        try:
            self.proc.stdin.write(f"{wid}\n".encode())
            self.proc.stdin.flush()
        except OSError:
            pass            # it died since; _wait reports how
        ev = self._wait(lambda e: e["event"] == "result" and e["result"]["workload"] == wid,
                        timeout_s)
        if isinstance(ev, str):
            return Result(wid, self.framework, "timeout" if ev.startswith("no answer")
                          else "crash", detail=ev)
        return Result.from_json(ev["result"])

    def _wait(self, wanted, timeout_s: float):
        """The first new event satisfying `wanted`, or a string saying why there is none."""
        deadline = time.monotonic() + timeout_s
        while True:
            exited = self.proc.poll() is not None
            for ev in self._new_events():
                if wanted(ev):
                    return ev
            if exited:
                code = self.proc.returncode
                self.proc = None
                return f"worker exited with status {code}: {self._last_log_line()}".rstrip(": ")
            if time.monotonic() > deadline:
                self._kill()
                self.proc = None
                return f"no answer within {timeout_s:.0f} s"
            time.sleep(self.poll_s)

    def _new_events(self) -> list[dict]:
        try:
            text = self._events.read_text()
        except FileNotFoundError:
            return []
        complete = text[:text.rfind("\n") + 1]     # a half-written line waits for the next poll
        fresh = complete[self._consumed:]
        self._consumed = len(complete)
        return [json.loads(line) for line in fresh.splitlines() if line.strip()]

    def _last_log_line(self) -> str:
        try:
            lines = [ln.strip() for ln in self._log.read_text(errors="replace").splitlines()
                     if ln.strip()]
        except OSError:
            return ""
        return lines[-1][:200] if lines else ""
