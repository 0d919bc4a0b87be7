"""BatchNorm1d and BatchNorm2d, as PyTorch's: batch statistics and running-statistics updates in
training mode, running statistics in eval mode.

The running statistics are buffers (`Module.register_buffer`), so optimisers do not train them
and `state_dict()` holds them under PyTorch's keys. In training mode the forward writes their new
values with `Module._assign`: every call of the compiled function (an inference function or an
optimiser's training step) ends by updating them in place.
"""
from __future__ import annotations

import numpy as np

from ..frontends import nn_ops
from ..frontends.ops import add, divide
from ..frontends.tensor import lift
from ..ir.types import float32
from .init import _positive_int
from .module import Module


class _BatchNorm(Module):
    """The shared part; a subclass names the input ranks it takes (`_ranks`)."""

    _ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *, bias: bool = True):
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(num_features, f"{name} num_features")
        self.eps = float(eps)
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{name} momentum must lie in [0, 1] or be None, got {momentum!r}")
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        c = self.num_features
        self.weight = np.ones(c, np.float32) if affine else None
        self.bias = np.zeros(c, np.float32) if affine and bias else None
        tracked = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(c, np.float32) if tracked else None)
        self.register_buffer("running_var", np.ones(c, np.float32) if tracked else None)
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64) if tracked else None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked (in place)."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        ndim = len(x.shape)
        if ndim not in self._ranks:
            want = " or ".join(f"{r}D" for r in self._ranks)
            raise ValueError(f"{type(self).__name__} expected {want} input (got {ndim}D input "
                             f"of shape {tuple(x.shape)})")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}) got an input with "
                             f"{x.shape[1]} channels (shape {tuple(x.shape)})")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            count = add(self.num_batches_tracked, 1)
            self._assign("num_batches_tracked", count)
            if self.momentum is None:  # cumulative moving average, as PyTorch
                momentum = divide(1.0, lift(count, float32))
        # Batch statistics in training mode, and in eval mode too without running statistics
        # (then running_mean is None: nothing to update).
        return nn_ops.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                 training=self.training or self.running_mean is None,
                                 momentum=momentum, eps=self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over every axis but C, as
    torch.nn.BatchNorm1d(num_features, eps=1e-5, momentum=0.1, affine=True,
    track_running_stats=True, *, bias=True). Parameters weight (ones) and bias (zeros; none
    with affine=False or bias=False), buffers running_mean (zeros), running_var (ones),
    num_batches_tracked (int64 0-d; none of them with track_running_stats=False).
    momentum=None averages the batches cumulatively."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs over N, H and W, as torch.nn.BatchNorm2d (the
    arguments, parameters and buffers of BatchNorm1d)."""

    _ranks = (4,)
