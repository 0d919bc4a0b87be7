"""ONNX Cast and CastLike, with Cast-19's `saturate` for the 8-bit float targets.

Lepton's `cast` is NumPy's `astype` (ml_dtypes' for the 8-bit floats): it never saturates, so a
value beyond the target's range becomes infinity (float8_e5m2) or NaN (the others), which is
ONNX's `saturate=0`. `saturate=1` (the default) clamps first, as the ONNX reference does
(`np.clip(x, finfo.min, finfo.max).astype(to)`): out-of-range values and infinities become the
largest finite value with their sign, NaN stays NaN:

    Cast(to=FLOAT8E4M3FN)(1e4)              -> 448      (saturate=0: NaN)
    Cast(to=FLOAT8E5M2, saturate=0)(inf)    -> inf      (saturate=1: 57344)

The clamp is computed in float32 (float64 stays float64): the bounds are exact there, and a
float32 holds every value of the other sources that is not already beyond every 8-bit range.
"""
from __future__ import annotations

from ...ir.types import FLOAT8, DType, float32, float64
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


def cast_(n) -> Tensor:
    return saturating_cast(n.x(0), onnx_dtype(n, n.attr("to")), bool(n.attr("saturate", 1)))


def cast_like(n) -> Tensor:
    return saturating_cast(n.x(0), n.x(1).dtype, bool(n.attr("saturate", 1)))
