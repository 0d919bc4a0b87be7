"""Time per kernel: `f.profile(*args)` runs a build of the same code whose entry reads the cycle
counter between kernels, and reports each kernel's median share of a call.

    for k in f.profile(x, w):
        print(f"{k.name:40s} {k.us:8.1f} µs {k.share:6.1%}")
"""
from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass

import numpy as np

from .compiler.codegen.lower import TICKS


@dataclass(frozen=True)
class KernelTime:
    name: str
    us: float       # median microseconds per call
    share: float    # of the kernels' total


def profile(result, leaves, repeat: int = 100) -> list[KernelTime]:
    """Per-kernel medians over `repeat` calls of a profiling build of `result`'s graph."""
    from .compile import CompileResult
    prof = CompileResult(result.traced, result.in_tree, result.out_tree, profile=True)
    n = len(prof.kernel_names)
    ticks = (ctypes.c_int64 * (n + 1)).from_address(prof.lib.global_address(TICKS))
    rows = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        prof.executable(*leaves)
        wall = time.perf_counter() - t0
        t = np.array(ticks[:], dtype=np.float64)
        span = t[-1] - t[0]
        # cycles to seconds: the kernels' span is at most the call's wall time
        rows.append(np.diff(t) / span * wall if span > 0 else np.zeros(n))
    med = np.median(np.array(rows), axis=0) * 1e6
    total = med.sum() or 1.0
    return [KernelTime(name, float(us), float(us / total))
            for name, us in zip(prof.kernel_names, med)]
