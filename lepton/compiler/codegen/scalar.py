"""Scalar lowering of the elementwise ops: `SCALAR[op](b, args, in_dtypes, out_dtype) -> value`.

The loop-nest emitter calls these on one element at a time; the code is straight-line (selects,
no calls to libm), so LLVM's loop vectoriser turns every elementwise loop into 16-wide code.
Booleans are `i1` in registers and one byte in memory (NumPy's layout). Unsigned integers
share the signed ones' LLVM types; their ops (compare, min/max, extend, convert) are the
unsigned forms. float16 is LLVM `half` where the host converts it (F16C on x86) and bfloat16
its bits (`i16`), as float16 is elsewhere; the 8- and 4-bit floats and the integers narrower
than a byte (int4, uint4, int2, uint2) are their bytes (`i8`, ml_dtypes' layout: an int4 is its
low 4 bits, the others zero): the pass `widen` leaves these narrow types only to loads, stores,
casts, selects and copies, and casts convert them through float32 (halfbits.py, minifloat.py
for bits) or int32.
"""
from __future__ import annotations

from llvmlite import ir

import numpy as np

from ...ir.types import DTYPES, DType, bfloat16, bool_, float16, float32, float64, int32
from . import halfbits, minifloat, vmath
from .loops import vconst

FAST = ("contract",)  # lets LLVM form FMAs; keeps inf/nan semantics intact

_F32, _F64, _I16, _I32 = ir.FloatType(), ir.DoubleType(), ir.IntType(16), ir.IntType(32)
_FLOAT_TYPES = (ir.HalfType, ir.FloatType, ir.DoubleType)


def _host_converts_halves() -> bool:
    """Whether LLVM converts `half` by instructions here (x86: F16C), not by runtime calls."""
    import platform
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        import llvmlite.binding as llvm
        return bool(llvm.get_host_cpu_features().get("f16c", False))
    except Exception:  # noqa: BLE001 - unknown: the bit arithmetic is right everywhere
        return False


def set_hardware_halves(on: bool) -> None:
    """float16 as LLVM `half` (converted by the CPU) or as its bits (halfbits.py)."""
    global HARDWARE_HALVES, _LL, _MEM
    HARDWARE_HALVES = on
    _LL = {d: ir.IntType(8 * d.itemsize) for d in DTYPES.values() if d.is_int}
    _LL.update({float16: ir.HalfType() if on else _I16, bfloat16: _I16, float32: _F32,
                float64: _F64, bool_: ir.IntType(1)})
    _LL.update({d: ir.IntType(8) for d in DTYPES.values() if d.is_minifloat})
    _MEM = {**_LL, bool_: ir.IntType(8)}


set_hardware_halves(_host_converts_halves())


def llvm_type(dt: DType) -> ir.Type:
    """The register type of a dtype (bool is i1, bfloat16 its bits i16, the 8- and 4-bit floats
    and the narrow integers their byte i8)."""
    return _LL[dt]


def mem_type(dt: DType) -> ir.Type:
    """The in-memory type of a dtype (bool is one byte)."""
    return _MEM[dt]


def index(b: ir.IRBuilder, k, dt: DType, to: ir.IntType):
    """An integer register of dtype dt as an index of type `to` (sign- or zero-extended)."""
    if k.type.width >= to.width:
        return b.trunc(k, to) if k.type.width > to.width else k
    return b.zext(k, to) if dt.unsigned else b.sext(k, to)


def load(b: ir.IRBuilder, ptr, dt: DType):
    v = b.load(ptr)
    return b.trunc(v, _LL[bool_]) if dt == bool_ else v


def store(b: ir.IRBuilder, v, ptr, dt: DType):
    b.store(b.zext(v, _MEM[bool_]) if dt == bool_ else v, ptr)


def zero(dt: DType, value=0):
    """The constant `value` of dtype dt (in its register type)."""
    if dt == bfloat16 or (dt == float16 and not HARDWARE_HALVES):
        return ir.Constant(_I16, int(np.asarray(value, dt.np).view(np.int16)))
    if dt.is_minifloat:
        return ir.Constant(_LL[dt], int(np.asarray(value, dt.np).view(np.int8)))
    if dt.is_narrow_int:
        return ir.Constant(_LL[dt], int(value) & ((1 << dt.bits) - 1))
    if dt.is_float:
        return _float_constant(_LL[dt], np.asarray(value, dt.np))
    v = int(value)
    if dt.unsigned and v >= 1 << (dt.bits - 1):   # LLVM spells integers signed
        v -= 1 << dt.bits
    return ir.Constant(_LL[dt], v)


