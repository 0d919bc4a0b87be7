"""A convnet with batch normalisation on scikit-learn's 8x8 handwritten digits, trained with Adam.

    pip install -e ".[examples]"        # scikit-learn; the data set ships inside it
    python examples/cnn_digits.py [--epochs 10] [--batch 64] [--seed 0]

The model trains in training mode, with Adam and a cosine learning-rate decay: each BatchNorm2d
normalises with the batch's statistics, and the compiled training step (forward, backward,
Adam's update) also updates its running statistics. It is tested in eval mode, where BatchNorm
uses the running statistics (and Dropout, when lp.nn has it, passes its input through). Prints a
line per epoch, then the test accuracy and the wall time (compilation included).
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import lepton as lp
from train_digits import accuracy, load  # the data split and metric of the MLP example


def conv_block(c_in: int, c_out: int) -> list:
    """3x3 convolution (no bias: BatchNorm's shift replaces it), BatchNorm2d, ReLU."""
    return [lp.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), lp.nn.BatchNorm2d(c_out),
            lp.nn.ReLU()]


class DigitsCNN(lp.nn.Module):
    def __init__(self):
        super().__init__()
        # Dropout before the classifier when this Lepton has it; the model is complete without.
        dropout = [lp.nn.Dropout(0.25)] if hasattr(lp.nn, "Dropout") else []
        self.features = lp.nn.Sequential(
            *conv_block(1, 16), *conv_block(16, 32), lp.nn.MaxPool2d(2),     # 32 x 4 x 4
            *conv_block(32, 64), lp.nn.MaxPool2d(2),                         # 64 x 2 x 2
            lp.nn.Flatten(), *dropout)
        self.head = lp.nn.Linear(64 * 2 * 2, 10)

    def forward(self, x):                      # x: (N, 1, 8, 8)
        return self.head(self.features(x))


def loss_fn(model, x, y):
    return lp.cross_entropy(model(x), y)


def train(model, data, epochs: int = 10, batch: int = 64, lr: float = 3e-3,
          seed: int = 0) -> tuple[float, float]:
    """Adam with a cosine learning-rate decay on shuffled mini-batches of one fixed size (the
    step compiles once), then the test accuracy in eval mode. Returns (test accuracy, seconds)."""
    x_train, y_train, x_test, y_test = data
    opt = lp.optim.Adam(lr)
    predict = lp.compile(model)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        # cosine decay: lr is an input of the compiled step, so this does not recompile
        opt.lr = lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))
        model.train()
        order = rng.permutation(len(y_train))
        losses = [opt.step(model, loss_fn, x_train[idx], y_train[idx])
                  for idx in (order[i:i + batch] for i in range(0, len(order) - batch + 1, batch))]
        model.eval()
        print(f"  epoch {epoch:2d}/{epochs}  loss {np.mean(losses):.4f}  test accuracy "
              f"{accuracy(predict, x_test, y_test):.4f}", flush=True)
    return accuracy(predict, x_test, y_test), time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    data = load(args.seed)
    lp.nn.manual_seed(args.seed)
    model = DigitsCNN()
    print(f"digits: {len(data[1])} training and {len(data[3])} test images; "
          f"{model.num_parameters()} parameters")
    acc, seconds = train(model, data, args.epochs, args.batch, seed=args.seed)
    print(f"test accuracy {acc * 100:.2f}%  time {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
