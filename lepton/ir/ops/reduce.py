"""Reductions over a sorted tuple of axes, with `keepdims`; `argmax` over one axis gives i64."""
from __future__ import annotations

import numpy as np

from ..types import TensorType, int64
from .base import OpDef, check_axes


def _reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


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


REDUCE = [
    OpDef("sum", "reduce", 1, ("axes", "keepdims"), _reduce(False), _ref(np.sum)),
    OpDef("prod", "reduce", 1, ("axes", "keepdims"), _reduce(False), _ref(np.prod)),
    OpDef("max", "reduce", 1, ("axes", "keepdims"), _reduce(True), _ref(np.max)),
    OpDef("min", "reduce", 1, ("axes", "keepdims"), _reduce(True), _ref(np.min)),
    OpDef("argmax", "reduce", 1, ("axis", "keepdims"), _argmax,
          lambda xs, a: np.asarray(np.argmax(xs[0], axis=a["axis"], keepdims=a["keepdims"]),
                                   dtype=np.int64)),
]
