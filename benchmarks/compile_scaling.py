"""Cold compile time against model depth, side by side with jax.jit when it is installed.

    python benchmarks/compile_scaling.py                    # blocks 1 4 16 32, LSTM 10 and 1000 steps
    python benchmarks/compile_scaling.py --blocks 1 4 --steps 10 --plot scaling.png

Each number is one fresh process (kernels on one thread, no disk cache: `LEPTON_CACHE=0`; LLVM
on `LEPTON_COMPILE_THREADS` threads, by default every CPU, as XLA may use them too; set it to 1
for a compile on one core), timing the
first call of the compiled function: trace, passes, lowering, LLVM and one run; for JAX the
first call of `jax.jit` (tracing, XLA compile, one run). The models:
- a stack of N identical pre-LayerNorm MLP blocks (d 64, batch 32), `sum(x * x)` of the output:
  "fwd" compiles the function, "grad" its gradient with respect to every block's parameters;
- an LSTM (input 32, hidden 64, batch 16) over T steps through `lp.scan` / `jax.lax.scan`,
  value and gradient of a loss on the last hidden state.
Goals (issue 8): 16-block fwd and 32-block grad no slower than jax.jit; 32 blocks at most 2x the
time of 4; 1000 LSTM steps at most 1.5x the time of 10.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

D, BATCH = 64, 32
LSTM_IN, LSTM_HIDDEN, LSTM_BATCH = 32, 64, 16


def _params(np, n: int):
    r = np.random.default_rng(0)
    return [dict(g=np.ones(D, np.float32), b=np.zeros(D, np.float32),
                 w1=(r.standard_normal((D, 4 * D)) * .05).astype(np.float32),
                 b1=np.zeros(4 * D, np.float32),
                 w2=(r.standard_normal((4 * D, D)) * .05).astype(np.float32)) for _ in range(n)]


def _lstm_inputs(np, steps: int):
    r = np.random.default_rng(0)
    h = LSTM_HIDDEN
    p = dict(wx=(r.standard_normal((LSTM_IN, 4 * h)) * .1).astype(np.float32),
             wh=(r.standard_normal((h, 4 * h)) * .1).astype(np.float32),
             b=np.zeros(4 * h, np.float32))
    xs = r.standard_normal((steps, LSTM_BATCH, LSTM_IN)).astype(np.float32)
    return p, xs


def _stack(ops, gelu):
    """The block stack written once against a NumPy-like namespace (lepton or jax.numpy)."""
    def layer_norm(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / ops.sqrt(var + 1e-5) * g + b

    def model(x, ps):
        for p in ps:
            h = layer_norm(x, p["g"], p["b"])
            x = x + gelu(h @ p["w1"] + p["b1"]) @ p["w2"]
        return ops.sum(x * x)
    return model


def _lstm(ops, sigmoid, scan):
    def loss(p, xs):
        h = LSTM_HIDDEN

        def cell(carry, x):
            hh, c = carry
            z = x @ p["wx"] + hh @ p["wh"] + p["b"]
            i, f = sigmoid(z[:, :h]), sigmoid(z[:, h:2 * h])
            g, o = ops.tanh(z[:, 2 * h:3 * h]), sigmoid(z[:, 3 * h:])
            c = f * c + i * g
            hh = o * ops.tanh(c)
            return (hh, c), hh

        zeros = ops.zeros((LSTM_BATCH, h), dtype=ops.float32)
        (hh, _), _ = scan(cell, (zeros, zeros), xs)
        return ops.sum(hh * hh)
    return loss


def run_lepton(kind: str, n: int) -> float:
    os.environ["LEPTON_CACHE"] = "0"
    os.environ["LEPTON_NUM_THREADS"] = "1"
    import time
    import numpy as np
    import lepton as lp
    if kind == "lstm":
        if not hasattr(lp, "scan"):
            raise SystemExit("lepton has no lp.scan yet")
        loss = _lstm(lp, lp.sigmoid, lp.scan)
        f, args = lp.compile(lp.value_and_grad(loss)), _lstm_inputs(np, n)
    else:
        model = _stack(lp, lp.gelu)
        f = lp.compile(model if kind == "fwd" else lp.grad(model, argnums=1))
        args = (np.random.default_rng(1).random((BATCH, D)).astype(np.float32), _params(np, n))
    t = time.perf_counter()
    f(*args)
    return time.perf_counter() - t


def run_jax(kind: str, n: int) -> float:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                          "intra_op_parallelism_threads=1")
    os.environ["JAX_PLATFORMS"] = "cpu"
    import time
    import numpy as np
    import jax
    import jax.numpy as jnp
    if kind == "lstm":
        loss = _lstm(jnp, jax.nn.sigmoid, jax.lax.scan)
        f, args = jax.jit(jax.value_and_grad(loss)), _lstm_inputs(np, n)
    else:
        model = _stack(jnp, lambda v: jax.nn.gelu(v, approximate=False))
        f = jax.jit(model if kind == "fwd" else jax.grad(model, argnums=1))
        args = (np.random.default_rng(1).random((BATCH, D)).astype(np.float32), _params(np, n))
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - t


def measure(peer: str, kind: str, n: int) -> float | None:
    """One fresh process; None when the peer is missing or fails."""
    out = subprocess.run([sys.executable, __file__, "--one", peer, kind, str(n)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return None
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, nargs="*", default=[1, 4, 16, 32])
    ap.add_argument("--steps", type=int, nargs="*", default=[10, 1000])
    ap.add_argument("--no-jax", action="store_true", help="measure Lepton only")
    ap.add_argument("--plot", metavar="FILE.png", help="draw the table (needs matplotlib)")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        peer, kind, n = a.one
        print(f"{(run_lepton if peer == 'lepton' else run_jax)(kind, int(n)):.4f}")
        return
    rows = [(k, n) for k in ("fwd", "grad") for n in a.blocks] + [("lstm", t) for t in a.steps]
    print(f"(Lepton's LLVM on {os.environ.get('LEPTON_COMPILE_THREADS') or 'all the'} "
          f"compile thread(s))")
    print(f"{'model':<12}{'lepton s':>10}{'jax s':>10}{'ratio':>8}")
    results = []
    for kind, n in rows:
        lep = measure("lepton", kind, n)
        jx = None if a.no_jax else measure("jax", kind, n)
        results.append((kind, n, lep, jx))
        label = f"{kind} {n}" + (" steps" if kind == "lstm" else " blocks")
        cells = [f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in (lep, jx)]
        ratio = f"{lep / jx:8.2f}" if lep and jx else f"{'-':>8}"
        print(f"{label:<12}{cells[0]}{cells[1]}{ratio}", flush=True)
    if a.plot:
        _plot(results, a.plot)


def _plot(results, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, kind in zip(axes, ("fwd", "grad", "lstm")):
        pts = [(n, lep, jx) for k, n, lep, jx in results if k == kind]
        for col, name in ((1, "lepton"), (2, "jax.jit")):
            xy = [(p[0], p[col]) for p in pts if p[col] is not None]
            if xy:
                ax.plot(*zip(*xy), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_title(kind)
        ax.set_xlabel("steps" if kind == "lstm" else "blocks")
        ax.set_ylabel("cold compile + first call (s)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
