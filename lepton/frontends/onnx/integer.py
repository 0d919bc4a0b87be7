"""Integer ONNX ops on the IR's exact integer ops: BitShift, BitwiseAnd/Or/Xor/Not, and the
integer forms of Div and Mod (no detour through float64, so exact over all of int64/uint64).

    >>> truncated_divide(a, b)   # integer Div: toward zero, as C and onnxruntime
    >>> c_remainder(a, b)        # Mod fmod=1 (the dividend's sign); fmod=0 is lp.remainder

A zero divisor gives 0 (the IR's rule; ONNX leaves it undefined).
"""
from __future__ import annotations

from .. import ops
from ..tensor import Tensor, cast


def _ints(n, *xs: Tensor) -> None:
    for x in xs:
        if not x.dtype.is_int:
            n.invalid(f"needs integer tensors, got {x.type}", TypeError)


def bit_shift(n) -> Tensor:
    a, b = n.x(0), n.x(1)
    _ints(n, a, b)
    direction = n.attr("direction")
    if direction == "LEFT":
        return ops.left_shift(a, b)
    if direction == "RIGHT":
        return ops.right_shift(a, b)
    return n.invalid(f"direction must be 'LEFT' or 'RIGHT', got {direction!r}")


def bitwise(f):
    """BitwiseAnd/Or/Xor on two integer tensors."""
    def rule(n) -> Tensor:
        a, b = n.x(0), n.x(1)
        _ints(n, a, b)
        return f(a, b)
    return rule


def bitwise_not(n) -> Tensor:
    x = n.x(0)
    _ints(n, x)
    return ops.invert(x)


def _signs_differ(r: Tensor, a: Tensor) -> Tensor:
    """r != 0 and r, a of opposite signs (signed types)."""
    return (r != 0) & ((r < 0) != (a < 0))


def truncated_divide(a: Tensor, b: Tensor) -> Tensor:
    """a / b rounded toward zero, for integers (MIN / -1 wraps to MIN): the floor quotient,
    plus 1 where the remainder is non-zero and a, b have opposite signs."""
    q = ops.floor_divide(a, b)
    if a.dtype.unsigned:
        return q
    return q + cast(_signs_differ(ops.remainder(a, b), a), q.dtype)   # r has b's sign


def c_remainder(a: Tensor, b: Tensor) -> Tensor:
    """C's a % b for integers: the dividend's sign (a - trunc(a / b) * b)."""
    r = ops.remainder(a, b)   # the divisor's sign; differs from C's by b where signs differ
    if a.dtype.unsigned:
        return r
    return ops.where(_signs_differ(r, a), r - b, r)
