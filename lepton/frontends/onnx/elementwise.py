"""Elementwise ONNX ops composed from the IR's elementwise ops: rounding (Floor, Ceil, Round),
Sign, IsNaN, IsInf, the trigonometric and hyperbolic functions the IR lacks, and activations
(Selu, Celu, ThresholdedRelu, Shrink, Softsign, Mish, Swish, PRelu).

    >>> floor(x)   # t = float(int(x)); t - (t > x), and x itself where |x| >= 2**52 or x is NaN
    >>> atan(x)    # Cephes' atanf: range reduction to |x| <= tan(pi/8), a degree-9 polynomial
"""
from __future__ import annotations

import math

import numpy as np

from ...ir.types import int64
from .. import ops
from ..tensor import Tensor, cast, constant

_BIG = 2.0 ** 52   # from here on every float is an integer


def _scalar(x: Tensor, v) -> Tensor:
    return constant(np.array(v, x.dtype.np))


def _rounded(x: Tensor, r: Tensor) -> Tensor:
    """r where x is small enough for the cast through int64, x itself elsewhere (integers
    already, inf, NaN)."""
    return ops.where(ops.abs(x) < _BIG, r, x)


def _trunc(x: Tensor) -> Tensor:
    small = ops.where(ops.abs(x) < _BIG, x, _scalar(x, 0))   # never cast inf/NaN to int
    return cast(cast(small, int64), x.dtype)


def floor(x: Tensor) -> Tensor:
    if not x.dtype.is_float:
        return x
    t = _trunc(x)
    return _rounded(x, t - cast(t > x, x.dtype))


def ceil(x: Tensor) -> Tensor:
    if not x.dtype.is_float:
        return x
    t = _trunc(x)
    return _rounded(x, t + cast(t < x, x.dtype))


def round_half_even(x: Tensor) -> Tensor:
    """Round to nearest, ties to even (ONNX Round, np.round)."""
    if not x.dtype.is_float:
        return x
    f = floor(x)
    d = x - f
    up = (d > 0.5) | ((d == 0.5) & (f - 2.0 * floor(f * 0.5) != 0.0))   # f odd: go up
    return _rounded(x, f + cast(up, x.dtype))


def sign(x: Tensor) -> Tensor:
    return cast(x > 0, x.dtype) - cast(x < 0, x.dtype) if x.dtype.name != "bool" else x


def isnan(x: Tensor) -> Tensor:
    return x != x


def isinf(n) -> Tensor:
    x = n.x(0)
    pos, neg = n.attr("detect_positive", 1), n.attr("detect_negative", 1)
    if not x.dtype.is_float:
        return ops.full(x.shape, False)
    out = None
    for flag, v in ((pos, math.inf), (neg, -math.inf)):
        if flag:
            hit = x == _scalar(x, v)
            out = hit if out is None else out | hit
    return ops.full(x.shape, False) if out is None else out


# -- trigonometric and hyperbolic --------------------------------------------------------------
def tan(x: Tensor) -> Tensor:
    return ops.sin(x) / ops.cos(x)


def sinh(x: Tensor) -> Tensor:
    return (ops.exp(x) - ops.exp(-x)) * 0.5


def cosh(x: Tensor) -> Tensor:
    return (ops.exp(x) + ops.exp(-x)) * 0.5


def asinh(x: Tensor) -> Tensor:
    a = ops.abs(x)   # odd: computed on |x| so that large negative x keeps its precision
    return sign(x) * ops.log(a + ops.sqrt(a * a + 1.0))


def acosh(x: Tensor) -> Tensor:
    return ops.log(x + ops.sqrt(x * x - 1.0))


def atanh(x: Tensor) -> Tensor:
    return 0.5 * ops.log((1.0 + x) / (1.0 - x))


def atan(x: Tensor) -> Tensor:
    """Cephes' atanf: |x| > tan(3pi/8): pi/2 - atan(1/|x|); > tan(pi/8): pi/4 + atan((|x|-1)
    / (|x|+1)); then an odd polynomial (float32-accurate; float64 inputs get the same)."""
    a = ops.abs(x)
    big, mid = a > 2.414213562373095, a > 0.4142135623730950
    safe = ops.where(big, a, _scalar(x, 1.0))
    z0 = ops.where(big, -1.0 / safe, ops.where(mid, (a - 1.0) / (a + 1.0), a))
    base = ops.where(big, _scalar(x, math.pi / 2), ops.where(mid, _scalar(x, math.pi / 4),
                                                             _scalar(x, 0.0)))
    z = z0 * z0
    p = (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z
         - 3.33329491539e-1) * z * z0 + z0
    return sign(x) * (base + p)


def asin(x: Tensor) -> Tensor:
    return atan(x / ops.sqrt((1.0 - x) * (1.0 + x)))


def acos(x: Tensor) -> Tensor:
    return math.pi / 2 - asin(x)


# -- activations -------------------------------------------------------------------------------
def selu(n) -> Tensor:
    x = n.x(0)
    alpha, gamma = n.attr("alpha", 1.67326319217681884765625), n.attr(
        "gamma", 1.05070102214813232421875)
    return gamma * ops.where(x > 0, x, alpha * (ops.exp(x) - 1.0))


def celu(n) -> Tensor:
    x = n.x(0)
    alpha = n.attr("alpha", 1.0)
    return ops.maximum(x, _scalar(x, 0)) + ops.minimum(
        _scalar(x, 0), alpha * (ops.exp(x / alpha) - 1.0))


def thresholded_relu(n) -> Tensor:
    x = n.x(0)
    return ops.where(x > n.attr("alpha", 1.0), x, _scalar(x, 0))


def shrink(n) -> Tensor:
    x = n.x(0)
    lambd, bias = n.attr("lambd", 0.5), n.attr("bias", 0.0)
    y = ops.where(x < -lambd, x + _scalar(x, bias),
                  ops.where(x > lambd, x - _scalar(x, bias), _scalar(x, 0)))
    return y


def softsign(x: Tensor) -> Tensor:
    return x / (1.0 + ops.abs(x))


def softplus(x: Tensor) -> Tensor:
    return ops.relu(x) + ops.log(1.0 + ops.exp(-ops.abs(x)))   # log(1 + e^x), no overflow


def mish(x: Tensor) -> Tensor:
    return x * ops.tanh(softplus(x))


def swish(n) -> Tensor:
    x = n.x(0)
    return x * ops.sigmoid(x * n.attr("alpha", 1.0))


def prelu(n) -> Tensor:
    x, slope = n.x(0), n.x(1)
    return ops.where(x < 0, x * slope, x)


def binarizer(n) -> Tensor:
    """ai.onnx.ml's Binarizer: 1 where x > threshold, else 0, in x's type. An integer x is
    compared with floor(threshold) (the same test, exact), or is all 0 / all 1 when the
    threshold lies beyond the type's range."""
    x, t = n.x(0), float(n.attr("threshold", 0.0))
    if x.dtype.is_float:
        return cast(x > _scalar(x, t), x.dtype)
    if x.dtype.name not in ("i32", "i64"):
        n.invalid(f"needs a float, double, int32 or int64 tensor, got {x.type}", TypeError)
    info, lim = np.iinfo(x.dtype.np), math.floor(t) if math.isfinite(t) else t
    if lim >= info.max or lim < info.min:
        return constant(np.full(x.shape, lim < info.min, x.dtype.np))
    return cast(x > _scalar(x, int(lim)), x.dtype)