def _float_constant(t: ir.Type, a: np.ndarray) -> ir.Constant:
    """A float16/32/64 constant. A NaN is written by its bits: llvmlite would round a float
    literal through a C float, which quiets a signalling NaN, while LLVM keeps a literal's
    signalling NaN and payload (bitcasts make them values)."""
    if not np.isnan(a):
        return ir.Constant(t, float(a))
    u = int(a.view(f"u{a.itemsize}"))
    if a.itemsize == 2:
        return ir.FormattedConstant(t, f"0xH{u:04X}")
    if a.itemsize == 4:   # LLVM spells a float as the double of the same value
        u = ((u >> 31) << 63) | (0x7FF << 52) | ((u & 0x7FFFFF) << 29)
    return ir.FormattedConstant(t, f"0x{u:016X}")


def like(x, value) -> ir.Constant:
    """A constant of x's type (splat across lanes when x is a vector), so that every op
    below lowers scalars and vectors (GEMM epilogues) alike."""
    t = x.type
    elem = t.element if isinstance(t, ir.VectorType) else t
    c = float(value) if isinstance(elem, _FLOAT_TYPES) else int(value)
    return vconst(t, c) if isinstance(t, ir.VectorType) else ir.Constant(t, c)


def _mangle(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_mangle(t.element)}"
    if isinstance(t, ir.HalfType):
        return "f16"
    if isinstance(t, ir.FloatType):
        return "f32"
    if isinstance(t, ir.DoubleType):
        return "f64"
    return f"i{t.width}"


def intrinsic(b: ir.IRBuilder, name: str, *args):
    """Calls the overloaded intrinsic `name` on args of one (scalar or vector) type."""
    t = args[0].type
    full = f"{name}.{_mangle(t)}"
    fn = b.module.globals.get(full) or ir.Function(b.module, ir.FunctionType(t, [t] * len(args)),
                                                   full)
    return b.call(fn, list(args))


def is_nan(b, x):
    return b.fcmp_unordered("uno", x, x)


# -- the ops -----------------------------------------------------------------------------------
def _neg(b, x, dt):
    return b.fneg(x) if dt.is_float else b.neg(x)


def _abs(b, x, dt):
    if dt.is_float:
        return intrinsic(b, "llvm.fabs", x)
    if dt == bool_ or dt.unsigned:
        return x
    return b.select(b.icmp_signed("<", x, like(x, 0)), b.neg(x), x)


def icmp(b, dt: DType):
    """The integer comparison of dtype dt's order (unsigned for bool and uN)."""
    return b.icmp_unsigned if dt == bool_ or dt.unsigned else b.icmp_signed


def _relu(b, x, dt):
    if dt == bool_ or dt.unsigned:
        return x
    lt = b.fcmp_ordered("<", x, like(x, 0)) if dt.is_float else b.icmp_signed("<", x, like(x, 0))
    return b.select(lt, like(x, 0), x)


def _arith(float_op, int_op, bool_op=None):
    def emit(b, xs, ins, out):
        x, y = xs
        if out.is_float:
            return getattr(b, float_op)(x, y, flags=FAST)
        if out == bool_:
            if bool_op is None:
                raise NotImplementedError(f"{float_op} is not defined on bool tensors")
            return getattr(b, bool_op)(x, y)
        return getattr(b, int_op)(x, y)
    return emit


def _minmax(is_max):
    def emit(b, xs, ins, out):
        x, y = xs
        if out.is_float:  # NumPy propagates NaN from either side
            pick = b.fcmp_ordered(">" if is_max else "<", x, y)
            return b.select(is_nan(b, x), x, b.select(pick, x, y))
        return b.select(icmp(b, out)(">" if is_max else "<", x, y), x, y)
    return emit


def _compare(op):
    def emit(b, xs, ins, out):
        x, y = xs
        if ins[0].is_float:
            return b.fcmp_unordered(op, x, y) if op == "!=" else b.fcmp_ordered(op, x, y)
        return icmp(b, ins[0])(op, x, y)
    return emit


