"""Elementwise ops. Inputs broadcast NumPy-style to the result shape and (but for `where`'s
condition) share one dtype; the frontend inserts casts and keeps the IR explicit.

VJP rules (base.py) sit next to each op; a binary op's cotangents are summed back to each
input's shape (`e.sum_to`), since the op broadcast them. Conventions at kinks follow JAX and
PyTorch: relu'(0) = 0, |x|'(0) = 0, maximum/minimum split the cotangent evenly on ties."""
from __future__ import annotations

import math

import numpy as np

from ..types import TensorType, bool_, dtype as to_dtype
from .base import NONDIFF, OpDef, broadcast_shapes, same_dtype

_erf = np.frompyfunc(math.erf, 1, 1)


def _float_only(name):
    def infer(types, attrs):
        t = _same(types, attrs)
        if not t.dtype.is_float:
            raise TypeError(f"{name} needs a float input, got {t}")
        return t
    return infer


def _same(types, attrs):
    first = types[0]
    for t in types:
        if t is not first and t != first:
            break
    else:
        return first   # types are immutable: the common case shares its input's
    if len(types) == 2 and types[1].dtype is first.dtype:     # a broadcast binary op
        return TensorType(first.dtype, broadcast_shapes(first.shape, types[1].shape))
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


def bit_width(d) -> int:
    """The width bitcast compares: a value's bits (4 for int4 and float4_e2m1fn, 2 for int2),
    8 for bool (its byte, as NumPy and ONNX store it)."""
    return 8 if d == bool_ else d.bits


def _bitcast(types, attrs):
    src, to = types[0].dtype, to_dtype(attrs["dtype"])
    if to == bool_ and src != bool_:
        raise TypeError(f"bitcast from {src} to bool is refused: a byte other than 0 or 1 is "
                        f"not a bool (use x != 0, or a cast)")
    if bit_width(src) != bit_width(to):
        raise ValueError(f"bitcast from {src} ({bit_width(src)} bits) to {to} "
                         f"({bit_width(to)} bits): the widths differ; bitcast reinterprets each "
                         f"element as a dtype of the same width")
    return TensorType(to, types[0].shape)


def _bitcast_ref(xs, attrs):
    # NumPy's view: every dtype here is stored in its own itemsize (sub-byte ones one a byte,
    # low bits), so viewing keeps the bits, NaN payloads and -0 included
    return np.asarray(xs[0]).view(to_dtype(attrs["dtype"]).np)


def _keep(f):
    """A reference that keeps the input dtype (NumPy may widen, e.g. for 0-d scalars)."""
    def ref(xs, attrs):
        with np.errstate(all="ignore"):
            return np.asarray(f(*xs)).astype(np.result_type(*xs), copy=False)
    return ref


def _sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))


def _unary(name, f, vjp, float_only=True, expensive=False):
    """`vjp(e, x, out, ct)` gives x's cotangent. Every unary math op may be a GEMM epilogue."""
    return OpDef(name, "elementwise", 1, (), _float_only(name) if float_only else _same, _keep(f),
                 lambda e, out, ct: (vjp(e, out.inputs[0], out, ct),), epilogue=True,
                 expensive=expensive)


def _binary(name, f, vjp, float_only=False, commutative=False, expensive=False):
    """`vjp(e, a, b, out, ct)` gives the cotangents at the broadcast shape; they are summed
    back to each input's shape here."""
    def rule(e, out, ct):
        a, b = out.inputs
        da, db = vjp(e, a, b, out, ct)
        return (None if da is None else e.sum_to(da, a.shape),
                None if db is None else e.sum_to(db, b.shape))
    return OpDef(name, "elementwise", 2, (), _float_only(name) if float_only else _same, _keep(f),
                 rule, epilogue=True, commutative=commutative, expensive=expensive)


def _cmp(name, f, commutative=False):
    return OpDef(name, "elementwise", 2, (), _compare, lambda xs, a: np.asarray(f(*xs)),
                 NONDIFF, commutative=commutative)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _pow_vjp(e, x, y, out, ct):
    # d/dx = y * x**(y-1), taken as 0 where y == 0 (x**-1 is inf at x == 0, times 0 is NaN)
    dx = e.where(e.eq(y, 0), 0, e.mul(y, e.pow(x, e.sub(y, 1))))
    # d/dy = log(x) * x**y, taken as 0 where x == 0 (its limit for y > 0)
    dy = e.mul(e.log(e.where(e.eq(x, 0), 1, x)), out)
    return e.mul(ct, dx), e.mul(ct, dy)


