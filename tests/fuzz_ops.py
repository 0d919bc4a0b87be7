"""The steps a fuzzed model is made of: each is a function of traced tensors (and plain
parameters) written with Lepton's public API only, so replaying a recorded program builds the
model a user would write.

    >>> STEPS["unary"](x, fn="tanh")                    # lp.tanh(x)
    >>> STEPS["binary"](x, None, op="-", const=2.0, swap=True)   # 2.0 - x

Unsafe domains are guarded inside the step (log of |x| + 0.5, exp of a clipped x), so random
data rarely leaves the range where two correct implementations agree to rounding.
tests/fuzz_models.py draws programs of these steps; tests/test_fuzz_models.py runs them.
"""
from __future__ import annotations

import operator

import numpy as np

import lepton as lp
from lepton.frontends.tensor import Tensor

# -- elementwise -------------------------------------------------------------------------------
UNARY = {
    "neg": lambda x: -x,
    "negative": lp.negative,
    "abs": lp.abs,
    "absop": abs,
    "relu": lp.relu,
    "square": lp.square,
    "exp": lambda x: lp.exp(lp.clip(x, -10.0, 10.0)),
    "log": lambda x: lp.log(lp.abs(x) + 0.5),
    "sqrt": lambda x: lp.sqrt(lp.abs(x)),
    "rsqrt": lambda x: lp.rsqrt(lp.abs(x) + 0.25),
    "reciprocal": lambda x: lp.reciprocal(lp.abs(x) + 0.25),
    "tanh": lp.tanh,
    "sigmoid": lp.sigmoid,
    "erf": lp.erf,
    # (beyond |x| ~ 1e6 the native sin/cos give NaN: see test_sin_cos_of_large_arguments)
    "sin": lambda x: lp.sin(lp.clip(x, -100.0, 100.0)),
    "cos": lambda x: lp.cos(lp.clip(x, -100.0, 100.0)),
    "gelu": lp.gelu,
    "gelu_tanh": lambda x: lp.gelu(x, approximate=True),
    "clip": lambda x: lp.clip(x, -1, 1.5),
    "clip_lo": lambda x: x.clip(min=0),
    "pos": lambda x: +x,
}
# Ops that keep a value bit-exact between two correct implementations (no rounding choices),
# so comparisons, argmax and casts to int may follow them.
EXACT_UNARY = {"neg", "negative", "abs", "absop", "relu", "clip", "clip_lo", "pos"}
SMOOTH_UNARY = ["exp", "log", "sqrt_eps", "rsqrt", "reciprocal", "tanh", "sigmoid", "erf", "sin",
                "cos", "gelu", "gelu_tanh", "square", "neg", "relu", "abs"]
UNARY["sqrt_eps"] = lambda x: lp.sqrt(lp.abs(x) + 0.1)


def unary(x, fn):
    return UNARY[fn](x)


_OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
              ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "&": operator.and_,
              "|": operator.or_, "^": operator.xor}
_FUNCTIONS = {"+": lp.add, "-": lp.subtract, "*": lp.multiply, "/": lp.divide, "**": lp.power,
              "max": lp.maximum, "min": lp.minimum}


def binary(x, y=None, *, op, const=None, swap=False, via="op", guard=False):
    """x (op) y, y a traced tensor or `const` (Python/NumPy scalar or array); swap puts the
    second operand on the left; guard: a computed divisor d becomes |d| + 0.5 (one rounded
    to zero on one side only would give inf)."""
    b = y if y is not None else const
    a, b = (b, x) if swap else (x, b)
    if guard:
        b = lp.abs(b) + 0.5
    if op == "**":
        # A float base kept positive; integer powers of ints use a Python int exponent.
        if isinstance(a, Tensor) and a.dtype in (lp.float32, lp.float64):
            a = lp.abs(a) + 0.5
        elif not isinstance(a, Tensor):
            a = abs(a) + 0.5
        if isinstance(b, Tensor):
            b = lp.clip(b, -3, 3)
    if via == "fn" and op in _FUNCTIONS:
        return _FUNCTIONS[op](a, b)
    if op in ("max", "min"):
        return (lp.maximum if op == "max" else lp.minimum)(a, b)
    return _OPERATORS[op](a, b)


def where(c, x, y=None, *, const=None):
    return lp.where(c, x, y if y is not None else const)


def invert(x):
    return ~x


def astype(x, dtype, via="method"):
    if dtype in ("int32", "int64", "bool") and x.dtype in (lp.float32, lp.float64):
        x = lp.clip(x, -1000, 1000)  # float -> int is defined on the int's range only
    return x.astype(dtype) if via == "method" else x.astype(getattr(np, dtype))