def _pow(b, xs, ins, out):
    """x**y as exp(y*log|x|), with NumPy's sign for negative x and integral y, and x**0 == 1."""
    x, y = xs
    one = like(x, 1)
    r = vmath.exp(b, b.fmul(y, vmath.log(b, intrinsic(b, "llvm.fabs", x))))
    integral = b.fcmp_ordered("==", intrinsic(b, "llvm.floor", y), y)
    half = b.fmul(y, like(y, 0.5))
    odd = b.and_(integral, b.fcmp_ordered("!=", intrinsic(b, "llvm.floor", half), half))
    neg_x = b.fcmp_ordered("<", x, like(x, 0))
    r = b.select(b.and_(neg_x, odd), b.fneg(r), r)
    nan = like(r, float("nan"))
    r = b.select(b.and_(neg_x, b.not_(integral)), nan, r)
    return b.select(b.fcmp_ordered("==", y, like(y, 0)), one, r)


def to_f32(b, x, dt: DType):
    """A small float's register (float16, bfloat16, 8- or 4-bit) as float32 (exact)."""
    if dt.is_minifloat:
        return minifloat.minifloat_to_f32(b, x, dt.fmt)
    if dt == float16:
        return b.fpext(x, _F32) if HARDWARE_HALVES else halfbits.f16_to_f32(b, x)
    return halfbits.bf16_to_f32(b, x)


def from_f32(b, x, dt: DType):
    """A float32 register rounded to nearest even as a small float (NaN stays NaN)."""
    if dt.is_minifloat:
        return minifloat.f32_to_minifloat(b, x, dt.fmt)
    if dt == float16:
        return b.fptrunc(x, ir.HalfType()) if HARDWARE_HALVES else halfbits.f32_to_f16(b, x)
    return halfbits.f32_to_bf16(b, x)


def _f64_to_f32_odd(b, d):
    """d rounded to float32 to odd (toward zero, then the last bit set when inexact), so that
    rounding it again to a 16- or 8-bit float rounds d once."""
    f = b.fptrunc(d, _F32)
    back = b.fpext(f, _F64)
    bits = b.bitcast(f, _I32)
    inexact = b.fcmp_ordered("!=", back, d)
    even = b.icmp_unsigned("==", b.and_(bits, ir.Constant(_I32, 1)), ir.Constant(_I32, 0))
    away = b.fcmp_ordered(">", intrinsic(b, "llvm.fabs", back), intrinsic(b, "llvm.fabs", d))
    odd = b.select(away, b.sub(bits, ir.Constant(_I32, 1)), b.add(bits, ir.Constant(_I32, 1)))
    return b.bitcast(b.select(b.and_(inexact, even), odd, bits), _F32)


def _int_to_float(b, x, src: DType, t: ir.Type):
    return b.uitofp(x, t) if src.unsigned or src == bool_ else b.sitofp(x, t)


def _fptoi_sat(b, x, t: ir.IntType, unsigned: bool):
    name = f"llvm.fpto{'u' if unsigned else 's'}i.sat.i{t.width}.{_mangle(x.type)}"
    fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(t, [x.type]), name)
    return b.call(fn, [x])


def _float_to_int(b, x, out: DType):
    """Truncation toward zero; out of range (and NaN) as NumPy on x86 gives for the small
    types: the low bits of the i32 (u32: i64) conversion; u64 saturates."""
    dst_t = llvm_type(out)
    if out.bits <= 16:
        return b.trunc(b.fptosi(x, _I32), dst_t)
    if out.unsigned:
        return (b.trunc(b.fptosi(x, ir.IntType(64)), dst_t) if out.bits == 32
                else _fptoi_sat(b, x, dst_t, True))
    return b.fptosi(x, dst_t)  # NaN or out of range: an unspecified value, as in NumPy


def _narrow_int_to_i32(b, x, src: DType):
    """An int4/uint4/int2/uint2 byte as int32 (sign-extended from its top bit when signed)."""
    x = b.zext(x, _I32)
    if src.unsigned:
        return x
    shift = ir.Constant(_I32, 32 - src.bits)
    return b.ashr(b.shl(x, shift), shift)


