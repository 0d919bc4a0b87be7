"""`Emitter`: a small IR builder for the VJP rules, with the helpers gradients keep needing
(undoing a broadcast, undoing a reduction, typed scalar constants, zeros, pads and slices).

    >>> e = Emitter(g, loc="model.py:3")
    >>> dx = e.sum_to(e.mul(ct, y), x.shape)   # d(x*y)/dx for x broadcast against y
    >>> e.mul(ct, 0.5)          # a Python number becomes a 0-d constant of ct's dtype

Every value it creates is recorded in `created` (autodiff prunes the ones it did not need) and
carries the emitter's `loc`, the user's source line of the primal op being differentiated.
Helpers skip ops that would do nothing (a reshape to the same shape, an identity transpose).
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Value
from .types import DType, TensorType

_UNARY = ("neg", "abs", "square", "relu", "exp", "log", "sqrt", "rsqrt", "reciprocal", "tanh",
          "sigmoid", "erf", "sin", "cos")
_BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum",
           "lt", "le", "gt", "ge", "eq", "ne")


class Emitter:
    """Appends ops to `graph`; binary ops and `where` accept Python numbers for operands, as
    0-d constants of the dtype of the Value operand."""

    def __init__(self, graph: Graph, loc: str | None = None):
        self.graph = graph
        self.loc = loc
        self.created: list[Value] = []
        # set by autodiff's driver: backward(emitter, nodes, seeds, wrt), for the VJP rules
        # of ops with regions (they transpose their body, a graph of its own)
        self.backward = None

    # -- the primitive -------------------------------------------------------------------------
    def op(self, name: str, *inputs: Value, **attrs) -> Value:
        v = self.graph.add(name, inputs, loc=self.loc, **attrs)
        self.created.append(v)
        return v

    def const(self, value, dtype: DType) -> Value:
        """A 0-d constant of `dtype`."""
        return self.op("constant", value=np.array(value, dtype=dtype.np))

    def lift(self, x, dtype: DType) -> Value:
        return x if isinstance(x, Value) else self.const(x, dtype)

    def _binary(self, name: str, a, b) -> Value:
        dt = (a if isinstance(a, Value) else b).dtype
        return self.op(name, self.lift(a, dt), self.lift(b, dt))

    def where(self, cond: Value, a, b, dtype: DType | None = None) -> Value:
        dt = dtype or (a if isinstance(a, Value) else b).dtype
        return self.op("where", cond, self.lift(a, dt), self.lift(b, dt))

    def cast(self, x: Value, dtype: DType) -> Value:
        return x if x.dtype == dtype else self.op("cast", x, dtype=dtype)

    def sign(self, x: Value) -> Value:
        """-1, 0 or 1 in x's dtype (0 at 0 and at NaN)."""
        neg = self.where(self.lt(x, 0), -1, 0, dtype=x.dtype)
        return self.where(self.gt(x, 0), 1, neg, dtype=x.dtype)

    def zeros(self, type: TensorType) -> Value:
        """Zeros of `type` as a broadcast 0-d constant (never a big array)."""
        return self.broadcast_to(self.const(0, type.dtype), type.shape)

    # -- shapes --------------------------------------------------------------------------------
    def reshape(self, x: Value, shape) -> Value:
        shape = tuple(shape)
        return x if x.shape == shape else self.op("reshape", x, shape=shape)

    def transpose(self, x: Value, perm) -> Value:
        perm = tuple(perm)
        return x if perm == tuple(range(x.type.ndim)) else self.op("transpose", x, perm=perm)

    def swap_last2(self, x: Value) -> Value:
        n = x.type.ndim
        return self.transpose(x, tuple(range(n - 2)) + (n - 1, n - 2))

    def broadcast_to(self, x: Value, shape) -> Value:
        shape = tuple(shape)
        return x if x.shape == shape else self.op("broadcast_to", x, shape=shape)

    def sum(self, x: Value, axes, keepdims: bool = False) -> Value:
        axes = tuple(sorted(axes))
        if not axes:
            return x
        return self.op("sum", x, axes=axes, keepdims=keepdims)

    def slice(self, x: Value, starts, stops, steps) -> Value:
        starts, stops, steps = tuple(starts), tuple(stops), tuple(steps)
        if starts == (0,) * len(starts) and stops == x.shape and steps == (1,) * len(steps):
            return x
        return self.op("slice", x, starts=starts, stops=stops, steps=steps)

    def pad(self, x: Value, lo, hi, interior=None) -> Value:
        """Zeros around (lo, hi) and between (interior) the elements of x, per axis."""
        n = x.type.ndim
        lo, hi = tuple(lo), tuple(hi)
        interior = (0,) * n if interior is None else tuple(interior)
        if not any(lo + hi + interior):
            return x
        return self.op("pad", x, lo=lo, hi=hi, interior=interior)

    def pad_or_crop(self, x: Value, lo, hi, interior=None) -> Value:
        """Like `pad`, but a negative lo/hi crops that many elements off instead."""
        x = self.pad(x, [max(v, 0) for v in lo], [max(v, 0) for v in hi], interior)
        return self.slice(x, [max(-v, 0) for v in lo],
                          [s - max(-v, 0) for s, v in zip(x.shape, hi)], (1,) * len(lo))

    # -- undoing broadcasts and reductions -----------------------------------------------------
    def sum_to(self, x: Value, shape) -> Value:
        """The cotangent of a value of `shape` that was broadcast to x's shape: x summed over
        the leading axes it gained and the axes where `shape` has 1.

            >>> e.sum_to(ct_of_shape_4x3, (3,))    # sum[axes=(0,)]
            >>> e.sum_to(ct_of_shape_4x3, (4, 1))  # sum[axes=(1,), keepdims=True]
        """
        shape = tuple(shape)
        if x.shape == shape:
            return x
        lead = x.type.ndim - len(shape)
        if lead < 0:
            raise ValueError(f"sum_to: cannot reduce {x.type} to the larger shape {shape}")
        ones = tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
        if not ones:
            return self.sum(x, range(lead))
        # keepdims keeps the size-1 axes where `shape` has them; leading axes then reshape away
        return self.reshape(self.sum(x, tuple(range(lead)) + ones, keepdims=True), shape)

    def unreduce(self, ct: Value, shape, axes, keepdims: bool) -> Value:
        """The cotangent of a reduction over `axes` of a value of `shape`, broadcast back."""
        kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
        return self.broadcast_to(self.reshape(ct, kept), shape)

    def matmul(self, a: Value, b: Value) -> Value:
        return self.op("matmul", a, b)


def _make_unary(name):
    def f(self, x: Value) -> Value:
        return self.op(name, x)
    f.__name__ = name
    return f


def _make_binary(name):
    def f(self, a, b) -> Value:
        return self._binary(name, a, b)
    f.__name__ = name
    return f


for _n in _UNARY:
    setattr(Emitter, _n, _make_unary(_n))
for _n in _BINARY:
    setattr(Emitter, _n, _make_binary(_n))
