"""The steps of tests/fuzz_ops.py written again with NumPy, so a fuzzed program can be replayed
without Lepton: the oracle for the frontend's semantics (shapes of indexing, broadcasting,
split, take, axis handling), which the interpreter cannot judge since it runs the graph the
frontend built.

    >>> outs = replay(prog, prog.arguments())     # NumPy arrays in the program's output order

Dtypes follow NumPy (i32 + f32 gives f64 here, f32 in Lepton), so callers compare shapes
exactly and values by the float tolerance.
"""
from __future__ import annotations

import math

import numpy as np

from lepton.ir.ops import OPS

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _f(x):
    """x as floats, as Lepton's float-only ops take ints (to f32)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float32)


UNARY = {
    "neg": lambda x: -x, "negative": np.negative, "abs": np.abs, "absop": np.abs,
    "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)),
    "square": lambda x: np.square(x) if x.dtype != bool else x,
    "exp": lambda x: np.exp(np.clip(_f(x), -10.0, 10.0)),
    "log": lambda x: np.log(np.abs(_f(x)) + 0.5),
    "sqrt": lambda x: np.sqrt(np.abs(_f(x))),
    "sqrt_eps": lambda x: np.sqrt(np.abs(_f(x)) + 0.1),
    "rsqrt": lambda x: 1 / np.sqrt(np.abs(_f(x)) + 0.25),
    "reciprocal": lambda x: 1 / (np.abs(_f(x)) + 0.25),
    "tanh": lambda x: np.tanh(_f(x)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-_f(x))),
    "erf": lambda x: _erf(_f(x)),
    "sin": lambda x: np.sin(np.clip(_f(x), -100.0, 100.0)),
    "cos": lambda x: np.cos(np.clip(_f(x), -100.0, 100.0)),
    "gelu": lambda x: 0.5 * _f(x) * (1 + _erf(_f(x) / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * _f(x) * (1 + np.tanh(math.sqrt(2 / math.pi) * (
        _f(x) + 0.044715 * _f(x) ** 3))),
    "clip": lambda x: np.clip(x, -1, 1.5),
    "clip_lo": lambda x: np.maximum(x, 0),
    "pos": lambda x: x,
}


def unary(x, fn):
    return UNARY[fn](x)


def binary(x, y=None, *, op, const=None, swap=False, via="op", guard=False):
    b = y if y is not None else const
    a, b = (b, x) if swap else (x, b)
    if guard:
        b = np.abs(b) + 0.5
    if op == "**":  # the guards of fuzz_ops.binary: which operands are traced tensors matters
        a_traced, b_traced = (y is not None, True) if swap else (True, y is not None)
        if not a_traced or np.asarray(a).dtype.kind == "f":
            a = np.abs(a) + 0.5
        if b_traced:
            b = np.clip(b, -3, 3)
        if np.asarray(a).dtype.kind != "f" and np.asarray(b).dtype.kind != "f":
            return np.asarray(a) ** b
        return np.power(_f(a), b)
    if op == "/":
        return np.true_divide(a, b)
    fn = {"+": np.add, "-": np.subtract, "*": np.multiply, "max": np.maximum,
          "min": np.minimum, "<": np.less, "<=": np.less_equal, ">": np.greater,
          ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal, "&": np.logical_and,
          "|": np.logical_or, "^": np.logical_xor}[op]
    return fn(a, b)


def where(c, x, y=None, *, const=None):
    return np.where(c, x, y if y is not None else const)


def invert(x):
    return ~x


def astype(x, dtype, via="method"):
    if dtype in ("int32", "int64", "bool") and x.dtype.kind == "f":
        x = np.clip(x, -1000, 1000)
    return x.astype(dtype)


def reduce(x, *, op, axis=None, keepdims=False, method=False, ddof=0, dtype=None):
    if op == "prod" and x.dtype.kind == "f":
        x = np.clip(x, -2.0, 2.0)
    if dtype is not None:
        x = x.astype(dtype)
    if op == "var":
        return np.var(_f(x), axis=axis, ddof=ddof, keepdims=keepdims)
    if op == "argmax":
        return np.argmax(x, axis=axis, keepdims=keepdims)
    if op == "logsumexp":
        x = _f(x).astype(np.float64)
        m = np.max(x, axis=axis, keepdims=True)
        s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        return s if keepdims else np.squeeze(s, axis=axis if axis is not None else None)
    if op == "mean":
        return np.mean(_f(x), axis=axis, keepdims=keepdims)
    return getattr(np, op)(x, axis=axis, keepdims=keepdims)


def reshape(x, shape, via="method"):
    return np.reshape(x, shape)


def transpose(x, perm=None, via="fn"):
    if via == "mT":
        return np.swapaxes(x, -1, -2)
    return np.transpose(x, None if via == "T" else perm)


def expand_dims(x, axis):
    return np.expand_dims(x, axis)


def squeeze(x, axis=None, via="fn"):
    return np.squeeze(x, axis)


def broadcast_to(x, shape):
    return np.broadcast_to(x, shape)


def concatenate(*xs, axis=0, const=None):
    return np.concatenate(list(xs) + ([const] if const is not None else []), axis=axis)


def stack(*xs, axis=0):
    return np.stack(xs, axis=axis)


def split(x, sections, axis=0):
    return np.split(x, sections, axis=axis)


def getitem(x, idx=None, *, key):
    key = tuple(idx if isinstance(k, str) else k for k in key)
    return np.asarray(x[key if len(key) != 1 else key[0]])


def take(x, idx=None, *, const=None, axis=None):
    return np.take(x, idx if idx is not None else const, axis=axis)


_ACT = {"relu": UNARY["relu"], "gelu": UNARY["gelu"], "tanh": np.tanh,
        "sigmoid": UNARY["sigmoid"], None: None}


def matmul(a, b, bias=None, *, bias_const=None, ta=False, tb=False, via="@", act=None,
           scale=None):
    if ta:
        a = np.swapaxes(a, -1, -2)
    if tb:
        b = np.swapaxes(b, -1, -2)
    y = np.dot(a, b) if via in ("dot", "method") else np.matmul(a, b)
    if bias is not None or bias_const is not None:
        y = y + (bias if bias is not None else bias_const)
    if act is not None:
        y = _ACT[act](y)
    if scale is not None:
        y = y * scale
    return y


def softmax(x, axis=-1, log=False):
    x = _f(x)
    s = x - np.max(x, axis=axis, keepdims=True)
    if log:
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    e = np.exp(s)
    return e / np.sum(e, axis=axis, keepdims=True)


def layer_norm(x, w=None, b=None, eps=1e-5):
    d = x - x.mean(-1, keepdims=True)
    y = d / np.sqrt((d * d).mean(-1, keepdims=True) + eps)
    y = y * w if w is not None else y
    return y + b if b is not None else y


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    # The windowing itself is the IR's reference; what is checked here is the frontend's
    # handling of the int-or-pair options and the bias.
    attrs = {"stride": _pair(stride), "padding": _pair(padding), "dilation": _pair(dilation),
             "groups": groups}
    y = OPS["conv2d"].ref([x, w.astype(x.dtype)], attrs)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def pool(x, *, op, kernel_size, stride=None, padding=0):
    k = _pair(kernel_size)
    attrs = {"kernel": k, "stride": k if stride is None else _pair(stride),
             "padding": _pair(padding)}
    return OPS[f"{op}_pool2d"].ref([_f(x) if op == "avg" else x], attrs)


def cross_entropy(logits, labels=None, *, const=None):
    labels = labels if labels is not None else const
    ls = softmax(logits, -1, log=True)
    return -np.mean(ls[np.arange(len(labels)), labels])


def creation(like, *, op, dtype=None):
    if op == "arange":
        n = like.shape[-1] if like.ndim else 1
        return like + np.arange(n, dtype=dtype or np.int64)
    if op == "full":
        return like * np.full(like.shape, 3, dtype or np.int64)
    return like + getattr(np, op)(like.shape, dtype or np.float32)


NP_STEPS = {f.__name__: f for f in (
    unary, binary, where, invert, astype, reduce, reshape, transpose, expand_dims, squeeze,
    broadcast_to, concatenate, stack, split, getitem, take, matmul, softmax, layer_norm, conv2d,
    pool, cross_entropy, creation)}


def replay(prog, args) -> list[np.ndarray]:
    """prog's outputs computed by NumPy on `args`, flattened in pytree order."""
    vals, it = [], iter(args)
    for step in prog.steps:
        if step[0] == "input":
            vals.append(np.asarray(next(it)))
            continue
        name, ids, params = step[:3]
        out = NP_STEPS[name](*[vals[i] if i is not None else None for i in ids], **params)
        vals.extend([np.asarray(o) for o in out] if isinstance(out, list) else
                    [np.asarray(out)])
    return _flat(prog.outputs, vals)


def _flat(tree, vals):
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in _flat(tree[k], vals)]
    if isinstance(tree, (list, tuple)):
        return [x for t in tree for x in _flat(t, vals)]
    return [vals[tree]]
