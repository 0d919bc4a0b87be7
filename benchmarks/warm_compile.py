"""Warm compiles of a workload repeated in one process, to time or profile them: the disk cache
is filled once, then each `lp.compile` finds the code there (the previous compile's loaded code
is dropped first, so each one reads and loads the entry as a new process would, but for the
shared GEMM routines, which stay loaded for the life of a process).

    python benchmarks/warm_compile.py [--only W10] [--repeat 20] [--profile [N]]

    workload  cpu ms  wall ms  trace  key   cache_load  load
    W10       17.1    17.3     8.1    1.8   2.1         1.3

Medians in milliseconds; the stages are `f.stats()["compile_seconds"]`'s (wall). `--profile`
prints cProfile's N most expensive functions (own time) over the repeats instead. The disk cache
is a fresh temporary directory unless LEPTON_CACHE_DIR is set. A fresh process's warm compile
(the `fresh` column of compile_times.py) also pays for loading the routines and for running
code for the first time.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time

STAGES = ("trace", "key", "cache_load", "load")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="W10")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--profile", type=int, nargs="?", const=40, default=None, metavar="N")
    opts = ap.parse_args(argv)
    os.environ.setdefault("LEPTON_CACHE_DIR", tempfile.mkdtemp(prefix="lepton-warm-"))
    os.environ["LEPTON_CACHE"] = "1"
    import lepton as lp
    from lepton.bench import select

    rows = []
    for w in select(opts.only):
        model, args = w.model, w.make_inputs()
        lp.compile(model, example_args=args)    # fills the disk cache (and is dropped)
        gc.collect()
        profiler = None
        if opts.profile is not None:
            import cProfile
            profiler = cProfile.Profile()
        runs = []
        for _ in range(opts.repeat):
            gc.collect()    # the last compile's code is gone: the next one reads the disk
            c, t = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            f = lp.compile(model, example_args=args)
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - c, time.perf_counter() - t
            stats = f.stats.__self__._result()   # (not f.stats(): it would rebuild the plan)
            if not stats.cached or "cache_load" not in stats.times:
                raise SystemExit(f"{w.id}: a warm compile did not come from the disk cache")
            runs.append({"cpu": cpu, "wall": wall, **stats.times})
            del f, stats
        if profiler:
            import pstats
            print(f"{w.id}: {opts.repeat} warm compiles")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(opts.profile)
            continue
        rows.append([w.id] + [f"{1000 * statistics.median(r[k] for r in runs):.1f}"
                              for k in ("cpu", "wall", *STAGES)])
    if rows:
        header = ["workload", "cpu ms", "wall ms", *STAGES]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
