"""Speed-up from one to two threads (BENCHMARKS.md asks >= 1.7x on W2, W5 and W7), for Lepton and,
as a yardstick of what this machine allows right now, NumPy (OpenBLAS).

    python benchmarks/threads.py [--only W2,W5,W7] [--quick]

Four workers (NumPy and Lepton, each with 1 and 2 threads) take turns on each workload, so load
from other users of the machine falls on all four alike. "Threads" means the worker is pinned to
that many CPUs and its *_NUM_THREADS and LEPTON_NUM_THREADS variables say that number: a speed-up
near 1.0 means the framework did not use the second CPU.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from lepton.bench import select
from lepton.bench.report import columns, fmt_time
from lepton.bench.supervisor import WorkerProcess


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="W2,W5,W7")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    opts = ap.parse_args(argv)
    workloads = select(opts.only)
    frameworks = ("NumPy", "Lepton")
    with tempfile.TemporaryDirectory(prefix="lepton-threads-") as tmp:
        refs = Path(tmp) / "refs"
        refs.mkdir()
        for w in workloads:
            np.save(refs / f"{w.id}.npy", w.reference(*w.make_inputs()))
        workers = {(f, t): WorkerProcess(f, Path(tmp), opts.quick, refs, threads=t)
                   for f in frameworks for t in (1, 2)}
        try:
            table = {}
            for w in workloads:
                for key, worker in workers.items():
                    table[w.id, key] = worker.run(w.id, opts.timeout)
        finally:
            for worker in workers.values():
                worker.close()
    header = ["workload"]
    for f in frameworks:
        header += [f"{f} 1T ms", f"{f} 2T ms", f"{f} speed-up"]
    rows = []
    for w in workloads:
        row = [w.id]
        for f in frameworks:
            one, two = table[w.id, (f, 1)], table[w.id, (f, 2)]
            cells = [fmt_time(r.ms) if r.status == "ok" else r.status.upper()
                     for r in (one, two)]
            speed = (f"{one.ms / two.ms:.2f}x" if one.status == two.status == "ok" else "-")
            row += [*cells, speed]
        rows.append(row)
    print(columns(header, rows))
    for (wid, key), r in table.items():
        if r.status != "ok":
            print(f"{wid} {key[0]} {key[1]}T: {r.status}: {r.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
