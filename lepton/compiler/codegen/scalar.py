"""Scalar lowering of the elementwise ops: `SCALAR[op](b, args, in_dtypes, out_dtype) -> value`.

The loop-nest emitter calls these on one element at a time; the code is straight-line (selects,
no calls to libm), so LLVM's loop vectoriser turns every elementwise loop into 16-wide code.
Booleans are `i1` in registers and one byte in memory (NumPy's layout).
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import DType, bool_, float32, float64, int32, int64
from . import vmath
from .loops import vconst

FAST = ("contract",)  # lets LLVM form FMAs; keeps inf/nan semantics intact

_LL = {float32: ir.FloatType(), float64: ir.DoubleType(), int32: ir.IntType(32),
       int64: ir.IntType(64), bool_: ir.IntType(1)}
_MEM = {**_LL, bool_: ir.IntType(8)}


def llvm_type(dt: DType) -> ir.Type:
    """The register type of a dtype (bool is i1)."""
    return _LL[dt]


def mem_type(dt: DType) -> ir.Type:
    """The in-memory type of a dtype (bool is one byte)."""
    return _MEM[dt]


def load(b: ir.IRBuilder, ptr, dt: DType):
    v = b.load(ptr)
    return b.trunc(v, _LL[bool_]) if dt == bool_ else v


def store(b: ir.IRBuilder, v, ptr, dt: DType):
    b.store(b.zext(v, _MEM[bool_]) if dt == bool_ else v, ptr)


def zero(dt: DType, value=0):
    return ir.Constant(_LL[dt], float(value) if dt.is_float else int(value))


def like(x, value) -> ir.Constant:
    """A constant of x's type (splat across lanes when x is a vector), so that every op
    below lowers scalars and vectors (GEMM epilogues) alike."""
    t = x.type
    elem = t.element if isinstance(t, ir.VectorType) else t
    c = float(value) if isinstance(elem, (ir.FloatType, ir.DoubleType)) else int(value)
    return vconst(t, c) if isinstance(t, ir.VectorType) else ir.Constant(t, c)


def _mangle(t: ir.Type) -> str:
    if isinstance(t, ir.VectorType):
        return f"v{t.count}{_mangle(t.element)}"
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
    return x if dt == bool_ else b.select(b.icmp_signed("<", x, like(x, 0)), b.neg(x), x)


def _relu(b, x, dt):
    if dt == bool_:
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
        cmp = b.icmp_unsigned if out == bool_ else b.icmp_signed
        return b.select(cmp(">" if is_max else "<", x, y), x, y)
    return emit


def _compare(op):
    def emit(b, xs, ins, out):
        x, y = xs
        if ins[0].is_float:
            return b.fcmp_unordered(op, x, y) if op == "!=" else b.fcmp_ordered(op, x, y)
        if ins[0] == bool_:
            return b.icmp_unsigned(op, x, y)
        return b.icmp_signed(op, x, y)
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


def _cast(b, xs, ins, out):
    (x,), src = xs, ins[0]
    dst_t = llvm_type(out)
    if src == out:
        return x
    if out == bool_:
        return b.fcmp_unordered("!=", x, zero(src)) if src.is_float else b.icmp_unsigned(
            "!=", x, zero(src))
    if src == bool_:
        return b.uitofp(x, dst_t) if out.is_float else b.zext(x, dst_t)
    if src.is_float and out.is_float:
        return b.fpext(x, dst_t) if out.itemsize > src.itemsize else b.fptrunc(x, dst_t)
    if src.is_float:
        return b.fptosi(x, dst_t)  # NaN or out of range: an unspecified value, as in NumPy
    if out.is_float:
        return b.sitofp(x, dst_t)
    return b.sext(x, dst_t) if out.itemsize > src.itemsize else b.trunc(x, dst_t)


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
}

# Ops whose rare slow path a loop kernel may defer: `UNREDUCED[op](b, x, flags)` (flags a
# vmath.Unreduced) gives a value that is right unless flags.seen(), after which the caller
# computes again with SCALAR (sin and cos of arguments beyond vmath.SINCOS_MAX; see fused.py).
UNREDUCED = {"sin": vmath.sin, "cos": vmath.cos}
