"""Reductions over a sorted tuple of axes, with `keepdims`; `argmax` over one axis gives i64.

VJP rules broadcast the cotangent back over the reduced axes (`e.unreduce`). max/min split it
evenly among tied extrema (as JAX); prod's rule is exact when some inputs are zero."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, int64
from .base import NONDIFF, OpDef, check_axes


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple([1 if i in axes else s for i, s in enumerate(shape)])
    return tuple([s for i, s in enumerate(shape) if i not in axes])


def _reduce(identity_needed):
    def infer(types, attrs):
        (t,) = types
        check_axes(attrs["axes"], t.ndim)
        if not isinstance(attrs["keepdims"], bool):
            raise TypeError("keepdims must be a bool")
        if identity_needed and any(t.shape[a] == 0 for a in attrs["axes"]):
            raise ValueError(f"zero-size reduction over axes {attrs['axes']} of {t} has no identity")
        return TensorType(t.dtype, _reduced_shape(t.shape, attrs["axes"], attrs["keepdims"]))
    return infer


def _argmax(types, attrs):
    (t,) = types
    check_axes((attrs["axis"],), t.ndim, "axis")
    if t.shape[attrs["axis"]] == 0:
        raise ValueError(f"argmax over an empty axis of {t}")
    return TensorType(int64, _reduced_shape(t.shape, (attrs["axis"],), attrs["keepdims"]))


def _ref(f):
    def ref(xs, a):
        x = xs[0]
        return np.asarray(f(x, axis=a["axes"], keepdims=a["keepdims"])).astype(x.dtype, copy=False)
    return ref


def _sum_vjp(e, out, ct):
    x = out.inputs[0]
    return (e.unreduce(ct, x.shape, out.attrs["axes"], out.attrs["keepdims"]),)


def _extremum_vjp(e, out, ct):
    x = out.inputs[0]
    axes, keep = out.attrs["axes"], out.attrs["keepdims"]
    mask = e.cast(e.eq(x, e.unreduce(out, x.shape, axes, keep)), x.dtype)
    count = e.sum(mask, axes, keepdims=True)
    return (e.div(e.mul(e.unreduce(ct, x.shape, axes, keep), mask), count),)


def _prod_vjp(e, out, ct):
    # d prod / d x_i is the product of the others: out / x_i when no x is zero; with exactly
    # one zero it is the product of the non-zeros at the zero and 0 elsewhere; with more, 0.
    x = out.inputs[0]
    axes, keep = out.attrs["axes"], out.attrs["keepdims"]
    zero = e.eq(x, 0)
    nonzero = e.where(zero, 1, x)
    p = e.op("prod", nonzero, axes=axes, keepdims=True)
    zeros = e.sum(e.cast(zero, x.dtype), axes, keepdims=True)
    one_zero = e.where(e.eq(zeros, 1), e.where(zero, p, 0), 0)
    grad = e.where(e.eq(zeros, 0), e.div(p, nonzero), one_zero)
    return (e.mul(e.unreduce(ct, x.shape, axes, keep), grad),)


REDUCE = [
    OpDef("sum", "reduce", 1, ("axes", "keepdims"), _reduce(False), _ref(np.sum), _sum_vjp),
    OpDef("prod", "reduce", 1, ("axes", "keepdims"), _reduce(False), _ref(np.prod), _prod_vjp),
    OpDef("max", "reduce", 1, ("axes", "keepdims"), _reduce(True), _ref(np.max), _extremum_vjp),
    OpDef("min", "reduce", 1, ("axes", "keepdims"), _reduce(True), _ref(np.min), _extremum_vjp),
    OpDef("argmax", "reduce", 1, ("axis", "keepdims"), _argmax,
          lambda xs, a: np.asarray(np.argmax(xs[0], axis=a["axis"], keepdims=a["keepdims"]),
                                   dtype=np.int64), NONDIFF),
]
