"""Trains an MLP and a small convnet on scikit-learn's 8x8 handwritten digits with Lepton.

    pip install -e ".[examples]"        # scikit-learn; the data set ships inside it
    python examples/train_digits.py [--epochs 30] [--batch 64] [--seed 0] [--only mlp|cnn]

Each training step (forward, backward and the optimiser's update) is one compiled graph; the
learning rate follows a cosine schedule (it is an input of that graph); evaluation compiles the model for inference with lp.compile(model). Prints a line per epoch and
the final test accuracy and wall time of each model (compilation included).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import lepton as lp

try:
    from sklearn.datasets import load_digits
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("this example needs scikit-learn: pip install -e '.[examples]'")


class MLP(lp.nn.Module):
    def __init__(self, hidden: int = 256):
        super().__init__()
        self.fc1 = lp.nn.Linear(64, hidden)
        self.fc2 = lp.nn.Linear(hidden, 10)

    def __call__(self, x):                      # x: (N, 1, 8, 8)
        x = x.reshape(x.shape[0], 64)
        return self.fc2(lp.relu(self.fc1(x)))


class ConvNet(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = lp.nn.Sequential(
            lp.nn.Conv2d(1, 16, 3, padding=1), lp.nn.ReLU(), lp.nn.MaxPool2d(2),   # 16x4x4
            lp.nn.Conv2d(16, 32, 3, padding=1), lp.nn.ReLU(), lp.nn.MaxPool2d(2),  # 32x2x2
            lp.nn.Flatten())
        self.head = lp.nn.Linear(32 * 2 * 2, 10)

    def __call__(self, x):
        return self.head(self.features(x))


def loss_fn(model, x, y):
    return lp.cross_entropy(model(x), y)


def load(seed: int, test_fraction: float = 0.2):
    """The 1797 digits as f32 (N, 1, 8, 8) images scaled to [0, 1] and int64 labels, split into
    a training and a test set by a seeded permutation."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def accuracy(predict, x, y) -> float:
    return float((predict(x).argmax(axis=1) == y).mean())


def train(name, model, opt, data, epochs: int, batch: int, seed: int) -> tuple[float, float]:
    """Trains with shuffled mini-batches of one fixed size (the remainder of an epoch is left
    for the next shuffle), so the step compiles once. Returns (test accuracy, seconds)."""
    x_train, y_train, x_test, y_test = data
    predict = lp.compile(model)
    rng = np.random.default_rng(seed)
    print(f"{name}: {model.num_parameters()} parameters, {type(opt).__name__}(lr={opt.lr})")
    base_lr = opt.lr
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        # Cosine decay of the learning rate: lr is an input of the compiled step, so changing
        # it does not recompile.
        opt.lr = base_lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
        order = rng.permutation(len(y_train))
        losses = []
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i:i + batch]
            losses.append(opt.step(model, loss_fn, x_train[idx], y_train[idx]))
        acc = accuracy(predict, x_test, y_test)
        print(f"  epoch {epoch:2d}/{epochs}  loss {np.mean(losses):.4f}  test accuracy "
              f"{acc:.4f}  ({(time.perf_counter() - t0) * 1e3:.0f} ms"
              f"{', compiling included' if epoch == 1 else ''})", flush=True)
    seconds = time.perf_counter() - start
    acc = accuracy(predict, x_test, y_test)
    print(f"{name}: test accuracy {acc:.4f} in {seconds:.1f} s "
          f"(train accuracy {accuracy(predict, x_train, y_train):.4f})\n", flush=True)
    return acc, seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("mlp", "cnn"))
    args = ap.parse_args(argv)
    data = load(args.seed)
    print(f"digits: {len(data[1])} training and {len(data[3])} test images of 8x8\n")
    lp.nn.manual_seed(args.seed)
    results = {}
    if args.only in (None, "mlp"):
        results["MLP"] = train("MLP", MLP(), lp.optim.SGD(0.1, momentum=0.9), data,
                               args.epochs, args.batch, args.seed)
    if args.only in (None, "cnn"):
        results["ConvNet"] = train("ConvNet", ConvNet(), lp.optim.Adam(3e-3), data,
                                   args.epochs, args.batch, args.seed)
    for name, (acc, seconds) in results.items():
        print(f"{name:8s} test accuracy {acc * 100:.2f}%  time {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
