"""Step kinds for random Lepton models: elementwise ops, casts, reductions, shape ops and
indexing (linear algebra and neural ops are in fuzz_nn.py, which also has the `programs`
strategy that draws whole models from all the kinds):

    >>> k_binary(builder)      # draws x (op) y for a value x made so far, y another value,
    ...                        # a new input, a Python/NumPy scalar or a NumPy array

One function per kind draws its operands among the values made so far (or new inputs and NumPy
constants) and parameters valid for their shapes; a kind that finds nothing to apply to adds a
fresh input instead. The program (tests/fuzz_program.py) records what was drawn.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from fuzz_ops import EXACT_UNARY, SMOOTH_UNARY, UNARY
from fuzz_program import (DTYPES, FLOATS, MAX_SIZE, SMALL, Builder, broadcast_partner,
                          broadcasts, factor)


def _fresh(b: Builder, float_only=False):
    return b.new_input(b.shape(), b.choice(b.floats) if float_only or b.grad else b.dtype())


def _axis(b: Builder, ndim: int) -> int:
    a = b.d(st.integers(0, ndim - 1))
    return a - ndim if b.flag(0.4) else a


# -- elementwise -------------------------------------------------------------------------------
def k_unary(b: Builder):
    i = b.pick(lambda v: v.t.dtype.is_float) if b.grad else b.pick()
    if i is None:
        return _fresh(b)
    fn = b.choice(SMOOTH_UNARY if b.grad else sorted(UNARY))
    if fn in ("neg", "negative") and b.v(i).dtype.name == "bool":
        fn = "abs"
    b.add("unary", [i], exact=b.vals[i].exact and fn in EXACT_UNARY, fn=fn)


_ARITH = ("+", "-", "*", "/", "**", "max", "min")
_COMPARE = ("<", "<=", ">", ">=", "==", "!=")
_LOGIC = ("&", "|", "^")


def _scalar(b: Builder, kind=None):
    kind = kind or b.choice(("int", "float", "bool", "np_f32", "np_f64", "np_i32", "np_i64"))
    if b.grad and kind in ("int", "bool", "np_i32", "np_i64"):
        kind = "float"
    x = b.choice((-2, -1, 0, 1, 2, 3, 7)) if kind != "float" else b.choice(
        (-1.5, -0.5, 0.0, 0.25, 1.0, 2.5, 1e-3))
    return {"int": int, "float": float, "bool": bool, "np_f32": np.float32,
            "np_f64": np.float64, "np_i32": np.int32, "np_i64": np.int64}[kind](x)


def k_binary(b: Builder):
    i = b.pick(lambda v: v.t.dtype.is_float) if b.grad else b.pick()
    if i is None:
        return _fresh(b)
    x = b.v(i)
    xd = x.dtype.name
    ops = _ARITH if b.grad else _ARITH + (_COMPARE if b.vals[i].exact else ()) + (
        _LOGIC if xd == "bool" else ())
    op = b.choice(ops)
    if op == "-" and xd == "bool":
        op = "+"
    params = {"op": op, "via": b.choice(("op", "fn")), "swap": b.flag(0.3)}
    need_exact = op in _COMPARE
    want_dtype = "bool" if op in _LOGIC else None
    if op == "**" and xd != "bool" and not x.dtype.is_float:
        # int ** a non-negative Python int, the only integer power NumPy-like code allows
        params.update(const=b.choice((0, 1, 2, 3)), swap=False)
        return b.add("binary", [i, None], **params)
    if op == "**" and xd == "bool":
        params["op"] = op = "*"
    mode = b.choice(("value", "input", "scalar", "array"))
    if mode == "value":
        j = b.pick(lambda v: broadcasts(v.t.shape, x.shape) and (v.exact or not need_exact)
                   and (want_dtype is None or v.t.dtype.name == "bool")
                   and (not b.grad or v.t.dtype.is_float))
        if j is None:
            mode = "input"
    if mode == "input":
        d = want_dtype or (b.choice(b.floats) if b.grad else b.dtype())
        j = b.new_input(broadcast_partner(b, x.shape), d)
    if mode in ("value", "input"):
        if op == "-" and xd == "bool" == b.v(j).dtype.name:
            params["op"] = "+"
        if op == "**" and not (x.dtype.is_float or b.v(j).dtype.is_float):
            params["op"] = "*"
        divisor = j if not params["swap"] else i
        params["guard"] = op == "/" and not b.vals[divisor].exact
        return b.add("binary", [i, j], exact=b.vals[i].exact and b.vals[j].exact
                     and op in ("max", "min"), **params)
    if mode == "scalar":
        c = _scalar(b, "bool" if want_dtype else None)
    else:
        d = want_dtype or (b.choice(b.floats) if b.grad else b.dtype())
        c = b.const(broadcast_partner(b, x.shape), d)
    cd = np.asarray(c).dtype
    if op == "-" and xd == "bool" and cd == bool:
        params["op"] = "+"
    if op == "**" and not x.dtype.is_float and cd.kind != "f":
        params["op"] = "*"
    params["guard"] = op == "/" and params["swap"] and not b.vals[i].exact
    b.add("binary", [i, None], exact=b.vals[i].exact and op in ("max", "min"), const=c, **params)


def k_where(b: Builder):
    c = b.pick(lambda v: v.t.dtype.name == "bool")
    if c is None:
        x = b.pick(lambda v: v.exact and v.t.dtype.name != "bool")
        if x is None:
            return _fresh(b)
        (c,) = b.add("binary", [x, None], op=b.choice(_COMPARE), const=_scalar(b, "float"))
    cs = b.v(c).shape
    ok = (lambda v: v.t.dtype.is_float) if b.grad else (lambda v: True)
    i = b.pick(lambda v: ok(v) and broadcasts(v.t.shape, cs))
    if i is None:
        i = b.new_input(broadcast_partner(b, cs), b.dtype())
    both = np.broadcast_shapes(cs, b.v(i).shape)
    j = b.pick(lambda v: ok(v) and broadcasts(v.t.shape, both)) if b.flag(0.6) else None
    if j is None:
        return b.add("where", [c, i, None], exact=b.vals[i].exact, const=_scalar(b))
    b.add("where", [c, i, j], exact=b.vals[i].exact and b.vals[j].exact)


def k_invert(b: Builder):
    i = b.pick(lambda v: v.t.dtype.name == "bool")
    if i is None:
        return k_unary(b)
    b.add("invert", [i])


def k_astype(b: Builder):
    i = b.pick(lambda v: v.t.dtype.is_float) if b.grad else b.pick()
    if i is None:
        return _fresh(b)
    src = b.v(i).dtype
    targets = b.floats if b.grad or (src.is_float and not b.vals[i].exact) else DTYPES
    b.add("astype", [i], exact=b.vals[i].exact, dtype=b.choice(targets),
          via=b.choice(("method", "np")))


# -- reductions --------------------------------------------------------------------------------
def k_reduce(b: Builder):
    i = b.pick(lambda v: v.t.dtype.is_float) if b.grad else b.pick()
    if i is None:
        return _fresh(b)
    x, exact = b.v(i), b.vals[i].exact
    ops = ["sum", "mean", "max", "min", "prod", "var", "logsumexp"]
    if not b.grad and (exact or not x.dtype.is_float):
        ops.append("argmax")
    op = b.choice(ops)
    n = x.ndim
    if op == "argmax" or n == 0:
        axis = None if n == 0 or b.flag(0.3) else _axis(b, n)
    else:
        form = b.choice(("none", "int", "tuple", "empty"))
        if form == "none":
            axis = None
        elif form == "int":
            axis = _axis(b, n)
        elif form == "empty":
            axis = ()
        else:
            axes = b.d(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
            axis = tuple(a - n if b.flag(0.3) else a for a in axes)
    axes = range(n) if axis is None else [a % n for a in (
        axis if isinstance(axis, tuple) else (axis,))]
    count = math.prod(x.shape[a] for a in axes)
    if op in ("max", "min", "argmax", "logsumexp") and count == 0:
        op = "sum"
    if op == "prod" and x.dtype.is_float and count > 64:
        op = "sum"
    params = {"op": op, "axis": axis, "keepdims": b.flag(0.4), "method": b.flag(0.3)}
    if op == "var":
        params["ddof"] = b.choice((0, 1))
    if op in ("sum", "prod", "mean") and not params["method"] and b.flag(0.2):
        params["dtype"] = b.choice(("float32", "float64", "int64") if exact or not
                                   x.dtype.is_float else b.floats)
        if b.grad or op == "mean":
            params["dtype"] = b.choice(b.floats)
    b.add("reduce", [i], exact=exact and op in ("max", "min"), **params)


def k_reduce_combine(b: Builder):
    """x (op) reduce(x) over some axes with keepdims, the shape of softmax and layer_norm:
    a row (or column) value broadcast back against the full one."""
    ok = (lambda v: v.t.dtype.is_float) if b.grad else (lambda v: v.t.dtype.name != "bool")
    i = b.pick(lambda v: ok(v) and v.t.ndim >= 1 and v.t.size > 0)
    if i is None:
        return _fresh(b, float_only=True)
    n = b.v(i).ndim
    k = b.d(st.integers(1, n))
    axes = tuple(range(n - k, n)) if b.flag(0.6) else tuple(range(k))  # trailing or leading
    axis = axes if len(axes) > 1 or b.flag(0.5) else axes[0] - (n if b.flag(0.5) else 0)
    op = b.choice(("sum", "max", "min", "mean") + (() if b.grad else ("prod",)))
    (r,) = b.add("reduce", [i], exact=b.vals[i].exact and op in ("max", "min"), op=op,
                 axis=axis, keepdims=True)
    if b.flag(0.3):
        (r,) = b.add("unary", [r], fn=b.choice(("exp", "sqrt_eps", "rsqrt", "neg", "square")))
    op, swap = b.choice(("-", "*", "/", "+", "max")), b.flag(0.3)
    b.add("binary", [i, r], op=op, swap=swap, via="op",
          guard=op == "/" and not b.vals[i if swap else r].exact)


# -- shapes ------------------------------------------------------------------------------------
def k_reshape(b: Builder):
    i = b.pick()
    if i is None:
        return _fresh(b)
    x = b.v(i)
    ndim = b.d(st.integers(0, 4))
    if x.size == 0:
        shape = list(x.shape[::-1]) or [0]
    else:
        dims = [1] * max(ndim, 1)
        for p in factor(x.size):
            dims[b.d(st.integers(0, len(dims) - 1))] *= p
        shape = dims if ndim or x.size != 1 else []
        if shape and b.flag(0.3):
            shape[b.d(st.integers(0, len(shape) - 1))] = -1
    b.add("reshape", [i], exact=b.vals[i].exact, shape=tuple(shape),
          via=b.choice(("method", "fn")))


def k_transpose(b: Builder):
    i = b.pick(lambda v: v.t.ndim >= 1)
    if i is None:
        return _fresh(b)
    n = b.v(i).ndim
    via = b.choice(("fn", "method", "T", "mT"))
    if via == "mT" and n < 2:
        via = "T"
    perm = None
    if via in ("fn", "method") and b.flag(0.8):
        perm = tuple(a - n if b.flag(0.3) else a for a in b.d(st.permutations(range(n))))
    b.add("transpose", [i], exact=b.vals[i].exact, perm=perm, via=via)


def k_expand_squeeze(b: Builder):
    i = b.pick()
    if i is None:
        return _fresh(b)
    x = b.v(i)
    ones = [a for a, s in enumerate(x.shape) if s == 1]
    if ones and b.flag(0.5):
        axis = None if b.flag(0.4) else b.choice(ones) - (x.ndim if b.flag(0.5) else 0)
        return b.add("squeeze", [i], exact=b.vals[i].exact, axis=axis,
                     via=b.choice(("fn", "method")))
    if x.ndim >= 4:
        return k_reshape(b)
    if b.flag(0.3) and x.ndim <= 2:
        axis = tuple(sorted(b.d(st.lists(st.integers(0, x.ndim + 1), min_size=2, max_size=2,
                                         unique=True))))
    else:
        axis = _axis(b, x.ndim + 1)
    b.add("expand_dims", [i], exact=b.vals[i].exact, axis=axis)


def k_broadcast_to(b: Builder):
    i = b.pick(lambda v: v.t.ndim < 4)
    if i is None:
        return _fresh(b)
    x = b.v(i)
    shape = [b.choice(SMALL) if s == 1 else s for s in x.shape]
    if b.flag(0.5):
        shape = [b.choice((1, 2, 3, 5))] + shape
    if math.prod(shape) > MAX_SIZE:
        shape = list(x.shape)
    b.add("broadcast_to", [i], exact=b.vals[i].exact, shape=tuple(shape))


def k_concatenate(b: Builder):
    i = b.pick(lambda v: v.t.ndim >= 1 and v.t.size <= MAX_SIZE // 3)
    if i is None:
        return _fresh(b)
    x = b.v(i)
    ax = _axis(b, x.ndim)
    a = ax % x.ndim
    same = lambda v: (v.t.ndim == x.ndim and all(  # noqa: E731
        p == q for k, (p, q) in enumerate(zip(v.t.shape, x.shape)) if k != a)
        and v.t.size <= MAX_SIZE // 3 and (not b.grad or v.t.dtype.is_float))
    ids = [i] + [b.pick(same) for _ in range(b.d(st.integers(0, 2)))]
    const = None
    if b.flag(0.3):
        shape = list(x.shape)
        shape[a] = b.choice((1, 2, 3))
        const = b.const(tuple(shape), b.choice(b.floats) if b.grad else b.dtype())
    exact = all(b.vals[j].exact for j in ids)
    b.add("concatenate", ids, exact=exact, axis=None if b.flag(0.1) else ax, const=const)


def k_stack(b: Builder):
    i = b.pick(lambda v: v.t.size <= MAX_SIZE // 3)
    if i is None:
        return _fresh(b)
    x = b.v(i)
    ids = [i] + [b.pick(lambda v: v.t.shape == x.shape and (not b.grad or v.t.dtype.is_float))
                 for _ in range(b.d(st.integers(0, 2)))]
    b.add("stack", ids, exact=all(b.vals[j].exact for j in ids), axis=_axis(b, x.ndim + 1))


def k_split(b: Builder):
    i = b.pick(lambda v: v.t.ndim >= 1)
    if i is None:
        return _fresh(b)
    x = b.v(i)
    ax = _axis(b, x.ndim)
    n = x.shape[ax]
    if b.flag(0.5):
        sections = b.choice([k for k in range(1, min(n, 6) + 1) if n % k == 0] or [1])
    else:
        sections = sorted(b.d(st.lists(st.integers(0, n + 2), max_size=3)))
    b.add("split", [i], exact=b.vals[i].exact, sections=sections, axis=ax)


def _slice(b: Builder, n: int):
    bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
    step = b.choice((None, 1, 1, 2, 3, -1, -1, -2, -3))
    return slice(b.d(bound), b.d(bound), step)


def _index_array(b: Builder, n: int):
    """An integer index into an axis of size n: a NumPy array, a list or a traced input."""
    shape = b.choice(((), (1,), (3,), (2, 2), (5,), (0,)))
    kind = b.choice(("array", "list", "traced"))
    if kind == "traced":
        j = b.new_input(shape, b.choice(("int32", "int64")), data=("range", -n, n))
        return "IDX", j
    arr = b.rng.integers(-n, n, shape)
    if kind == "list" and arr.ndim == 1:
        return arr.tolist(), None
    return arr.astype(b.choice((np.int32, np.int64))), None


def k_getitem(b: Builder):
    i = b.pick()
    if i is None:
        return _fresh(b)
    x = b.v(i)
    key, idx, array_at = [], None, None
    for n in x.shape:
        if b.flag(0.15):
            key.append(None)
        kind = b.choice(("int", "slice", "slice", "array") if n else ("slice",))
        if kind == "array" and array_at is None:
            k, idx = _index_array(b, n)
            array_at = len(key)
            key.append(k)
        elif kind == "int":
            key.append(b.d(st.integers(-n, n - 1)))
        else:
            key.append(_slice(b, n))
    if b.flag(0.2):  # an Ellipsis standing for a run of axes taken whole
        p = b.d(st.integers(0, len(key)))
        q = b.d(st.integers(p, len(key)))
        if array_at is None or not p <= array_at < q:
            key = key[:p] + [Ellipsis] + key[q:]
    else:  # trailing axes left out are taken whole
        key = key[:b.d(st.integers(0, len(key)))]
    if not any(isinstance(k, str) for k in key):
        idx = None
    if b.flag(0.15):
        key.append(None)
    b.add("getitem", [i, idx], exact=b.vals[i].exact, key=tuple(key))


def k_take(b: Builder):
    i = b.pick(lambda v: v.t.size > 0)
    if i is None:
        return _fresh(b)
    x = b.v(i)
    axis = None if x.ndim == 0 or b.flag(0.3) else _axis(b, x.ndim)
    n = x.size if axis is None else x.shape[axis]
    k, j = _index_array(b, n)
    if isinstance(k, str):
        return b.add("take", [i, j], exact=b.vals[i].exact, axis=axis)
    b.add("take", [i, None], exact=b.vals[i].exact, const=k, axis=axis)
