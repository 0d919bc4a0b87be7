"""16-bit floats <-> float32 by integer arithmetic on their bits, branch-free (selects only):
bfloat16 always (it is float32's top half), float16 on hosts without conversion instructions
(x86 without F16C, where LLVM would call runtime functions the JIT does not have).

    bits = f32_to_bf16(b, x)   # i16, rounded to nearest even; NaN stays a (quiet) NaN
    x = f16_to_f32(b, bits)    # exact

float16's are F. Giesen's well-known conversions (float_to_half_fast3_rtne, half_to_float):
the subnormal results come from one float32 addition, which rounds to nearest even itself.
"""
from __future__ import annotations

from llvmlite import ir

_F32, _I16, _I32 = ir.FloatType(), ir.IntType(16), ir.IntType(32)


def _c(v: int) -> ir.Constant:
    return ir.Constant(_I32, v - (1 << 32) if v >= 1 << 31 else v)


def _f(v: float) -> ir.Constant:
    return ir.Constant(_F32, v)


def bf16_to_f32(b: ir.IRBuilder, h):
    return b.bitcast(b.shl(b.zext(h, _I32), _c(16)), _F32)


def f32_to_bf16(b: ir.IRBuilder, x):
    bits = b.bitcast(x, _I32)
    odd = b.and_(b.lshr(bits, _c(16)), _c(1))
    rounded = b.lshr(b.add(bits, b.add(odd, _c(0x7FFF))), _c(16))
    quiet = b.or_(b.lshr(bits, _c(16)), _c(0x40))
    return b.trunc(b.select(b.fcmp_unordered("uno", x, x), quiet, rounded), _I16)


def f32_to_f16(b: ir.IRBuilder, x):
    u = b.bitcast(x, _I32)
    sign = b.and_(u, _c(0x80000000))
    a = b.xor(u, sign)                                          # |x|'s bits
    special = b.select(b.icmp_unsigned(">", a, _c(0x7F800000)), _c(0x7E00), _c(0x7C00))
    # below 2**-14: a float32 addition of 0.5 leaves the float16 subnormal in the low bits
    sub = b.sub(b.bitcast(b.fadd(b.bitcast(a, _F32), _f(0.5)), _I32), _c(0x3F000000))
    # normal: rebias the exponent, round to nearest even at bit 13
    odd = b.and_(b.lshr(a, _c(13)), _c(1))
    normal = b.lshr(b.add(b.add(a, _c(0xC8000FFF)), odd), _c(13))
    o = b.select(b.icmp_unsigned(">=", a, _c(0x47800000)), special,        # >= 65536: inf/NaN
                 b.select(b.icmp_unsigned("<", a, _c(0x38800000)), sub, normal))
    return b.trunc(b.or_(o, b.lshr(sign, _c(16))), _I16)


def f16_to_f32(b: ir.IRBuilder, h):
    h = b.zext(h, _I32)
    o = b.shl(b.and_(h, _c(0x7FFF)), _c(13))
    exp = b.and_(o, _c(0x0F800000))
    o = b.add(o, _c(0x38000000))                                           # rebias
    inf_nan = b.add(o, _c(0x38000000))
    small = b.bitcast(b.fsub(b.bitcast(b.add(o, _c(0x00800000)), _F32), _f(2.0 ** -14)), _I32)
    o = b.select(b.icmp_unsigned("==", exp, _c(0x0F800000)), inf_nan,
                 b.select(b.icmp_unsigned("==", exp, _c(0)), small, o))
    return b.bitcast(b.or_(o, b.shl(b.and_(h, _c(0x8000)), _c(16))), _F32)
