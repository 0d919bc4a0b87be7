"""The cost of checking indices in compiled code (API.md: "indices are data"), on an
embedding-heavy model: an Embedding(50000, 256) lookup of 8192 token ids followed by a small
Linear(256, 32), one thread. The same model is built twice, with `lp.take` (which checks its
indices) and with a bare IR `take` (no check op, the pre-check graph); both are timed in
alternating rounds so load from other users of the machine falls on both alike.

    python benchmarks/index_checks.py [--rounds 30] [--calls 20]

Prints the median time of one call of each, the checks' cost in percent (goal: under 5%), and
the checked model's time per kernel (the check is its own kernel).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("LEPTON_NUM_THREADS", "1")  # before lepton reads its config

import numpy as np  # noqa: E402

import lepton as lp  # noqa: E402
from lepton.frontends.tensor import emit, lift  # noqa: E402
from llvmlite import binding as llvm  # noqa: E402

VOCAB, DIM, TOKENS, OUT = 50000, 256, 8192, 32


def checked(table, ids, w, b):
    return lp.take(table, ids, axis=0) @ w + b


def unchecked(table, ids, w, b):
    return emit("take", [lift(table), ids], axis=0) @ w + b  # no check_index before the gather


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=20, help="calls per round and variant")
    opts = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((VOCAB, DIM)).astype(np.float32),
            rng.integers(-VOCAB, VOCAB, TOKENS),
            rng.standard_normal((DIM, OUT)).astype(np.float32) / 16,
            rng.standard_normal(OUT).astype(np.float32))
    fns = {"checked": lp.compile(checked, example_args=args),
           "unchecked": lp.compile(unchecked, example_args=args)}
    assert "check_index" in fns["checked"].ir() and "check_index" not in fns["unchecked"].ir()
    want = np.take(args[0], args[1], axis=0) @ args[2] + args[3]
    for f in fns.values():
        np.testing.assert_allclose(f(*args), want, rtol=1e-4, atol=1e-4)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(opts.rounds):
        for name, f in fns.items():
            for _ in range(opts.calls):
                t = time.perf_counter()
                f(*args)
                times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    cost = med["checked"] / med["unchecked"] - 1
    print(f"CPU {llvm.get_host_cpu_name()} (LLVM's name), "
          f"LEPTON_NUM_THREADS={os.environ['LEPTON_NUM_THREADS']}, "
          f"{opts.rounds} x {opts.calls} calls each")
    print(f"Embedding({VOCAB}, {DIM}) of {TOKENS} ids + Linear({DIM}, {OUT})")
    for k, v in med.items():
        print(f"  {k:9s} median {v:.3f} ms")
    print(f"  cost of the checks: {cost * 100:+.2f}% (goal: under 5%)")
    for k in fns["checked"].profile(*args, repeat=opts.rounds * opts.calls // 4):
        print(f"    kernel {k.name:32s} {k.us:9.1f} us {k.share:6.1%}")
    return 0 if cost < 0.05 else 1


if __name__ == "__main__":
    raise SystemExit(main())
