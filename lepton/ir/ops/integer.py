"""Integer elementwise ops: floor division and remainder (NumPy's `//` and `%`, on floats too),
bitwise and/or/xor, and shifts. Inputs broadcast and share one dtype (integer; bool too for the
bitwise ops). Only `mod` of floats has a gradient (1 for a, -(a // b) for b, as JAX's rem);
floor division is piecewise constant, and the rest are integer-only.

Division by zero gives 0, and the most negative value // -1 wraps to itself, as NumPy gives
(with a warning) and compiled code gives without trapping. A shift by the width or more (or by
a negative amount, read as unsigned) gives 0, or -1 for a negative value shifted right, as
NumPy's shifts do.
"""
from __future__ import annotations

import numpy as np

from ..types import TensorType, bool_
from .base import NONDIFF, OpDef, broadcast_shapes, same_dtype


def _integer(name, bools, floats=False):
    def infer(types, attrs):
        d = same_dtype(types)
        if not (d.is_int or (bools and d == bool_) or (floats and d.is_float)):
            what = "integer or float" if floats else "integer or bool" if bools else "integer"
            raise TypeError(f"{name} needs {what} inputs, got "
                            f"{', '.join(str(t) for t in types)}")
        return TensorType(d, broadcast_shapes(*(t.shape for t in types)))
    return infer


def _ref(f):
    def ref(xs, attrs):
        with np.errstate(all="ignore"):
            return np.asarray(f(*xs)).astype(np.result_type(*xs), copy=False)
    return ref


def _shift(left):
    def f(x, y):
        bits = x.dtype.itemsize * 8
        amount = y.astype(np.uint64) if y.dtype.kind == "i" else y    # a negative one is huge
        big = amount >= bits
        safe = np.where(big, 0, y).astype(x.dtype)
        if left:
            return np.where(big, np.zeros((), x.dtype), np.left_shift(x, safe))
        over = np.where(x < 0, np.array(-1).astype(x.dtype), np.zeros((), x.dtype))
        return np.where(big, over, np.right_shift(x, safe))
    return f


def _mod_vjp(e, out, ct):
    a, b = out.inputs
    db = e.neg(e.mul(ct, e.op("floordiv", a, b)))
    return e.sum_to(ct, a.shape), e.sum_to(db, b.shape)


def _op(name, f, bools=False, floats=False, vjp=NONDIFF):
    return OpDef(name, "elementwise", 2, (), _integer(name, bools, floats), _ref(f), vjp)


INTEGER = [
    _op("floordiv", np.floor_divide, floats=True),
    _op("mod", np.remainder, floats=True, vjp=_mod_vjp),
    _op("bitwise_and", np.bitwise_and, bools=True),
    _op("bitwise_or", np.bitwise_or, bools=True),
    _op("bitwise_xor", np.bitwise_xor, bools=True),
    _op("shl", _shift(True)),
    _op("shr", _shift(False)),
]
