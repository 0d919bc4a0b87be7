"""Neural-network ops with PyTorch's conventions (NCHW images, (out, in/groups, kh, kw) weights).

softmax, log_softmax, gelu, layer_norm, batch_norm and cross_entropy are composites of IR
primitives (the IR has no softmax op); conv2d and the pools map to the IR ops of the same names.

    >>> p = softmax(logits, axis=-1)           # exp(x - max) / sum, stable for large logits
    >>> loss = cross_entropy(logits, labels)   # logits f32[N,C], labels i64[N] -> f32[]
    >>> y = conv2d(x, w, bias, stride=2, padding=1)
"""
from __future__ import annotations

import numpy as np

from ..ir.types import float32
from .ops import (_float, arange, exp, gelu, log, max_shift, mean, rsqrt,  # noqa: F401 (gelu)
                  square, sum, where)
from .shapes import checked_index
from .tensor import Tensor, assign, emit, fail, lift, lift_all, result_dtype

__all__ = ["softmax", "log_softmax", "gelu", "layer_norm", "batch_norm", "conv2d", "max_pool2d",
           "avg_pool2d", "cross_entropy"]


def softmax(x, axis=-1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, with the maximum subtracted first (an empty axis gives
    an empty result)."""
    x = _float(x)
    e = exp(x - max_shift(x, axis, "softmax"))
    return e / sum(e, axis, keepdims=True)


def log_softmax(x, axis=-1) -> Tensor:
    """x - logsumexp(x) along `axis`, computed as s - log(sum(exp(s))) with s = x - max(x) (an
    empty axis gives an empty result)."""
    x = _float(x)
    s = x - max_shift(x, axis, "log_softmax")
    return s - log(sum(exp(s), axis, keepdims=True))


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the last axis (biased variance, as PyTorch), then
    `* weight + bias` when given (shape (D,))."""
    x = _float(x)
    d = x - mean(x, -1, keepdims=True)
    y = d * rsqrt(mean(square(d), -1, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum=0.1, eps: float = 1e-5) -> Tensor:
    """torch.nn.functional.batch_norm: normalises x (N, C, ...) per channel (axis 1) and
    applies `* weight + bias` (shape (C,)) when given.

    training=False: with the running statistics (arrays or tensors of shape (C,)), which must
    be given. training=True: with the batch's mean and biased variance over every axis but 1
    (more than one value per channel needed); when running_mean / running_var are given (NumPy
    arrays, e.g. a module's buffers) each call of the compiled function also updates them in
    place, as PyTorch does: stat = (1 - momentum) * stat + momentum * batch_stat, with the
    unbiased batch variance for running_var. `momentum` may be a traced scalar (BatchNorm's
    cumulative average passes 1 / num_batches_tracked)."""
    x = _float(x)
    if x.ndim < 2:
        fail("batch_norm", f"x must be (N, C, ...), got {x.type}")
    c = x.shape[1]
    per_channel = (1, c) + (1,) * (x.ndim - 2)
    stats = {"running_mean": running_mean, "running_var": running_var}
    for name, v in (*stats.items(), ("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            fail("batch_norm", f"{name} must have shape ({c},) for x {x.type}, got "
                 f"{tuple(v.shape)}")
    if training:
        n = x.size // c
        if n <= 1:
            fail("batch_norm", f"expected more than 1 value per channel when training, got x "
                 f"{x.type}", ValueError)
        # Sums over the trailing axis first, (N, C, L) -> (N, C, 1), then over N: the fusion
        # partitioner fuses elementwise producers into trailing reductions only, so x - mu and
        # its square never reach memory.
        xr = x.reshape(x.shape[0], c, -1)
        mu = sum(sum(xr, -1, keepdims=True), 0, keepdims=True) / n
        var = sum(sum(square(xr - mu), -1, keepdims=True), 0, keepdims=True) / n
        for name, v in stats.items():
            if v is not None and not isinstance(v, np.ndarray):
                fail("batch_norm", f"{name} is updated in place when training: pass a NumPy "
                     f"array (or None), got {type(v).__name__}", TypeError)
        if running_mean is not None:
            assign(running_mean, (1.0 - momentum) * lift(running_mean)
                   + momentum * mu.reshape(c))
        if running_var is not None:
            assign(running_var, (1.0 - momentum) * lift(running_var)
                   + momentum * (var.reshape(c) * (n / (n - 1))))
        mu, var = mu.reshape(c), var.reshape(c)
    else:
        if running_mean is None or running_var is None:
            fail("batch_norm", "running_mean and running_var must be given when training=False")
        mu, var = lift(running_mean, x.dtype), lift(running_var, x.dtype)
    # A per-channel scale and shift first, so the output is one multiply-add per element (and
    # x - mu has one use, which lets it fuse into the variance's reduction).
    scale = rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -mu * scale
    if bias is not None:
        shift = shift + bias
    return x * scale.reshape(per_channel) + shift.reshape(per_channel)


def _pair(v, name: str, op: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(
            isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v):
        return int(v[0]), int(v[1])
    fail(op, f"{name} must be an int or a pair of ints, got {v!r}", TypeError)


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-d convolution (cross-correlation) of x (N, C, H, W) with w (O, C/groups, KH, KW);
    `bias` (O,) is added per output channel."""
    d = result_dtype(x, w)
    x, w = lift_all(x, w, dtype=d if d.is_float else float32)
    out = emit("conv2d", [x, w], stride=_pair(stride, "stride", "conv2d"),
               padding=_pair(padding, "padding", "conv2d"),
               dilation=_pair(dilation, "dilation", "conv2d"), groups=int(groups))
    if bias is not None:
        b = lift(bias)
        if b.shape != (out.shape[1],):
            fail("conv2d", f"bias must have shape ({out.shape[1]},), got {b.type}")
        out = out + b.reshape(1, -1, 1, 1)
    return out


def _pool(op: str, x, kernel_size, stride, padding) -> Tensor:
    k = _pair(kernel_size, "kernel_size", op)
    s = k if stride is None else _pair(stride, "stride", op)
    return emit(op, [lift(x)], kernel=k, stride=s, padding=_pair(padding, "padding", op))


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Maximum over windows of x (N, C, H, W), a float tensor; stride defaults to kernel_size;
    padding (at most half the kernel) is never the maximum."""
    x = lift(x)
    if not x.dtype.is_float:  # the native pooling kernels are float only
        fail("max_pool2d", f"needs a float tensor, got {x.type}; cast it first", TypeError)
    return _pool("max_pool2d", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over windows of x (N, C, H, W); stride defaults to kernel_size; padded positions
    are excluded from the count."""
    return _pool("avg_pool2d", _float(x), kernel_size, stride, padding)


def cross_entropy(logits, labels, ignore_index: int = -100) -> Tensor:
    """PyTorch's cross_entropy (reduction="mean"): the mean over the batch of
    -log_softmax(logits)[i, labels[i]]; logits (N, C) float, labels (N,) int32/int64. Labels
    equal to `ignore_index` add no loss and are left out of the mean's count (all ignored gives
    nan); any other label outside [0, C) raises IndexError: now when the labels are constant,
    in the compiled code when they are traced. The label's log-probability is picked with a
    one-hot mask (arange(C) == labels[:, None]), which fuses with the softmax: no gather."""
    logits = _float(logits)
    if logits.ndim != 2:
        fail("cross_entropy", f"logits must be (N, C), got {logits.type}")
    n_classes = logits.shape[1]
    if isinstance(labels, Tensor):
        labels_t = labels
    else:
        arr = np.asarray(labels)
        used = arr[arr != ignore_index] if arr.dtype.kind in "iu" else arr[:0]
        if used.size and (used.min() < 0 or used.max() >= n_classes):
            fail("cross_entropy", f"labels must lie in [0, {n_classes}) or equal ignore_index="
                 f"{ignore_index}, got {used.min()}..{used.max()}", IndexError)
        labels_t = lift(arr)
    if not labels_t.dtype.is_int:
        fail("cross_entropy", f"labels must be int32 or int64, got {labels_t.type}", TypeError)
    if labels_t.shape != logits.shape[:1]:
        fail("cross_entropy", f"labels must have shape ({logits.shape[0]},) to match logits "
             f"{logits.type}, got {labels_t.type}")
    keep = labels_t != ignore_index
    label = checked_index(where(keep, labels_t, 0), n_classes, "cross_entropy", wrap=False)
    onehot = arange(n_classes, dtype=label.dtype) == label[:, None]
    picked = sum(where(onehot, log_softmax(logits, -1), 0.0), axis=1)
    return -sum(where(keep, picked, 0.0)) / sum(keep.astype(picked.dtype))
