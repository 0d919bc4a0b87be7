"""The host's vector width for generated code, chosen once per host by measuring Lepton's own
kernels (the decision and its JSON file: runtime/vector_width.py).

    >>> host_vector_width(config.current())     # 256 without AVX-512; measured (once) with it
    256

On an AVX-512 host the calibration compiles three small kernels like the benchmarks' (an
elementwise tanh-GELU, a layer_norm with its row reductions, a 128^3 matmul) with 256-bit and with
512-bit preference, on one thread, and times them alternately: the width with the smaller sum of
medians wins. Compiling and timing cost about half a second, once per host: the result goes to
`<LEPTON_CACHE_DIR>/vector_width.json` (not written when LEPTON_CACHE=0; then each process
measures once).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import statistics
import threading
import time

import llvmlite
import numpy as np

from . import config
from .runtime.jit import host_cpu
from .runtime.vector_width import FILE_NAME, choose

_choosing = threading.RLock()   # re-entered: measuring compiles, and compiling asks the width
RUNS = 15           # timed calls per kernel and width; each kernel takes ~0.05-0.2 ms


def host_vector_width(cfg: config.Config) -> int:
    """The vector width (bits) to compile for: LEPTON_VECTOR_WIDTH when set, else the host's
    measured choice (remembered in this process too)."""
    with _choosing:     # two threads compiling at once measure once, not against each other
        return _chosen(cfg.vector_width, cfg.cache_dir if cfg.cache else None)


@functools.cache
def _chosen(forced: int | None, cache_dir: str | None) -> int:
    cpu, features = host_cpu()
    return choose(features, f"{cpu}|{features}|llvmlite {llvmlite.__version__}", _measure_once,
                  forced=forced, cache_file=cache_dir and os.path.join(cache_dir, FILE_NAME))


def _kernels():
    """(function, arguments) pairs: what the benchmarks spend their time in, small enough to
    stay in cache, big enough (64K elements) that the loop body dominates."""
    from .frontends.nn_ops import layer_norm
    from .frontends.ops import gelu
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1 << 16, dtype=np.float32)
    rows = rng.standard_normal((128, 512), dtype=np.float32)
    w, b = np.ones(512, np.float32), np.zeros(512, np.float32)
    a, m = rng.standard_normal((128, 128), dtype=np.float32), \
        rng.standard_normal((128, 128), dtype=np.float32)
    return [(lambda x: gelu(x * 0.75 - 0.25, approximate=True) * 0.5 + x, (x,)),
            (lambda x, w, b: layer_norm(x, w, b), (rows, w, b)),
            (lambda a, m: a @ m, (a, m))]


def measure(widths) -> dict[int, float]:
    """Seconds per width for the calibration kernels compiled at that width (sum of the
    kernels' median times); widths alternate run by run so drift in the clock hits both."""
    from .compile import CompileResult    # here: compile.py asks this module for the width
    from .frontends.trace import trace_flat
    base = dataclasses.replace(config.current(), threads=1, cache=False, dump_dir=None)
    calls = []
    for k, (fn, args) in enumerate(_kernels()):
        graph, _, out_tree = trace_flat(fn, args)
        for w in widths:
            res = CompileResult(graph, None, out_tree,
                                cfg=dataclasses.replace(base, vector_width=w))
            res.executable(*args)                       # warm up: page in, fill caches
            calls.append((w, k, res.executable, args))
    times: dict[tuple[int, int], list[float]] = {}
    for _ in range(RUNS):
        for w, k, run, args in calls:
            t = time.perf_counter()
            run(*args)
            times.setdefault((w, k), []).append(time.perf_counter() - t)
    return {w: sum(statistics.median(ts) for (ww, _), ts in times.items() if ww == w)
            for w in widths}


# once per process at most, whichever cache directories the process compiles with
_measure_once = functools.cache(measure)