def _extremum_vjp(wins):
    """maximum (wins='gt') / minimum (wins='lt'): the cotangent goes to the winner, half of
    it to each on a tie."""
    def vjp(e, a, b, out, ct):
        da = e.where(getattr(e, wins)(a, b), ct, e.where(e.eq(a, b), e.mul(ct, 0.5), 0))
        return da, e.sub(ct, da)
    return vjp


def _where_vjp(e, out, ct):
    c, a, b = out.inputs
    return None, e.sum_to(e.where(c, ct, 0), a.shape), e.sum_to(e.where(c, 0, ct), b.shape)


def _cast_vjp(e, out, ct):
    # only a float output gets a cotangent; an integer or bool input gets none back
    x = out.inputs[0]
    return (e.cast(ct, x.dtype) if x.dtype.is_float else None,)


ELEMENTWISE = [
    _unary("neg", np.negative, lambda e, x, y, ct: e.neg(ct), float_only=False),
    _unary("abs", np.abs, lambda e, x, y, ct: e.mul(ct, e.sign(x)), float_only=False),
    _unary("square", np.square, lambda e, x, y, ct: e.mul(ct, e.mul(x, 2)), float_only=False),
    _unary("relu", lambda x: np.maximum(x, 0),
           lambda e, x, y, ct: e.where(e.gt(x, 0), ct, 0), float_only=False),
    _unary("exp", np.exp, lambda e, x, y, ct: e.mul(ct, y), expensive=True),
    _unary("log", np.log, lambda e, x, y, ct: e.div(ct, x), expensive=True),
    _unary("sqrt", np.sqrt, lambda e, x, y, ct: e.div(e.mul(ct, 0.5), y)),
    _unary("rsqrt", lambda x: 1 / np.sqrt(x),
           lambda e, x, y, ct: e.mul(ct, e.mul(e.mul(y, e.square(y)), -0.5))),
    _unary("reciprocal", lambda x: 1 / x, lambda e, x, y, ct: e.neg(e.mul(ct, e.square(y)))),
    _unary("tanh", np.tanh, lambda e, x, y, ct: e.mul(ct, e.sub(1, e.square(y))),
           expensive=True),
    _unary("sigmoid", _sigmoid, lambda e, x, y, ct: e.mul(ct, e.mul(y, e.sub(1, y))),
           expensive=True),
    _unary("erf", lambda x: np.asarray(_erf(x), dtype=x.dtype),  # 0-d: frompyfunc gives a float
           lambda e, x, y, ct: e.mul(ct, e.mul(e.exp(e.neg(e.square(x))), _TWO_OVER_SQRT_PI)),
           expensive=True),
    _unary("sin", np.sin, lambda e, x, y, ct: e.mul(ct, e.cos(x)), expensive=True),
    _unary("cos", np.cos, lambda e, x, y, ct: e.neg(e.mul(ct, e.sin(x))), expensive=True),
    _binary("add", np.add, lambda e, a, b, y, ct: (ct, ct), commutative=True),
    _binary("sub", np.subtract, lambda e, a, b, y, ct: (ct, e.neg(ct))),
    _binary("mul", np.multiply, lambda e, a, b, y, ct: (e.mul(ct, b), e.mul(ct, a)),
            commutative=True),
    _binary("div", np.divide, lambda e, a, b, y, ct: (e.div(ct, b), e.neg(e.div(e.mul(ct, y), b))),
            float_only=True),
    _binary("pow", np.power, _pow_vjp, float_only=True, expensive=True),
    _binary("maximum", np.maximum, _extremum_vjp("gt"), commutative=True),
    _binary("minimum", np.minimum, _extremum_vjp("lt"), commutative=True),
    _cmp("lt", np.less),
    _cmp("le", np.less_equal),
    _cmp("gt", np.greater),
    _cmp("ge", np.greater_equal),
    _cmp("eq", np.equal, commutative=True),
    _cmp("ne", np.not_equal, commutative=True),
    OpDef("where", "elementwise", 3, (), _where, lambda xs, a: np.where(*xs), _where_vjp),
    # the identity, through which no gradient flows (JAX's lax.stop_gradient); the pipeline
    # removes it after differentiation
    OpDef("stop_gradient", "elementwise", 1, (), _same, lambda xs, a: xs[0], NONDIFF),
    OpDef("cast", "elementwise", 1, ("dtype",), _cast,
          lambda xs, a: np.asarray(xs[0]).astype(to_dtype(a["dtype"]).np), _cast_vjp),
    # the bits of each element read as another dtype of the same width (NumPy's x.view(dtype),
    # jax.lax.bitcast_convert_type); no gradient flows through it, as in JAX (a zero one)
    OpDef("bitcast", "elementwise", 1, ("dtype",), _bitcast, _bitcast_ref, NONDIFF),
]
