"""File-to-first-result time of the ONNX models in the tests (issue 8's goal: <= 0.5 s cold).

Writes each model to a temporary .onnx file: the PyTorch-exported ones of
tests/torch_onnx_models.py (legacy exporter, opset 17) and the benchmark workloads W7/W8 built
by lepton.bench.onnx_graphs. Then, per model and repeat, a fresh Python process with
LEPTON_CACHE=0 imports lepton and onnx (timed apart), and times `lp.from_onnx(path)` plus the
first call: wall and CPU seconds (CPU is the steadier number on a loaded machine), and
lp.compile's phases (trace, passes, lower = LLVM IR emission, llvm = LLVM optimisation and
machine code). Prints a Markdown table of the medians.

    PYTHONPATH=$PWD python tools/onnx_load_time.py [--repeat 3] [--routines] [model ...]

--routines: a known host instead: the disk cache holds the shared GEMM routines (compiled by an
earlier process, as on any machine that has compiled a model before), nothing of the model.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import numpy as np, onnx, lepton as lp
t1, c1 = time.perf_counter(), time.process_time()
xs = list(np.load(sys.argv[1] + ".npz").values())
t2, c2 = time.perf_counter(), time.process_time()
f = lp.from_onnx(sys.argv[1] + ".onnx")
f(*xs)
t3, c3 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "import_cpu": c1 - c0, "wall": t3 - t2, "cpu": c3 - c2,
                  **f.stats()["compile_seconds"], "kernels": f.stats()["kernels"]}))
"""


def write_models(folder: str, names: list[str] | None) -> list[str]:
    import numpy as np
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    written = []
    try:
        import torch_onnx_models as tm
        for name in tm.MODELS:
            if names and name not in names:
                continue
            data, xs, _ = tm.export(name, 17)
            _save(folder, name, data, xs)
            written.append(name)
    except ImportError as e:
        print(f"(no PyTorch-exported models: {e})", file=sys.stderr)
    from lepton.bench.onnx_graphs import build
    from lepton.bench.workloads import WORKLOADS
    for wid in ("W7", "W8"):
        if names and wid not in names:
            continue
        w = WORKLOADS[wid]
        args = w.make_inputs()
        _save(folder, wid, build(w, args).SerializeToString(), [np.asarray(a) for a in args])
        written.append(wid)
    return written


def _save(folder, name, data, xs):
    import numpy as np
    with open(os.path.join(folder, name + ".onnx"), "wb") as f:
        f.write(data)
    np.savez(os.path.join(folder, name + ".npz"), *xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--routines", action="store_true",
                    help="the GEMM routines cached on disk by an earlier process (a known host)")
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache = os.path.join(folder, "cache")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   **({"LEPTON_CACHE_DIR": cache} if a.routines else {"LEPTON_CACHE": "0"}))
        names = write_models(folder, a.models)
        runs = {n: [] for n in names}

        def run(n):
            out = subprocess.run([sys.executable, "-c", CHILD, os.path.join(folder, n)],
                                 env=env, capture_output=True, text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])
        if a.routines:
            for n in names:                # an earlier process compiled each model
                run(n)
        for _ in range(a.repeat):          # interleaved, so load changes hit every model
            for n in names:
                if a.routines:             # forget all but the routines and the vector width
                    for f in os.scandir(cache):
                        if f.name not in ("routines", "vector_width.json"):
                            shutil.rmtree(f.path) if f.is_dir() else os.unlink(f.path)
                runs[n].append(run(n))
    cols = ["wall", "cpu", "trace", "passes", "lower", "llvm", "import", "import_cpu"]
    print(f"medians of {a.repeat} fresh processes, " + (
        "the shared GEMM routines cached" if a.routines else "LEPTON_CACHE=0") + "; seconds\n")
    print("| model | kernels | " + " | ".join(cols) + " |")
    print("|---|---:|" + "---:|" * len(cols))
    for n, rs in runs.items():
        med = [statistics.median(r.get(c, 0.0) for r in rs) for c in cols]
        print(f"| {n} | {rs[0]['kernels']} | " + " | ".join(f"{v:.2f}" for v in med) + " |")


if __name__ == "__main__":
    main()
