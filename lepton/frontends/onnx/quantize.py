"""ONNX QuantizeLinear and DequantizeLinear (opsets 10 to 25), as the ONNX reference computes
them, to and from the 8- and 16-bit integers, int4/uint4/int2/uint2 and the 8- and 4-bit floats:

    QuantizeLinear(x, scale, zero_point)   y = clip(rint(x / scale) + zero_point, lo, hi)
                                           (8-bit floats: x / scale cast, saturating unless
                                           saturate=0; float4: x / scale + zero_point cast)
    DequantizeLinear(x, scale, zero_point) y = (x - zero_point) * scale   (in float32, then
                                           the scale's dtype or output_dtype)

The integer products (MatMulInteger, ConvInteger, and QLinearMatMul, QLinearConv, which then
requantize) subtract the zero points in int32 and accumulate exactly (a convolution in float64,
exact below 2**53), as the reference:

    QLinearMatMul: y = clip(rint((a - a_zero) @ (b - b_zero) * (a_scale * b_scale / y_scale)
                                 + y_zero), y's range)

The scale and zero point are scalars (per tensor), vectors along `axis` (per axis), or, with
`block_size`, x's shape with `axis` divided into blocks of that size (blocked). The integer
rounding is to nearest even (np.rint), clipped in float32 (float64 stays float64) before the
cast, so no value out of the integer's range is ever converted. The 8-bit floats' zero point
must be zero, and is not read (as the reference).
"""
from __future__ import annotations

from ...ir.types import FLOAT8, DType, float32, float64, int32, uint8
from .. import ops, shapes
from .neural import conv_of
from ..tensor import Tensor, cast
from .casts import onnx_dtype, saturating_cast
from .elementwise import round_half_even


def _along(v: Tensor, x: Tensor, axis: int, block_size: int) -> Tensor:
    """A scale or zero point shaped to broadcast against x (onnx's reshape_input)."""
    if v.ndim == 0 or v.size == 1:
        return v.reshape(())
    ax = shapes.norm_axis(axis, x.ndim, "QuantizeLinear")
    if not block_size:
        dims = [1] * x.ndim
        dims[ax] = v.size
        return v.reshape(tuple(dims))
    # blocked: every entry repeated block_size times along the axis, the last block cut short
    wide = v.shape[:ax + 1] + (block_size,) + v.shape[ax + 1:]
    rep = ops.broadcast_to(v.reshape(v.shape[:ax + 1] + (1,) + v.shape[ax + 1:]), wide)
    rep = rep.reshape(v.shape[:ax] + (v.shape[ax] * block_size,) + v.shape[ax + 1:])
    return rep[(slice(None),) * ax + (slice(0, x.shape[ax]),)]


def _integer_range(d: DType) -> tuple[int, int]:
    if d.unsigned:
        return 0, (1 << d.bits) - 1
    return -(1 << (d.bits - 1)), (1 << (d.bits - 1)) - 1


def quantize_linear(n) -> Tensor:
    x, scale, zero = n.x(0), n.x(1), n.opt(2)
    axis, block = n.attr("axis", 1), n.attr("block_size", 0)
    if zero is not None:
        out = zero.dtype
    else:
        out = onnx_dtype(n, n.attr("output_dtype")) if n.attr("output_dtype") else uint8
    precision = n.attr("precision", 0)
    if precision:
        p = onnx_dtype(n, precision)
        x, scale = cast(x, p), cast(scale, p)
    q = x / _along(scale, x, axis, block)
    if out in FLOAT8:
        return saturating_cast(q, out, bool(n.attr("saturate", 1)))
    if out.is_float:      # float4: no NaN, no infinity, saturates by itself
        if zero is not None:
            q = q + cast(_along(zero, x, axis, block), q.dtype)
        return cast(q, out)
    if not out.is_int:
        n.unsupported(f"quantizing to {out} is not supported")
    q = cast(q, float64 if q.dtype == float64 else float32)
    r = round_half_even(q)
    if zero is not None:
        r = r + cast(_along(zero, x, axis, block), r.dtype)
    lo, hi = _integer_range(out)
    return cast(ops.minimum(ops.maximum(r, float(lo)), float(hi)), out)


def dequantize_linear(n) -> Tensor:
    x, scale, zero = n.x(0), n.x(1), n.opt(2)
    axis, block = n.attr("axis", 1), n.attr("block_size", 0)
    out = onnx_dtype(n, n.attr("output_dtype")) if n.attr("output_dtype") else scale.dtype
    dx = cast(x, float32)
    if zero is not None and not x.dtype.is_float:
        if zero.dtype != x.dtype:
            n.invalid(f"zero point of dtype {zero.dtype} for input of dtype {x.dtype}")
        dx = dx - cast(_along(zero, x, axis, block), float32)
    return cast(dx * _along(scale, x, axis, block), out)



def _centred(x: Tensor, zero: Tensor | None, per_row: bool = False) -> Tensor:
    """x - zero in int32; `per_row`: a 1-d zero holds one entry per row of x (a weight's
    output channels), otherwise it broadcasts as NumPy would."""
    x = cast(x, int32)
    if zero is None:
        return x
    zero = cast(zero, int32)
    if per_row and zero.ndim == 1 and zero.size > 1:
        zero = zero.reshape((zero.size,) + (1,) * (x.ndim - 1))
    return x - zero


def _requantized(acc: Tensor, factor: Tensor, zero: Tensor | None, out: DType) -> Tensor:
    """clip(rint(acc * factor + zero)) in out, computed in float64 as the reference does."""
    y = cast(acc, float64) * cast(factor, float64)
    if zero is not None:
        y = y + cast(zero, float64)
        out = zero.dtype
    lo, hi = _integer_range(out)
    return cast(ops.minimum(ops.maximum(round_half_even(y), float(lo)), float(hi)), out)


def _integer_conv(n, x: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """The int32 convolution of int32 x and w (and bias), exact: in float64."""
    b = None if bias is None else cast(bias, float64)
    return cast(conv_of(n, cast(x, float64), cast(w, float64), b), int32)


def matmul_integer(n) -> Tensor:
    return ops.matmul(_centred(n.x(0), n.opt(2)), _centred(n.x(1), n.opt(3)))


def conv_integer(n) -> Tensor:
    return _integer_conv(n, _centred(n.x(0), n.opt(2)), _centred(n.x(1), n.opt(3), True))


def qlinear_matmul(n) -> Tensor:
    a, b = n.x(0), n.x(3)
    acc = ops.matmul(_centred(a, n.opt(2)), _centred(b, n.opt(5)))
    return _requantized(acc, n.x(1) * n.x(4) / n.x(6), n.opt(7), a.dtype)


def qlinear_conv(n) -> Tensor:
    x, w, w_scale = n.x(0), n.x(3), n.x(4)
    acc = _integer_conv(n, _centred(x, n.opt(2)), _centred(w, n.opt(5), True), n.opt(8))
    if w_scale.ndim == 1 and w_scale.size > 1:    # per output channel
        w_scale = w_scale.reshape((1, w_scale.size) + (1,) * (x.ndim - 2))
    return _requantized(acc, n.x(1) * w_scale / n.x(6), n.opt(7), x.dtype)
