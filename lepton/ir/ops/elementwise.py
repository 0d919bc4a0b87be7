"""Elementwise ops. Inputs broadcast NumPy-style to the result shape and (but for `where`'s
condition) share one dtype; the frontend inserts casts and keeps the IR explicit."""
from __future__ import annotations

import math

import numpy as np

from ..types import TensorType, bool_, dtype as to_dtype
from .base import OpDef, broadcast_shapes, same_dtype

_erf = np.frompyfunc(math.erf, 1, 1)


def _float_only(name):
    def infer(types, attrs):
        t = _same(types, attrs)
        if not t.dtype.is_float:
            raise TypeError(f"{name} needs a float input, got {t}")
        return t
    return infer


def _same(types, attrs):
    return TensorType(same_dtype(types), broadcast_shapes(*(t.shape for t in types)))


def _compare(types, attrs):
    same_dtype(types)
    return TensorType(bool_, broadcast_shapes(*(t.shape for t in types)))


def _where(types, attrs):
    c, a, b = types
    if c.dtype != bool_:
        raise TypeError(f"where's condition must be bool, got {c}")
    return TensorType(same_dtype((a, b)), broadcast_shapes(c.shape, a.shape, b.shape))


def _cast(types, attrs):
    return TensorType(to_dtype(attrs["dtype"]), types[0].shape)


def _keep(f):
    """A reference that keeps the input dtype (NumPy may widen, e.g. for 0-d scalars)."""
    def ref(xs, attrs):
        with np.errstate(all="ignore"):
            return np.asarray(f(*xs)).astype(np.result_type(*xs), copy=False)
    return ref


def _sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


def _unary(name, f, float_only=True):
    return OpDef(name, "elementwise", 1, (), _float_only(name) if float_only else _same, _keep(f))


def _binary(name, f, float_only=False):
    return OpDef(name, "elementwise", 2, (), _float_only(name) if float_only else _same, _keep(f))


def _cmp(name, f):
    return OpDef(name, "elementwise", 2, (), _compare, lambda xs, a: np.asarray(f(*xs)))


ELEMENTWISE = [
    _unary("neg", np.negative, float_only=False),
    _unary("abs", np.abs, float_only=False),
    _unary("square", np.square, float_only=False),
    _unary("relu", lambda x: np.maximum(x, 0), float_only=False),
    _unary("exp", np.exp),
    _unary("log", np.log),
    _unary("sqrt", np.sqrt),
    _unary("rsqrt", lambda x: 1 / np.sqrt(x)),
    _unary("reciprocal", lambda x: 1 / x),
    _unary("tanh", np.tanh),
    _unary("sigmoid", _sigmoid),
    _unary("erf", lambda x: np.asarray(_erf(x), dtype=x.dtype)),  # 0-d: frompyfunc gives a float
    _unary("sin", np.sin),
    _unary("cos", np.cos),
    _binary("add", np.add),
    _binary("sub", np.subtract),
    _binary("mul", np.multiply),
    _binary("div", np.divide, float_only=True),
    _binary("pow", np.power, float_only=True),
    _binary("maximum", np.maximum),
    _binary("minimum", np.minimum),
    _cmp("lt", np.less),
    _cmp("le", np.less_equal),
    _cmp("gt", np.greater),
    _cmp("ge", np.greater_equal),
    _cmp("eq", np.equal),
    _cmp("ne", np.not_equal),
    OpDef("where", "elementwise", 3, (), _where, lambda xs, a: np.where(*xs)),
    OpDef("cast", "elementwise", 1, ("dtype",), _cast,
          lambda xs, a: np.asarray(xs[0]).astype(to_dtype(a["dtype"]).np)),
]
