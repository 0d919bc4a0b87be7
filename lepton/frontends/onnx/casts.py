"""ONNX Cast and CastLike, with Cast-19's `saturate` for the 8-bit float targets, and BitCast.

Lepton's `cast` is NumPy's `astype` (ml_dtypes' for the 8-bit floats): it never saturates, so a
value beyond the target's range becomes infinity (float8_e5m2) or NaN (the others), which is
ONNX's `saturate=0`. `saturate=1` (the default) clamps first, as the ONNX reference does
(`np.clip(x, finfo.min, finfo.max).astype(to)`): out-of-range values and infinities become the
largest finite value with their sign, NaN stays NaN:

    Cast(to=FLOAT8E4M3FN)(1e4)              -> 448      (saturate=0: NaN)
    Cast(to=FLOAT8E5M2, saturate=0)(inf)    -> inf      (saturate=1: 57344)

The clamp is computed in float32 (float64 stays float64): the bounds are exact there, and a
float32 holds every value of the other sources that is not already beyond every 8-bit range.

BitCast (opset 26) is Lepton's `bitcast`: the same bits read as `to`, of the same width (bool
counts its byte, 8 bits; INT4/UINT4/FLOAT4E2M1 are 4 bits, INT2/UINT2 2). Lepton refuses what
the core op refuses: different widths, and a bool target (a byte other than 0 or 1 is no bool).

FLOAT8E8M0 (a power of two, no sign) follows ONNX's own rule (onnx.numpy_helper.to_float8e8m0)
on the float32 value, not the cast's nearest: the sign is dropped, `round_mode` "up" (the
default) takes the next power of two unless the value is one, "down" the power below,
"nearest" the nearer one (ties up); values below 2**-126 give 2**-127 (up: 2**-126 unless 0);
NaN and infinity give NaN, and past 2**127 saturate to it (saturate=0: NaN).
"""
from __future__ import annotations

import numpy as np

from ...ir.types import FLOAT8, DType, float8_e8m0fnu, float32, float64
from .. import ops
from ..tensor import Tensor, cast
from .node import ONNX_DTYPES, onnx_type_name


def onnx_dtype(n, elem_type: int) -> DType:
    """The Lepton dtype of an ONNX element type, or the node refused naming the type."""
    if elem_type not in ONNX_DTYPES:
        n.unsupported(f"element type {onnx_type_name(elem_type)} is not supported")
    return ONNX_DTYPES[elem_type]


def saturating_cast(x: Tensor, to: DType, saturate: bool = True) -> Tensor:
    """x cast to `to`; for an 8-bit float `to` with saturate, clamped to its finite range."""
    if not (saturate and to in FLOAT8) or x.dtype == to:
        return cast(x, to)
    if x.dtype != float64:
        x = cast(x, float32)
    big = to.fmt.max
    return cast(ops.minimum(ops.maximum(x, -big), big), to)


def _f32(v: float) -> np.float32:
    return np.float32(v)


def to_e8m0(x: Tensor, saturate: bool = True, round_mode: str = "up") -> Tensor:
    """x as float8_e8m0fnu by ONNX's rule (above), from float operations only."""
    if round_mode not in ("up", "down", "nearest"):
        raise ValueError(f"round_mode must be 'up', 'down' or 'nearest', got {round_mode!r}")
    top, tiny, small = 2.0 ** 127, 2.0 ** -127, 2.0 ** -126
    ax = ops.abs(cast(x, float32))
    finite = ax < _f32(np.inf)                          # False for inf and NaN
    clamped = ops.minimum(ops.where(finite, ax, _f32(1)), _f32(top))
    near = cast(cast(clamped, float8_e8m0fnu), float32)   # ml_dtypes: nearest, ties up
    down = ops.where(near > clamped, near * _f32(0.5), near)
    if round_mode == "down":
        y = down
    elif round_mode == "up":
        y = ops.where(down == ax, down, down * _f32(2))
    else:
        y = near
    # what saturate=0 gives past 2**127: "up" already has inf there, "nearest" from 1.5 * 2**127
    big = y if round_mode == "up" else ops.where(ax >= _f32(1.5 * top), _f32(np.inf), y)
    if round_mode != "down":                            # past 2**127: saturate or NaN
        y = ops.where(ax > _f32(top), _f32(top) if saturate else big, y)
    if round_mode == "up":
        below = ops.where(ax == _f32(0), _f32(tiny), _f32(small))
    elif round_mode == "nearest":
        below = ops.where(ax > _f32(tiny), _f32(small), _f32(tiny))
    else:
        below = _f32(tiny)
    y = ops.where(ax < _f32(small), below, y)
    return cast(ops.where(finite, y, _f32(np.nan)), float8_e8m0fnu)


def _cast_to(n, x: Tensor, to: DType) -> Tensor:
    saturate = bool(n.attr("saturate", 1))
    if to == float8_e8m0fnu and x.dtype != to:
        return to_e8m0(x, saturate, n.attr("round_mode", "up"))
    return saturating_cast(x, to, saturate)


def cast_(n) -> Tensor:
    return _cast_to(n, n.x(0), onnx_dtype(n, n.attr("to")))


def cast_like(n) -> Tensor:
    return _cast_to(n, n.x(0), n.x(1).dtype)


def bit_cast(n) -> Tensor:
    return ops.bitcast(n.x(0), onnx_dtype(n, n.attr("to")))
