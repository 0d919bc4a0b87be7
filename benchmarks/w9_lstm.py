"""W9 (BENCHMARKS.md): one LSTM training step, 1 layer, input 128, hidden 256, 64 steps, batch 32,
x (T, B, I), PyTorch's gate order (i, f, g, o) and layouts, the input projection as one GEMM
before the loop, a linear head to 10 classes on the last hidden state, cross-entropy, SGD with
lr 0.1 on every parameter; the time loop is `lp.scan` (jax: `lax.scan`; torch: a Python loop).

    python benchmarks/w9_lstm.py [--repeat 20]

One thread each. Prints the median milliseconds per step and, for the compilers, the cold
compile time (first call, LEPTON_CACHE=0), and checks that every peer's loss and updated
parameters agree with Lepton's.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("LEPTON_CACHE", "0")
os.environ.setdefault("LEPTON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false "
                      "intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

T, B, I, H, C, LR = 64, 32, 128, 256, 10, 0.1


def inputs():
    r = np.random.default_rng(0)
    s = 1 / np.sqrt(H)
    p = {"w_ih": r.uniform(-s, s, (4 * H, I)), "w_hh": r.uniform(-s, s, (4 * H, H)),
         "b": r.uniform(-s, s, 4 * H), "w_out": r.uniform(-s, s, (C, H)),
         "b_out": r.uniform(-s, s, C)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    return p, r.standard_normal((T, B, I)).astype(np.float32), r.integers(0, C, B)


def lstm_loss(ops, scan, sigmoid, cross_entropy):
    """The loss written once against a NumPy-like namespace (lepton or jax.numpy)."""
    def loss(p, x, y):
        xp = (x.reshape(T * B, I) @ p["w_ih"].T + p["b"]).reshape(T, B, 4 * H)

        def cell(carry, z):
            h, c = carry
            z = z + h @ p["w_hh"].T
            i, f = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H])
            g, o = ops.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
            c = f * c + i * g
            return (o * ops.tanh(c), c), None
        zeros = ops.zeros((B, H), dtype=ops.float32)
        (h, _), _ = scan(cell, (zeros, zeros), xp)
        return cross_entropy(h @ p["w_out"].T + p["b_out"], y)
    return loss


def lepton_step():
    import lepton as lp
    loss = lstm_loss(lp, lp.scan, lp.sigmoid, lp.cross_entropy)

    def step(p, x, y):
        value, g = lp.value_and_grad(loss)(p, x, y)
        return value, {k: p[k] - LR * g[k] for k in p}
    return lp.compile(step)


def jax_step():
    import jax
    import jax.numpy as jnp

    def ce(logits, y):
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(B), y])
    loss = lstm_loss(jnp, jax.lax.scan, jax.nn.sigmoid, ce)

    @jax.jit
    def step(p, x, y):
        value, g = jax.value_and_grad(loss)(p, x, y)
        return value, {k: p[k] - LR * g[k] for k in p}
    return lambda p, x, y: jax.block_until_ready(step(p, x, y))


def torch_step():
    import torch
    torch.set_num_threads(1)

    def step(p, x, y):
        p = {k: torch.from_numpy(v).requires_grad_() for k, v in p.items()}
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        xp = (x.reshape(T * B, I) @ p["w_ih"].T + p["b"]).reshape(T, B, 4 * H)
        h = c = torch.zeros(B, H)
        for t in range(T):
            i, f, g, o = (xp[t] + h @ p["w_hh"].T).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        value = torch.nn.functional.cross_entropy(h @ p["w_out"].T + p["b_out"], y)
        value.backward()
        with torch.no_grad():
            return value.numpy(), {k: (v - LR * v.grad).numpy() for k, v in p.items()}
    return step


def measure(make, args, repeat: int):
    t = time.perf_counter()
    fn = make()
    first = fn(*args)
    cold = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, cold, first


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args(argv)
    args = inputs()
    rows, ref = [], None
    for name, make in (("lepton", lepton_step), ("jax.jit", jax_step),
                       ("torch eager", torch_step)):
        try:
            ms, cold, (value, new) = measure(make, args, a.repeat)
        except ImportError as e:
            print(f"{name}: not installed ({e})")
            continue
        if ref is None:
            ref = (value, new)
        else:  # every peer computes the same step
            np.testing.assert_allclose(value, ref[0], rtol=1e-3)
            for k in new:
                np.testing.assert_allclose(np.asarray(new[k]), ref[1][k], rtol=1e-3, atol=1e-5)
        rows.append((name, ms, cold))
    best = min(ms for n, ms, _ in rows if n != "lepton") if len(rows) > 1 else None
    print(f"{'W9 LSTM step':<14}{'median ms':>11}{'cold s':>9}{'vs fastest peer':>17}")
    for name, ms, cold in rows:
        ratio = f"{ms / best:.2f}x" if best and name == "lepton" else ""
        print(f"{name:<14}{ms:11.2f}{cold:9.2f}{ratio:>17}")


if __name__ == "__main__":
    main()
