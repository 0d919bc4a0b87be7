"""Data-parallel training of an MLP on scikit-learn's 8x8 digits over MPI ranks.

    pip install -e ".[mpi,examples]"      # mpi4py + the mpich wheel (mpiexec); scikit-learn
    mpiexec -n 2 python examples/train_mpi.py [--epochs 20] [--batch 128] [--seed 0]
    srun -n 2 python examples/train_mpi.py                    # under Slurm
    python examples/train_mpi.py                              # one rank, no launcher

Every rank loads the data set and shuffles it with the same seed; each global batch of --batch
rows is cut into one shard per rank, and `dist.DataParallel` averages the gradients over the
ranks, so every rank holds the same parameters after every step. The test set is evaluated with
`dist.predict` (rows scattered over the ranks, predictions gathered on rank 0); rank 0 prints.
The model, the data and the loss are examples/train_digits.py's.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import lepton as lp
import lepton.distributed as dist
from train_digits import MLP, load, loss_fn  # beside this file: the model, the data, the loss


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128, help="global batch, over all ranks")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    dist.init()
    rank, size = dist.rank(), dist.size()
    if args.batch % size:
        raise SystemExit(f"--batch {args.batch} must be a multiple of the {size} ranks")
    shard = args.batch // size

    x_train, y_train, x_test, y_test = load(args.seed)  # the same split on every rank
    rng = np.random.default_rng(args.seed)

    lp.nn.manual_seed(args.seed + rank)  # rank 0's initial parameters are broadcast anyway
    model = MLP()
    opt = dist.DataParallel(lp.optim.SGD(0.1, momentum=0.9))
    if rank == 0:
        print(f"{size} rank(s), global batch {args.batch} ({shard} rows per rank), "
              f"{len(y_train)} training and {len(y_test)} test images", flush=True)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        perm = rng.permutation(len(y_train))  # the same on every rank: same seed, same calls
        losses = []
        for i in range(0, len(perm) - args.batch + 1, args.batch):
            mine = perm[i + rank * shard:i + (rank + 1) * shard]
            losses.append(opt.step(model, loss_fn, x_train[mine], y_train[mine]))
        if rank == 0 and (epoch % 5 == 0 or epoch == args.epochs):
            print(f"  epoch {epoch:2d}  loss {np.mean(losses):.4f}", flush=True)
    model.eval()
    logits = dist.predict(model, x_test if rank == 0 else None)
    if rank == 0:
        acc = float((logits.argmax(axis=1) == y_test).mean())
        print(f"test accuracy {acc:.4f} after {args.epochs} epochs in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
