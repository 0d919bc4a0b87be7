"""`DataParallel(optimizer)`: one training step over the ranks of an MPI job.

    opt = dist.DataParallel(lp.optim.SGD(0.1, momentum=0.9))
    loss = opt.step(model, loss_fn, x_shard, y_shard)    # each rank its own shard of the batch

The first step of a model broadcasts rank 0's parameters, and its buffers when the module has
any (`model.buffers()`, e.g. BatchNorm's running statistics), so every rank starts from the
same point. Each step then runs the optimiser's step split at the gradients
(`Optimizer.step_reduced`): a compiled graph writes every gradient and the loss into one
contiguous NumPy array, ONE in-place `Allreduce` sums it over the ranks, it is divided by the
number of ranks, and a second compiled graph applies the update. All ranks apply the same
update to the same parameters, so they stay bit-identical. With a mean-reduced loss and shards
of equal size this is one process's step on the whole batch, up to float rounding.

BatchNorm running statistics are each rank's own, from its own shard (PyTorch DDP's default);
they are not averaged. In a job of one rank, `step` is the optimiser's own (one graph).
"""
from __future__ import annotations

import numpy as np

from ..nn import Module
from ..optim import Optimizer
from .comm import init, mpi


class DataParallel:
    """Wraps an `lp.optim` optimiser; `lr`, `state`, `steps` and the inspection methods are
    the wrapped optimiser's."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DataParallel wraps an lp.optim optimiser, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self._world = init()
        self._mpi = mpi()
        self._synced: Module | None = None  # the model whose arrays rank 0 broadcast

    def step(self, model: Module, loss_fn, *batch) -> float:
        """One step on this rank's shard `batch`; returns the loss averaged over the ranks."""
        if self._world.Get_size() == 1:
            return self.optimizer.step(model, loss_fn, *batch)
        if model is not self._synced:
            if not isinstance(model, Module):
                raise TypeError(f"DataParallel.step takes an lp.nn.Module first, got "
                                f"{type(model).__name__}")
            broadcast_state(self._world, model)
            self._synced = model
        return self.optimizer.step_reduced(model, loss_fn, batch, self._average)

    def _average(self, flat: np.ndarray) -> None:
        self._world.Allreduce(self._mpi.IN_PLACE, flat, op=self._mpi.SUM)
        flat *= flat.dtype.type(1.0 / self._world.Get_size())

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value) -> None:
        self.optimizer.lr = value

    def __getattr__(self, name):  # state, steps, num_graphs, ir(), stats()
        if name.startswith("_") or name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)


def broadcast_state(world, model: Module) -> None:
    """Copies rank 0's parameters and buffers into every rank's arrays, in place, after
    checking that every rank holds the same names, shapes and dtypes."""
    arrays = {**{f"parameter {k}": v for k, v in model.parameters().items()},
              **{f"buffer {k}": v for k, v in module_buffers(model).items()}}
    layout = [(k, a.shape, a.dtype.str) for k, a in arrays.items()]
    layouts = world.allgather(layout)
    for r, other in enumerate(layouts):
        if other != layouts[0]:  # every rank sees the same lists, so all of them raise
            diff = sorted(set(map(str, other)) ^ set(map(str, layouts[0])))[:4]
            raise ValueError(f"DataParallel: rank {r}'s {type(model).__name__} differs from "
                             f"rank 0's (names, shapes, dtypes; e.g. {diff})")
    for a in arrays.values():
        buf = np.ascontiguousarray(a)
        world.Bcast(buf, root=0)
        if buf is not a:
            np.copyto(a, buf)


def module_buffers(model: Module) -> dict[str, np.ndarray]:
    """name -> array of the module's buffers when it has a `buffers()` method (a dict, or
    arrays as PyTorch's iterator gives them), else {}."""
    get = getattr(model, "buffers", None)
    if not callable(get):
        return {}
    found = get()
    if hasattr(found, "items"):
        return dict(found)
    return {str(i): a for i, a in enumerate(found)}