# -- reductions --------------------------------------------------------------------------------
def reduce(x, *, op, axis=None, keepdims=False, method=False, ddof=0, dtype=None):
    if op == "prod" and x.dtype in (lp.float32, lp.float64):
        x = lp.clip(x, -2.0, 2.0)  # a float product of many terms overflows otherwise
    if op == "var":
        return x.var(axis, ddof=ddof, keepdims=keepdims) if method else \
            lp.var(x, axis, ddof=ddof, keepdims=keepdims)
    if op == "argmax" and method:
        return x.argmax(axis, keepdims=keepdims)
    if op == "argmax":
        return lp.argmax(x, axis, keepdims=keepdims)
    if op == "logsumexp":
        return lp.logsumexp(x, axis, keepdims=keepdims)
    if method and dtype is None:
        return getattr(x, op)(axis, keepdims=keepdims)
    if op in ("sum", "prod", "mean") and dtype is not None:
        return getattr(lp, op)(x, axis, dtype, keepdims=keepdims)
    return getattr(lp, op)(x, axis, keepdims=keepdims)


# -- shapes ------------------------------------------------------------------------------------
def reshape(x, shape, via="method"):
    if via == "method":
        return x.reshape(*shape) if len(shape) > 1 else x.reshape(shape)
    return lp.reshape(x, shape)


def transpose(x, perm=None, via="fn"):
    if via == "T":
        return x.T
    if via == "mT":
        return x.mT
    if via == "method":
        return x.transpose(*perm) if perm else x.transpose()
    return lp.transpose(x, perm)


def expand_dims(x, axis):
    return lp.expand_dims(x, axis)


def squeeze(x, axis=None, via="fn"):
    return x.squeeze(axis) if via == "method" else lp.squeeze(x, axis)


def broadcast_to(x, shape):
    return lp.broadcast_to(x, shape)


def concatenate(*xs, axis=0, const=None):
    items = list(xs) + ([const] if const is not None else [])
    return lp.concatenate(items, axis=axis)


def stack(*xs, axis=0):
    return lp.stack(list(xs), axis=axis)


def split(x, sections, axis=0):
    return lp.split(x, sections, axis=axis)


def getitem(x, idx=None, *, key):
    """x[key] where the entry "IDX" of key stands for the traced index tensor idx."""
    key = tuple(idx if isinstance(k, str) else k for k in key)
    return x[key if len(key) != 1 else key[0]]


def take(x, idx=None, *, const=None, axis=None):
    return lp.take(x, idx if idx is not None else const, axis=axis)


# -- linear algebra and neural ops ------------------------------------------------------------
_ACT = {"relu": lp.relu, "gelu": lp.gelu, "tanh": lp.tanh, "sigmoid": lp.sigmoid, None: None}


def matmul(a, b, bias=None, *, bias_const=None, ta=False, tb=False, via="@", act=None,
           scale=None):
    """op(a) @ op(b) [+ bias] [act] [* scale]; ta/tb: the operand is passed transposed (its
    last two axes swapped), as a model with (out, in) weights does; the bias is a traced
    tensor or a NumPy constant."""
    if ta:
        a = a.mT if a.ndim > 2 else a.T
    if tb:
        b = b.mT if b.ndim > 2 else b.T
    y = {"@": operator.matmul, "matmul": lp.matmul, "dot": lp.dot,
         "method": lambda p, q: p.dot(q)}[via](a, b)
    if bias is not None or bias_const is not None:
        y = y + (bias if bias is not None else bias_const)
    if act is not None:
        y = _ACT[act](y)
    if scale is not None:
        y = y * scale
    return y


def softmax(x, axis=-1, log=False):
    return (lp.log_softmax if log else lp.softmax)(x, axis=axis)


def layer_norm(x, w=None, b=None, eps=1e-5):
    return lp.layer_norm(x, w, b, eps=eps)


def conv2d(x, w, bias=None, **kw):
    return lp.conv2d(x, w, bias, **kw)


def pool(x, *, op, **kw):
    return (lp.max_pool2d if op == "max" else lp.avg_pool2d)(x, **kw)


def cross_entropy(logits, labels=None, *, const=None):
    return lp.cross_entropy(logits, labels if labels is not None else const)


def creation(like, *, op, dtype=None):
    """zeros/ones/full/arange combined with `like` so they take part in the model."""
    if op == "arange":
        n = like.shape[-1] if like.ndim else 1
        return like + lp.arange(n, dtype=dtype)
    if op == "full":
        return like * lp.full(like.shape, 3, dtype)
    return like + getattr(lp, op)(like.shape, dtype)


STEPS = {f.__name__: f for f in (
    unary, binary, where, invert, astype, reduce, reshape, transpose, expand_dims, squeeze,
    broadcast_to, concatenate, stack, split, getitem, take, matmul, softmax, layer_norm, conv2d,
    pool, cross_entropy, creation)}