def _to_narrow_int(b, x, src: DType, out: DType):
    """Any register as an int4/uint4/int2/uint2 byte, as ml_dtypes converts: integers keep
    their low bits (wrap around); floats truncate toward zero, and a value out of the range
    (or NaN) gives 0."""
    if src.is_float:
        t = _fptoi_sat(b, x, _I32, False)     # defined everywhere: NaN 0, huge saturated
        lo, hi = (0, (1 << out.bits) - 1) if out.unsigned else (-(1 << (out.bits - 1)),
                                                                (1 << (out.bits - 1)) - 1)
        ok = b.and_(b.icmp_signed(">=", t, ir.Constant(t.type, lo)),
                    b.icmp_signed("<=", t, ir.Constant(t.type, hi)))
        x = b.select(ok, t, ir.Constant(t.type, 0))
    elif src == bool_:
        x = b.zext(x, _I32)
    return b.and_(b.trunc(x, ir.IntType(8)) if x.type.width > 8 else x,
                  ir.Constant(ir.IntType(8), (1 << out.bits) - 1))


def _cast(b, xs, ins, out):
    (x,), src = xs, ins[0]
    dst_t = llvm_type(out)
    if src == out:
        return x
    if src.is_narrow_int:
        x, src = _narrow_int_to_i32(b, x, src), int32
        if out == int32:
            return x
    if out.is_narrow_int:
        if src.is_small_float:
            x, src = to_f32(b, x, src), float32
        return _to_narrow_int(b, x, src, out)
    if src.is_small_float:
        x, src = to_f32(b, x, src), float32
        if out == float32:
            return x
    if out == bool_:
        return b.fcmp_unordered("!=", x, zero(src)) if src.is_float else b.icmp_unsigned(
            "!=", x, zero(src))
    if out.is_small_float:
        if src == float64:
            x = _f64_to_f32_odd(b, x)
        elif src != float32:   # an integer: exact in f32 up to 16 bits, in f64 up to 32
            x = (_int_to_float(b, x, src, _F32) if src.bits <= 16 or src == bool_ else
                 _f64_to_f32_odd(b, _int_to_float(b, x, src, _F64)))
        return from_f32(b, x, out)
    if src == bool_:
        return b.uitofp(x, dst_t) if out.is_float else b.zext(x, dst_t)
    if src.is_float and out.is_float:
        return b.fpext(x, dst_t) if out.itemsize > src.itemsize else b.fptrunc(x, dst_t)
    if src.is_float:
        return _float_to_int(b, x, out)
    if out.is_float:
        return _int_to_float(b, x, src, dst_t)
    if out.bits == src.bits:
        return x
    if out.bits < src.bits:
        return b.trunc(x, dst_t)
    return b.zext(x, dst_t) if src.unsigned else b.sext(x, dst_t)


def _bitcast(b, xs, ins, out):
    """The bits of x as dtype `out` (same width): an LLVM bitcast between the register types
    (half <-> i16, float <-> i32, double <-> i64), nothing when they already agree (the 8-bit
    floats, bfloat16's and the narrow types' integer registers); a bool's i1 is its byte."""
    (x,), src = xs, ins[0]
    if src == bool_ and out != bool_:
        x = b.zext(x, ir.IntType(8))
    dst_t = llvm_type(out)
    return x if x.type == dst_t else b.bitcast(x, dst_t)


