"""8- and 4-bit floats <-> float32 by integer arithmetic on their bits, branch-free (selects
only), for any `FloatFormat` of at most 8 bits (ir/types.py: exponent bits, mantissa bits, bias,
and how it spells NaN and infinity), as ml_dtypes converts them:

    bits = f32_to_minifloat(b, x, fmt)   # i8, rounded to nearest even
    x = minifloat_to_f32(b, bits, fmt)   # exact

A 4-bit float is the low bits of its byte (ml_dtypes' layout), the other bits zero.

Rounding is NumPy's `astype`, never saturating: a value beyond the largest finite one after
rounding becomes infinity where the format has one (e5m2) and NaN otherwise (e4m3fn: 0x7F with
the sign; the fnuz formats: 0x80, their only NaN). fnuz formats have no -0: a result of zero is
+0. A NaN becomes the format's NaN with its sign (e5m2: the quiet 0x7E); an 8-bit NaN becomes
float32's quiet NaN with its sign (fnuz: -NaN, as ml_dtypes gives). float4_e2m1fn has neither
infinity nor NaN: overflow saturates to +-6 and NaN becomes a zero with its sign flipped
(ml_dtypes' choice). float8_e8m0fnu (a power of two, no sign, no zero) has its own two
functions: its byte is float32's exponent field; rounding to the nearest power of two takes
ties up, and zero, negatives, infinity, NaN and overflow become its NaN 0xFF, as ml_dtypes
does. ONNX's saturating casts clip before casting (frontends/onnx/casts.py).

The subnormal results come from one float32 addition of a power of two whose last place is
the format's subnormal step, which rounds to nearest even itself (as halfbits.f32_to_f16).
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import FloatFormat

_F32, _I8, _I32 = ir.FloatType(), ir.IntType(8), ir.IntType(32)
_QUIET_NAN, _INF = 0x7FC00000, 0x7F800000


def _c(v: int) -> ir.Constant:
    return ir.Constant(_I32, v - (1 << 32) if v >= 1 << 31 else v)


def _top(fmt: FloatFormat) -> int:
    """The magnitude bits of the format's all-ones exponent with mantissa 0."""
    return ((1 << fmt.exp_bits) - 1) << fmt.man_bits


def _sign_bit(fmt: FloatFormat) -> int:
    return 1 << (fmt.bits - 1)


def max_code(fmt: FloatFormat) -> int:
    """The magnitude bits of the largest finite value."""
    if fmt.special == "ieee":
        return _top(fmt) - 1
    if fmt.special == "fn":
        return _top(fmt) | ((1 << fmt.man_bits) - 2)
    return _sign_bit(fmt) - 1        # fnuz, finite: every magnitude is a number


def minifloat_to_f32(b: ir.IRBuilder, h, fmt: FloatFormat):
    """An 8- or 4-bit float's bits (i8) as float32, exactly."""
    if fmt.special == "e8m0":
        return _e8m0_to_f32(b, h)
    m, top_bit = fmt.man_bits, _sign_bit(fmt)
    u = b.and_(b.zext(h, _I32), _c(2 * top_bit - 1))
    sign = b.shl(b.and_(u, _c(top_bit)), _c(32 - fmt.bits))
    mag = b.and_(u, _c(top_bit - 1))
    normal = b.add(b.shl(mag, _c(23 - m)), _c((127 - fmt.bias) << 23))     # rebias
    # exponent 0: mantissa * 2**(1 - bias - m), exact in float32
    sub = b.bitcast(b.fmul(b.uitofp(mag, _F32), ir.Constant(_F32, 2.0 ** (1 - fmt.bias - m))),
                    _I32)
    o = b.select(b.icmp_unsigned("<", mag, _c(1 << m)), sub, normal)
    if fmt.special == "ieee":
        top = _c(_top(fmt))
        o = b.select(b.icmp_unsigned("==", mag, top), _c(_INF),
                     b.select(b.icmp_unsigned(">", mag, top), _c(_QUIET_NAN), o))
    elif fmt.special == "fn":
        o = b.select(b.icmp_unsigned("==", mag, _c(top_bit - 1)), _c(_QUIET_NAN), o)
    elif fmt.special == "fnuz":   # 0x80 (the pattern of -0) is NaN, and keeps its sign
        o = b.select(b.icmp_unsigned("==", u, _c(top_bit)), _c(_QUIET_NAN), o)
    return b.bitcast(b.or_(o, sign), _F32)


