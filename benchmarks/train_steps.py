"""The training-step workloads W9 (LSTM, lp.scan) and W11 (BatchNorm CNN) in one process, one
thread: Lepton against NumPy (the step's backward written by hand), jax.jit, torch eager and
(with --torch-compile) torch.compile, with the
cold compile of each (first call; LEPTON_CACHE=0) and the median per step in wall and in CPU
seconds. On a shared machine the CPU-time medians are the steadier ones (a step that waits for
a core is not charged for it); the workloads are in lepton/bench/lstm.py and bn_cnn.py.

    python benchmarks/train_steps.py [--only W9,W11] [--repeat 20] [--torch-compile]

Every framework's result is checked against the float64 reference before it is timed
(lepton.bench.check.verify). `lepton bench --only W9,W11` measures the same in one process per
framework.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("LEPTON_CACHE", "0")
os.environ.setdefault("LEPTON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402


def _lepton(w, args):
    import lepton as lp
    f = lp.compile(w.model)
    return lambda: f(*args)


def _jax(w, args):
    import jax
    from lepton.bench import bn_cnn, lstm
    step = {"W9": lstm, "W11": bn_cnn}[w.id].jax_step(jax)
    jargs = [jax.device_put(a.astype(np.int32) if a.dtype == np.int64 else a) for a in args]
    f = jax.jit(step)
    return lambda: jax.block_until_ready(f(*jargs))


def _torch(w, args, compiled=False):
    import torch
    from lepton.bench import bn_cnn, lstm
    torch.set_num_threads(1)
    step = {"W9": lstm, "W11": bn_cnn}[w.id].torch_step(torch)
    if compiled:
        step = torch.compile(step, dynamic=False)
    targs = [torch.from_numpy(a) for a in args]
    return lambda: tuple(t.numpy() for t in step(*targs))


def measure(make, w, args, ref, repeat: int):
    from lepton.bench.check import verify
    t = time.perf_counter()
    call = make(w, args)
    out = call()
    cold = time.perf_counter() - t
    verdict = verify(w, tuple(np.asarray(o) for o in out), ref, args)
    if not verdict.ok:
        return None, None, cold, verdict.detail
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        call()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3, cold, ""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="W9,W11")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--torch-compile", action="store_true",
                    help="also torch.compile (minutes of compile for W9's 64-step loop)")
    a = ap.parse_args(argv)
    from lepton.bench import select
    runners = [("Lepton", _lepton), ("NumPy", lambda w, x: lambda: w.numpy_impl(*x)),
               ("jax.jit", _jax), ("torch eager", _torch)]
    if a.torch_compile:
        runners.append(("torch.compile", lambda w, x: _torch(w, x, compiled=True)))
    for w in select(a.only):
        args = w.make_inputs()
        ref = w.reference(*args)
        rows = []
        for name, make in runners:
            try:
                rows.append((name, *measure(make, w, args, ref, a.repeat)))
            except ImportError as e:
                print(f"{name}: not installed ({e})")
        ok = [r for r in rows if r[1] is not None and r[0] != "Lepton"]
        best_wall = min((r[1] for r in ok), default=None)
        best_cpu = min((r[2] for r in ok), default=None)
        print(f"\n{w.id}: {w.title}")
        print(f"{'':14}{'wall ms':>10}{'CPU ms':>10}{'cold s':>9}{'wall/best':>11}{'CPU/best':>10}")
        for name, wall, cpu, cold, why in rows:
            if wall is None:
                print(f"{name:<14}WRONG: {why}")
                continue
            rw = f"{wall / best_wall:.2f}x" if best_wall else ""
            rc = f"{cpu / best_cpu:.2f}x" if best_cpu else ""
            print(f"{name:<14}{wall:10.2f}{cpu:10.2f}{cold:9.2f}{rw:>11}{rc:>10}")


if __name__ == "__main__":
    main()
