"""256- against 512-bit vectors on an AVX-512 host: W3, W4 and W5 compiled with each width.

    python benchmarks/vector_width.py [--only W3,W4,W5] [--quick]

Two single-thread Lepton workers, one started with LEPTON_VECTOR_WIDTH=256 and one with 512
(fresh processes, each compiling its own code), take turns on each workload so load from other
users of the machine falls on both alike. The last line says which width this host's calibration
(lepton/tuning.py) picks. On a host without AVX-512 there is nothing to compare: the script says
so and exits 0.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from lepton import config
from lepton.bench import select
from lepton.bench.report import columns, fmt_time
from lepton.bench.supervisor import WorkerProcess
from lepton.runtime.jit import host_cpu
from lepton.runtime.vector_width import WIDTHS, has_avx512
from lepton.tuning import host_vector_width


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="W3,W4,W5")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=float, default=600)
    opts = ap.parse_args(argv)
    cpu, features = host_cpu()
    if not has_avx512(features):
        print(f"{cpu}: no AVX-512 (avx512f), so 256-bit vectors are the widest there are; "
              "nothing to compare.")
        return 0
    workloads = select(opts.only)
    with tempfile.TemporaryDirectory(prefix="lepton-width-") as tmp:
        refs = Path(tmp) / "refs"
        refs.mkdir()
        for w in workloads:
            np.save(refs / f"{w.id}.npy", w.reference(*w.make_inputs()))
        workers = {width: WorkerProcess("Lepton", Path(tmp), opts.quick, refs, threads=1,
                                        env={"LEPTON_VECTOR_WIDTH": str(width)})
                   for width in WIDTHS}
        try:
            table = {(w.id, width): worker.run(w.id, opts.timeout)
                     for w in workloads for width, worker in workers.items()}
        finally:
            for worker in workers.values():
                worker.close()
    header = ["workload", "256-bit ms", "512-bit ms", "256/512"]
    rows = []
    for w in workloads:
        a, b = table[w.id, 256], table[w.id, 512]
        cells = [fmt_time(r.ms) if r.status == "ok" else r.status.upper() for r in (a, b)]
        rows.append([w.id, *cells, f"{a.ms / b.ms:.2f}x" if a.status == b.status == "ok" else "-"])
    print(columns(header, rows))
    for (wid, width), r in table.items():
        if r.status != "ok":
            print(f"{wid} {width}-bit: {r.status}: {r.detail}")
    print(f"CPU {cpu}, one thread; the calibration picks "
          f"{host_vector_width(config.current())} bits on this host")
    return 0


if __name__ == "__main__":
    sys.exit(main())