def _float_divmod(b, x, y, want_quotient):
    """NumPy's float floor division / remainder (npy_divmod): from the exact fmod (`frem`), the
    remainder takes b's sign, the quotient is snapped to the nearest integer; x // 0 is x / 0."""
    zero, one = like(x, 0), like(x, 1)
    m = b.frem(x, y)
    div = b.fdiv(b.fsub(x, m), y)
    fix = b.and_(b.fcmp_ordered("!=", m, zero),
                 b.xor(b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", m, zero)))
    if not want_quotient:
        m = b.select(fix, b.fadd(m, y), m)
        return b.select(b.fcmp_ordered("==", m, zero), intrinsic(b, "llvm.copysign", zero, y), m)
    div = b.select(fix, b.fsub(div, one), div)
    q = intrinsic(b, "llvm.floor", div)
    q = b.select(b.fcmp_ordered(">", b.fsub(div, q), like(x, 0.5)), b.fadd(q, one), q)
    ratio = b.fdiv(x, y)
    q = b.select(b.fcmp_ordered("==", div, zero), intrinsic(b, "llvm.copysign", zero, ratio), q)
    return b.select(b.fcmp_ordered("==", y, zero), ratio, q)


def _divmod(want_quotient):
    """NumPy's floor division or remainder, without trapping: for integers x // 0 and x % 0
    give 0 and the most negative value // -1 wraps to itself (x * -1)."""
    def emit(b, xs, ins, out):
        x, y = xs
        if out.is_float:
            return _float_divmod(b, x, y, want_quotient)
        zero, one = like(x, 0), like(x, 1)
        by_zero = b.icmp_unsigned("==", y, zero)
        if out.unsigned:
            safe = b.select(by_zero, one, y)
            r = b.udiv(x, safe) if want_quotient else b.urem(x, safe)
            return b.select(by_zero, zero, r)
        minus_one = b.icmp_signed("==", y, like(x, -1))
        safe = b.select(b.or_(by_zero, minus_one), one, y)
        q, r = b.sdiv(x, safe), b.srem(x, safe)
        q = b.select(minus_one, b.neg(x), q)
        # C truncates toward zero; floor when the remainder's sign differs from the divisor's
        floor = b.and_(b.icmp_signed("!=", r, zero),
                       b.icmp_signed("<", b.xor(r, safe), zero))
        if want_quotient:
            res = b.select(floor, b.sub(q, one), q)
        else:
            res = b.select(floor, b.add(r, y), r)
        return b.select(by_zero, zero, res)
    return emit


def _shift(left):
    """x << y, x >> y (arithmetic for signed, logical for unsigned); a shift by the width or
    more, or by a negative amount, gives 0 (-1 for a negative x shifted right), as NumPy."""
    def emit(b, xs, ins, out):
        x, y = xs
        width = like(x, out.bits)
        big = b.icmp_unsigned(">=", y, width)
        safe = b.select(big, like(x, 0), y)
        if left:
            return b.select(big, like(x, 0), b.shl(x, safe))
        if out.unsigned:
            return b.select(big, like(x, 0), b.lshr(x, safe))
        return b.ashr(x, b.select(big, like(x, out.bits - 1), safe))
    return emit


def _unary(f):
    return lambda b, xs, ins, out: f(b, xs[0], out)


def _math(name):
    return lambda b, xs, ins, out: getattr(vmath, name)(b, xs[0])


SCALAR = {
    "neg": _unary(_neg),
    "abs": _unary(_abs),
    "square": lambda b, xs, ins, out: (b.fmul(xs[0], xs[0], flags=FAST) if out.is_float
                                       else b.mul(xs[0], xs[0])),
    "relu": _unary(_relu),
    "exp": _math("exp"),
    "log": _math("log"),
    "tanh": _math("tanh"),
    "sigmoid": _math("sigmoid"),
    "erf": _math("erf"),
    "sin": _math("sin"),
    "cos": _math("cos"),
    "sqrt": lambda b, xs, ins, out: intrinsic(b, "llvm.sqrt", xs[0]),
    "rsqrt": lambda b, xs, ins, out: b.fdiv(like(xs[0], 1), intrinsic(b, "llvm.sqrt", xs[0])),
    "reciprocal": lambda b, xs, ins, out: b.fdiv(like(xs[0], 1), xs[0]),
    "add": _arith("fadd", "add", "or_"),
    "sub": _arith("fsub", "sub"),
    "mul": _arith("fmul", "mul", "and_"),
    "div": _arith("fdiv", "sdiv"),
    "pow": _pow,
    "maximum": _minmax(True),
    "minimum": _minmax(False),
    "lt": _compare("<"),
    "le": _compare("<="),
    "gt": _compare(">"),
    "ge": _compare(">="),
    "eq": _compare("=="),
    "ne": _compare("!="),
    "where": lambda b, xs, ins, out: b.select(*xs),
    "stop_gradient": lambda b, xs, ins, out: xs[0],
    "cast": _cast,
    "bitcast": _bitcast,
    "floordiv": _divmod(True),
    "mod": _divmod(False),
    "bitwise_and": lambda b, xs, ins, out: b.and_(*xs),
    "bitwise_or": lambda b, xs, ins, out: b.or_(*xs),
    "bitwise_xor": lambda b, xs, ins, out: b.xor(*xs),
    "shl": _shift(True),
    "shr": _shift(False),
}

# Ops whose rare slow path a loop kernel may defer: `UNREDUCED[op](b, x, flags)` (flags a
# vmath.Unreduced) gives a value that is right unless flags.seen(), after which the caller
# computes again with SCALAR (sin and cos of arguments beyond vmath.SINCOS_MAX; see fused.py).
UNREDUCED = {"sin": vmath.sin, "cos": vmath.cos}
