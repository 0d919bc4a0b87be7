"""Is a result right? Every implementation's output is checked against the workload's float64
reference before it is timed; a wrong one is reported, never timed.

    >>> check(np.float32([1, 2]), np.array([1.0, 2.0]), tol=1e-3).ok
    True
    >>> verify(WORKLOADS["W6"], outputs, reference, args)   # every output, via Workload.compare
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    error: float          # max |y - ref| / (|ref| + scale), the quantity compared with tol
    detail: str           # empty when ok, else why it is wrong

    def __bool__(self):
        return self.ok


def check(out, ref: np.ndarray, tol: float) -> CheckResult:
    """Is `out` a float32 array of ref's shape within tol of the float64 reference?

    The error is relative per element, with the reference's RMS as a floor, so that elements
    near zero are not held to an impossible relative standard:
    max |out - ref| / (|ref| + rms(ref)) <= tol.
    """
    out = np.asarray(out)
    if out.shape != ref.shape:
        return CheckResult(False, math.inf, f"shape {list(out.shape)}, expected {list(ref.shape)}")
    if out.dtype != np.float32:
        return CheckResult(False, math.inf, f"dtype {out.dtype}, expected float32")
    if not np.all(np.isfinite(out)):
        return CheckResult(False, math.inf, "non-finite values")
    scale = float(np.sqrt(np.mean(np.square(ref)))) if ref.size else 0.0
    denom = np.abs(ref) + (scale if scale > 0 else 1.0)
    err = float(np.max(np.abs(out.astype(np.float64) - ref) / denom)) if ref.size else 0.0
    if err > tol:
        return CheckResult(False, err, f"max relative error {err:.2e} > tolerance {tol:.0e}")
    return CheckResult(True, err, "")


def as_outputs(x) -> tuple[np.ndarray, ...]:
    """A workload's result as a tuple of arrays (most workloads have one output)."""
    if isinstance(x, (tuple, list)):
        return tuple(np.asarray(o) for o in x)
    return (np.asarray(x),)


def verify(workload, out, ref, args) -> CheckResult:
    """`check` for every output of `workload` (a workloads.Workload; through its `compare`
    when it has one).

    >>> verify(WORKLOADS["W6"], w6.numpy_impl(*args), w6.reference(*args), args).ok
    True
    """
    outs, refs = as_outputs(out), as_outputs(ref)
    if len(outs) != len(refs):
        return CheckResult(False, math.inf, f"{len(outs)} outputs, expected {len(refs)}")
    for i, (o, r) in enumerate(zip(outs, refs)):
        # Shape, dtype and finiteness of what the framework returned, before any transform.
        basic = check(o, r.astype(np.float64), math.inf)
        if not basic.ok:
            return CheckResult(False, math.inf, _which(i, len(outs)) + basic.detail)
    if workload.compare is not None:
        outs = workload.compare(tuple(o.astype(np.float64) for o in outs), args)
        refs = workload.compare(tuple(r.astype(np.float64) for r in refs), args)
        outs = tuple(o.astype(np.float32) for o in outs)   # check() wants float32 outputs
    worst = 0.0
    for i, (o, r) in enumerate(zip(outs, refs)):
        c = check(o, np.asarray(r, np.float64), workload.tol)
        if not c.ok:
            return CheckResult(False, c.error, _which(i, len(outs)) + c.detail)
        worst = max(worst, c.error)
    return CheckResult(True, worst, "")


def _which(i: int, n: int) -> str:
    return f"output {i}: " if n > 1 else ""