def f32_to_minifloat(b: ir.IRBuilder, x, fmt: FloatFormat):
    """A float32 rounded to nearest even as an 8- or 4-bit float's bits (i8)."""
    if fmt.special == "e8m0":
        return _f32_to_e8m0(b, x)
    m, shift, top_bit = fmt.man_bits, 23 - fmt.man_bits, _sign_bit(fmt)
    u = b.bitcast(x, _I32)
    sign = b.and_(u, _c(0x80000000))
    a = b.xor(u, sign)                                                      # |x|'s bits
    # normal: round to nearest even at bit `shift`, then rebias the exponent
    odd = b.and_(b.lshr(a, _c(shift)), _c(1))
    rounded = b.lshr(b.add(a, b.add(odd, _c((1 << (shift - 1)) - 1))), _c(shift))
    normal = b.sub(rounded, _c((127 - fmt.bias) << m))
    # below the smallest normal: adding 2**(24 - bias - m) leaves the subnormal in the low bits
    magic = 2 ** (24 - fmt.bias - m)
    magic_bits = (127 + 24 - fmt.bias - m) << 23
    sub = b.sub(b.bitcast(b.fadd(b.bitcast(a, _F32), ir.Constant(_F32, float(magic))), _I32),
                _c(magic_bits))
    code = b.select(b.icmp_unsigned("<", a, _c((128 - fmt.bias) << 23)), sub, normal)
    if fmt.special == "ieee":
        overflow_code, nan_code = _top(fmt), _top(fmt) | (1 << (m - 1))
    elif fmt.special == "fn":
        overflow_code = nan_code = top_bit - 1
    elif fmt.special == "fnuz":
        overflow_code = nan_code = top_bit
    else:                       # finite: saturates; NaN is handled below
        overflow_code = nan_code = max_code(fmt)
    nan = b.icmp_unsigned(">", a, _c(_INF))
    code = b.select(b.icmp_unsigned(">", code, _c(max_code(fmt))), _c(overflow_code), code)
    code = b.select(nan, _c(nan_code), code)
    sign_small = b.lshr(sign, _c(32 - fmt.bits))
    signed = b.or_(code, sign_small)
    if fmt.special == "fnuz":   # no -0; NaN's code already has the sign bit
        signed = b.select(b.icmp_unsigned("==", code, _c(0)), code, signed)
    if fmt.special == "finite":
        signed = b.select(nan, b.xor(sign_small, _c(top_bit)), signed)
    return b.trunc(signed, _I8)


def _e8m0_to_f32(b: ir.IRBuilder, h):
    e = b.zext(h, _I32)
    o = b.select(b.icmp_unsigned("==", e, _c(0)), _c(0x00400000), b.shl(e, _c(23)))  # 2**-127
    return b.bitcast(b.select(b.icmp_unsigned("==", e, _c(0xFF)), _c(_QUIET_NAN), o), _F32)


def _f32_to_e8m0(b: ir.IRBuilder, x):
    u = b.bitcast(x, _I32)
    e, man = b.lshr(u, _c(23)), b.and_(u, _c(0x7FFFFF))   # e has the sign above its 8 bits
    up = b.zext(b.icmp_unsigned(">=", man, _c(0x400000)), _I32)                  # >= 1.5
    sub_up = b.zext(b.icmp_unsigned(">=", man, _c(0x600000)), _I32)  # below 2**-126: 0 or 1
    code = b.select(b.icmp_unsigned("==", e, _c(0)), sub_up, b.add(e, up))
    # negative (the sign makes code > 255), +0, inf, NaN, overflow past 2**127: NaN
    nan = b.or_(b.icmp_unsigned(">", code, _c(254)), b.icmp_unsigned("==", u, _c(0)))
    return b.trunc(b.select(nan, _c(0xFF), code), _I8)
