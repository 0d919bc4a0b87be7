"""Lepton's compile time per workload, cold (a fresh process per workload and an empty disk
cache, so the first `lp.compile` also pays for setting LLVM up), again (a second `lp.compile`
of the same model in that process) and fresh (the first `lp.compile` in the next fresh process:
from the disk cache), with the cold compile split into its stages as `f.stats()` reports them.

    python benchmarks/compile_times.py [--only W2,W8,W10] [--routines | --after W8]

    workload  cold s  again s  cpu s  fresh s  cpu s  trace  passes  lower  llvm   kernels
    W8        2.541   0.012    0.010  0.030    0.012  0.015  0.015   0.176  2.292  16
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

STAGES = ("trace", "passes", "lower", "llvm")


def child(wid: str, fresh: bool = False) -> dict:
    """Runs in the fresh process: compile twice, report the times and the stage split. With
    `fresh` (a process after the one that filled the cache): one compile, from the disk."""
    import lepton as lp
    from lepton.bench import WORKLOADS
    model, args = WORKLOADS[wid].model, WORKLOADS[wid].make_inputs()
    t, c = time.perf_counter(), time.process_time()
    f = lp.compile(model, example_args=args)
    cold, cold_cpu = time.perf_counter() - t, time.process_time() - c
    if fresh:
        return {"fresh_s": cold, "fresh_cpu_s": cold_cpu}
    stats = f.stats()
    t, c = time.perf_counter(), time.process_time()
    lp.compile(model, example_args=args)
    again, again_cpu = time.perf_counter() - t, time.process_time() - c
    return {"id": wid, "cold_s": cold, "again_s": again, "again_cpu_s": again_cpu,
            "kernels": stats.get("kernels"),
            "stages": {k: v for k, v in stats.get("compile_seconds", {}).items()
                       if k in STAGES}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=None)
    ap.add_argument("--routines", action="store_true",
                    help="cold with the shared GEMM routines already cached on disk (built by "
                         "an earlier process), the model itself not: a known host")
    ap.add_argument("--after", default=None, metavar="WID",
                    help="cold after an earlier process compiled workload WID with the same "
                         "disk cache (e.g. --only W10 --after W8: a new model of known kernels)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.child:
        print(json.dumps(child(opts.child.split(":")[0], opts.child.endswith(":fresh"))))
        return 0
    from lepton.bench import select
    env = {**os.environ, "LEPTON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "LEPTON_CACHE": "1"}
    header = ["workload", "cold s", "again s", "cpu s", "fresh s", "cpu s", *STAGES, "kernels"]
    table = []
    ids = [w.id for w in select(None)]
    if opts.only:
        ids = [i for i in ids if i in opts.only.split(",")]
    for wid in ids:
        with tempfile.TemporaryDirectory() as cache:    # cold: nothing cached yet
            if opts.routines or opts.after:   # an earlier process compiles a model
                subprocess.run([sys.executable, __file__, "--child", opts.after or wid],
                               capture_output=True, env={**env, "LEPTON_CACHE_DIR": cache},
                               timeout=600)
            if opts.routines:   # forget all but the routines (and the host's vector width)
                for f in os.scandir(cache):
                    if f.name not in ("routines", "vector_width.json"):
                        shutil.rmtree(f.path) if f.is_dir() else os.unlink(f.path)
            runs = [subprocess.run([sys.executable, __file__, "--child", wid + tag],
                                   capture_output=True, text=True,
                                   env={**env, "LEPTON_CACHE_DIR": cache}, timeout=600)
                    for tag in ("", ":fresh")]
        bad = next((p for p in runs if p.returncode != 0), None)
        if bad is not None:
            last = (bad.stderr.strip().splitlines() or ["?"])[-1]
            table.append([wid, "ERROR: " + last[:100]])
            continue
        r = {k: v for p in runs for k, v in json.loads(p.stdout.strip().splitlines()[-1]).items()}
        table.append([wid, f"{r['cold_s']:.3f}", f"{r['again_s']:.3f}",
                      f"{r['again_cpu_s']:.3f}", f"{r['fresh_s']:.3f}", f"{r['fresh_cpu_s']:.3f}",
                      *(f"{r['stages'].get(s, float('nan')):.3f}" for s in STAGES),
                      str(r["kernels"])])
    widths = [max(len(row[i]) for row in [header, *table] if i < len(row))
              for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(c.ljust(wd) for c, wd in zip(row, widths)).rstrip())
    print("\ncold: first lp.compile in a fresh process (trace, passes, lowering, LLVM, JIT); "
          "again: a second lp.compile of the same model in that process (the code it loaded); "
          "fresh: lp.compile in the next fresh process (from the disk cache: a script's second "
          "run); cpu: the process's CPU seconds for the column before (robust to a busy machine)")
    print("disk cache before the cold compile: " + (
        f"what a process compiling {opts.after} left" if opts.after and not opts.routines else
        "the shared GEMM routines only" if opts.routines else "empty (first compile on a host)"))
    from lepton.config import current
    print(f"LLVM on {current().compile_threads} compile thread(s) (LEPTON_COMPILE_THREADS); "
          "the compiled code on one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
