"""A GAN on a ring of 8 Gaussians in 2-D, written the PyTorch way with two Adam optimisers.

    python examples/gan_ring.py [--steps 2000] [--seed 0] [--png gan_ring.png]

The real data: 8 Gaussians (standard deviation 0.05) centred on a circle of radius 2. G maps
noise to points, D scores points (logits). Each step updates D on a real and a generated batch,
then G through D, which G's loss reads from its closure, as a PyTorch user writes it:

    opt_d.step(D, lambda D, x, z: bce(D(x), 1.0) + bce(D(G(z)), 0.0), real, z)
    opt_g.step(G, lambda G, z: bce(D(G(z)), 1.0), z)

(each step's graph reads the other network's current parameters at every call; it compiles once).
The metric: draw 2000 points from G, assign each to the nearest mode centre if it lies within
4 standard deviations of it, and count the modes that receive at least 2% of the points; also the
share of points that land near any mode ("quality"). Writes a PNG of real against generated
points when matplotlib is installed.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import lepton as lp

MODES, RADIUS, STD, NOISE = 8, 2.0, 0.05, 8


def centres() -> np.ndarray:
    a = np.arange(MODES) * (2 * np.pi / MODES)
    return (RADIUS * np.stack([np.cos(a), np.sin(a)], 1)).astype(np.float32)


def sample_real(rng: np.random.Generator, n: int) -> np.ndarray:
    c = centres()[rng.integers(0, MODES, n)]
    return (c + STD * rng.standard_normal((n, 2))).astype(np.float32)


def modes_covered(points: np.ndarray, within: float = 4 * STD,
                  share: float = 0.02) -> tuple[int, float]:
    """(modes holding at least `share` of the points, share of the points within `within` of
    their nearest centre)."""
    d = np.linalg.norm(points[:, None, :] - centres()[None], axis=-1)   # (n, 8)
    near = d.min(1) <= within
    counts = np.bincount(d.argmin(1)[near], minlength=MODES)
    return int((counts >= share * len(points)).sum()), float(near.mean())


class MLP(lp.nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = [lp.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = lp.maximum(x, 0.2 * x)   # leaky ReLU
        return x


def bce(logits, target: float):
    """Binary cross-entropy on logits, the batch mean (PyTorch's BCEWithLogitsLoss)."""
    return lp.mean(lp.maximum(logits, 0.0) - logits * target
                   + lp.log(1.0 + lp.exp(-lp.abs(logits))))


def train(steps: int = 2000, batch: int = 256, seed: int = 0, lr: float = 3e-4, log=print):
    """Trains G and D; returns (G, a function drawing n points from G)."""
    lp.nn.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = MLP([NOISE, 128, 128, 2]), MLP([2, 128, 128, 1])
    opt_g = lp.optim.Adam(lr, betas=(0.5, 0.999))
    opt_d = lp.optim.Adam(lr, betas=(0.5, 0.999))
    d_loss = lambda D, x, z: bce(D(x), 1.0) + bce(D(G(z)), 0.0)  # noqa: E731
    g_loss = lambda G, z: bce(D(G(z)), 1.0)                      # noqa: E731
    generate = lp.compile(G)
    noise = lambda n: rng.standard_normal((n, NOISE)).astype(np.float32)  # noqa: E731
    for step in range(1, steps + 1):
        ld = opt_d.step(D, d_loss, sample_real(rng, batch), noise(batch))
        lg = opt_g.step(G, g_loss, noise(batch))
        if log and (step % 500 == 0 or step == steps):
            covered, quality = modes_covered(generate(noise(2000)))
            log(f"step {step:5d}  loss D {ld:.3f}  G {lg:.3f}  modes {covered}/{MODES}  "
                f"quality {quality:.2f}")
    return G, lambda n: generate(noise(n))


def plot(real: np.ndarray, fake: np.ndarray, path: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(*real.T, s=4, alpha=0.4, label="real")
    ax.scatter(*fake.T, s=4, alpha=0.4, label="generated")
    ax.set_aspect("equal")
    ax.legend(loc="upper right")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png", default="gan_ring.png", help="where to write the plot ('' for none)")
    args = p.parse_args(argv)
    # The networks are small: one thread per kernel is as fast, and does not spin-wait on a
    # busy machine (set LEPTON_NUM_THREADS to override).
    os.environ.setdefault("LEPTON_NUM_THREADS", "1")
    t0, c0 = time.perf_counter(), time.process_time()
    _, draw = train(args.steps, seed=args.seed)
    fake = draw(2000)
    covered, quality = modes_covered(fake)
    print(f"modes covered: {covered}/{MODES}  quality: {quality:.2f}  "
          f"time: {time.perf_counter() - t0:.1f} s, CPU {time.process_time() - c0:.1f} s "
          f"(compiles included)")
    if args.png and plot(sample_real(np.random.default_rng(1), 2000), fake, args.png):
        print(f"wrote {args.png}")
    return 0 if covered >= 6 else 1


if __name__ == "__main__":
    raise SystemExit(main())
