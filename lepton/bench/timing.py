"""Timing one implementation of one workload: check first, then warm up, then the median.

    >>> settings = Settings.quick_mode()
    >>> r = bench_one(NumpyRunner(), WORKLOADS["W5"], args, ref, settings)
    >>> r.status, r.ms                      # ("ok", 9.4) -- or ("wrong", None) and r.detail

`measure` takes the clock as an argument so tests can drive it with a fake one.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .check import verify
from .workloads import Workload

Clock = Callable[[], float]


@dataclass(frozen=True)
class Settings:
    """How hard to measure. A sample times `inner` back-to-back calls, with inner chosen so a
    sample lasts at least `min_sample_s` (the clock's resolution then does not matter); samples
    are taken until there are `min_samples` of them and `budget_s` has been spent, or
    `max_samples` are reached. Warm-up runs at least `warmup` calls and `warmup_s` seconds: a
    core that sat idle while another framework was measured takes tens of milliseconds to
    reach its full clock again, which would otherwise slow the first samples of whoever comes
    next."""
    warmup: int = 2
    warmup_s: float = 0.3
    min_samples: int = 10
    max_samples: int = 2000
    budget_s: float = 1.5
    min_sample_s: float = 2e-4
    quick: bool = False

    @staticmethod
    def quick_mode() -> "Settings":
        return Settings(warmup=1, warmup_s=0.1, min_samples=3, max_samples=500, budget_s=0.15,
                        quick=True)

    @staticmethod
    def full() -> "Settings":
        return Settings()


@dataclass(frozen=True)
class Timing:
    median_s: float       # per call
    samples: int
    inner: int            # calls per sample
    cpu_per_wall: float | None = None   # process CPU seconds per wall second while sampling


def measure(call: Callable[[], Any], settings: Settings, clock: Clock = time.perf_counter,
            cpu_clock: Clock | None = None) -> Timing:
    """Median seconds per call of `call()` after `settings.warmup` untimed calls.

    With `cpu_clock` (time.process_time: all threads of the process), also the CPU time spent
    per wall second while sampling: about 1 for one busy thread, near 2 when a framework
    computes on two CPUs, well under 1 when the machine is busy and the process waits for a CPU.

    >>> measure(lambda: sum(range(100)), Settings.quick_mode()).median_s < 1e-3
    True
    """
    estimate = 0.0
    start, calls = clock(), 0
    while calls < max(1, settings.warmup) or clock() - start < settings.warmup_s:
        t0 = clock()
        call()
        estimate = clock() - t0
        calls += 1
    inner = 1
    if estimate < settings.min_sample_s:
        inner = min(10_000, math.ceil(settings.min_sample_s / max(estimate, 1e-7)))
    samples: list[float] = []
    spent = 0.0
    cpu0 = cpu_clock() if cpu_clock else 0.0
    while len(samples) < settings.max_samples and (
            len(samples) < settings.min_samples or spent < settings.budget_s):
        t0 = clock()
        for _ in range(inner):
            call()
        dt = clock() - t0
        spent += dt
        samples.append(dt / inner)
    share = (cpu_clock() - cpu0) / spent if cpu_clock and spent > 0 else None
    return Timing(statistics.median(samples), len(samples), inner, share)


@dataclass
class Result:
    """One cell of the table. status: ok | wrong | error | skipped | unavailable | timeout | crash.
    `ms` is the median per call in milliseconds (only when ok); `compile_s` is the runner's
    `prepare` time: from the model to compiled code (Lepton: the cold `lp.compile` call, JIT
    included; lazy frameworks such as torch.compile and jax.jit run once inside prepare)."""
    workload: str
    framework: str
    status: str
    ms: float | None = None
    compile_s: float | None = None
    warm_s: float | None = None       # Lepton: the same compile again, from the disk cache
    error: float | None = None        # the checked relative error
    samples: int | None = None
    cpu_per_wall: float | None = None   # see measure(); > 1 means more than one thread
    detail: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> "Result":
        return Result(**d)


def one_line(exc: BaseException) -> str:
    """An exception as one line: `TypeError: message` (first line of the message only)."""
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}".rstrip(": ")


def bench_one(runner, workload: Workload, args, ref, settings: Settings,
              clock: Clock = time.perf_counter, cpu_clock: Clock | None = time.process_time
              ) -> Result:
    """Prepares `workload` with `runner`, checks its output against `ref`, and times it.

    A wrong output is reported as "wrong" and never timed; any exception becomes "error" with
    a one-line detail, so one broken workload does not stop the others.
    """
    name = runner.name
    reason = runner.unsupported(workload)
    if reason:
        return Result(workload.id, name, "skipped", detail=reason)
    try:
        t0 = clock()
        prepared = runner.prepare(workload, args)
        compile_s = clock() - t0
        out = prepared.fetch(prepared.call())
    except Exception as e:   # a framework's failure is a result, not a crash of the table
        return Result(workload.id, name, "error", detail=one_line(e))
    verdict = verify(workload, out, ref, args)
    if not verdict.ok:
        return Result(workload.id, name, "wrong", compile_s=compile_s, error=verdict.error,
                      detail=verdict.detail)
    try:
        timing = measure(prepared.call, settings, clock, cpu_clock)
    except Exception as e:
        return Result(workload.id, name, "error", detail="while timing: " + one_line(e))
    return Result(workload.id, name, "ok", ms=timing.median_s * 1e3, compile_s=compile_s,
                  warm_s=prepared.warm_s, error=verdict.error, samples=timing.samples,
                  cpu_per_wall=timing.cpu_per_wall)
