"""A convolutional autoencoder on scikit-learn's 8x8 handwritten digits, trained with Lepton.

    pip install -e ".[examples]"        # scikit-learn; the data set ships inside it
    python examples/autoencoder.py [--epochs 30] [--batch 64] [--latent 16] [--seed 0]

The encoder downsamples with strided Conv2d layers to a 16-number code; the decoder grows the
image back with a ConvTranspose2d (2x2 -> 4x4) and an Upsample (bilinear, 4x4 -> 8x8). Adam
minimises the pixel MSE; each step (forward, backward, update) is one compiled graph. Prints
the test reconstruction MSE per epoch next to the baseline of always answering the mean
training image, and the time taken (compilation included).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import lepton as lp

try:
    from sklearn.datasets import load_digits
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("this example needs scikit-learn: pip install -e '.[examples]'")


class AutoEncoder(lp.nn.Module):
    def __init__(self, latent: int = 16):
        super().__init__()
        self.encoder = lp.nn.Sequential(
            lp.nn.Conv2d(1, 16, 3, stride=2, padding=1), lp.nn.ReLU(),    # 16x4x4
            lp.nn.Conv2d(16, 32, 3, stride=2, padding=1), lp.nn.ReLU(),   # 32x2x2
            lp.nn.Flatten(), lp.nn.Linear(32 * 2 * 2, latent))
        self.expand = lp.nn.Linear(latent, 32 * 2 * 2)
        self.decoder = lp.nn.Sequential(
            lp.nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), lp.nn.ReLU(),   # 16x4x4
            lp.nn.Upsample(scale_factor=2, mode="bilinear"),                      # 16x8x8
            lp.nn.Conv2d(16, 1, 3, padding=1), lp.nn.Sigmoid())                   # 1x8x8

    def __call__(self, x):                       # x: (N, 1, 8, 8) in [0, 1]
        h = lp.relu(self.expand(self.encoder(x)))
        return self.decoder(h.reshape(x.shape[0], 32, 2, 2))


def loss_fn(model, x):
    return lp.mean(lp.square(model(x) - x))


def load(seed: int, test_fraction: float = 0.2):
    """The 1797 digits as f32 (N, 1, 8, 8) images in [0, 1], split by a seeded permutation."""
    x = (load_digits().images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    return x[order[n_test:]], x[order[:n_test]]


def train(model, x_train, x_test, epochs: int, batch: int, lr: float, seed: int):
    """Adam on shuffled mini-batches of one fixed size; returns (test MSE, mean-image baseline
    MSE, seconds)."""
    opt = lp.optim.Adam(lr)
    reconstruct = lp.compile(model)
    baseline = float(np.mean((x_test - x_train.mean(axis=0)) ** 2))
    rng = np.random.default_rng(seed)
    print(f"autoencoder: {model.num_parameters()} parameters; mean-image baseline test MSE "
          f"{baseline:.5f}")
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        losses = [opt.step(model, loss_fn, x_train[order[i:i + batch]])
                  for i in range(0, len(order) - batch + 1, batch)]
        mse = float(np.mean((reconstruct(x_test) - x_test) ** 2))
        print(f"  epoch {epoch:2d}/{epochs}  train MSE {np.mean(losses):.5f}  test MSE "
              f"{mse:.5f}  ({mse / baseline:.2f} of the baseline)", flush=True)
    seconds = time.perf_counter() - start
    print(f"test MSE {mse:.5f} vs mean-image baseline {baseline:.5f} "
          f"({mse / baseline:.2f}x) in {seconds:.1f} s", flush=True)
    return mse, baseline, seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    x_train, x_test = load(args.seed)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8")
    lp.nn.manual_seed(args.seed)
    train(AutoEncoder(args.latent), x_train, x_test, args.epochs, args.batch, args.lr, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
