"""Vectorisable transcendental functions, emitted as straight-line LLVM IR.

    y = vmath.exp(builder, x)       # x: a float or double value (or a <N x float/double> vector)
    y = vmath.FUNCTIONS["tanh"](builder, x)

Each emitter returns a value of x's type computed with fma, integer and bit operations and
`select` only: no branches (but the rarely taken one of sin and cos) and no calls to libm (LLVM turns `llvm.exp.f32` and friends into
scalar library calls even inside vectorised loops), so the loop vectoriser makes full-width
vector code of any elementwise loop around them. The only calls are to intrinsics that map to
single instructions (`llvm.fma`, `llvm.fabs`, `llvm.copysign`), and, for sin and cos of
arguments beyond SINCOS_MAX, to the module's own Payne-Hanek functions (see _sincos). No fast-math flags are used, so inf and
nan behave as IEEE says and LLVM cannot fold away the rounding tricks.

Every function reduces its argument to a small interval and evaluates a minimax polynomial there,
with degrees chosen per dtype. The coefficients come from vmath_fit.py (Remez, 120 digits); the
errors quoted in the docstrings are measured by tests/test_vmath.py against NumPy in float64.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from llvmlite import ir

from . import vmath_reduce
from .loops import vconst


# -- constants ---------------------------------------------------------------------------------
# Polynomial coefficients, lowest degree first, as printed by `python -m
# lepton.compiler.codegen.vmath_fit` (the "error" is that of the exact-coefficient polynomial
# for the quotient function fitted there; see each emitter for how it scales into the result).
COEFFS = {
    # max weighted error 6.22e-8
    ("exp", "f32"): (
        0.5000000026950167, 0.16666576970043373, 0.04166637513303583, 0.008363181234518617,
        0.0013941124094164804),
    # max weighted error 1.36e-18
    ("exp", "f64"): (
        0.5, 0.1666666666666667, 0.041666666666666685, 0.008333333333326134,
        0.00138888888888744, 0.00019841269874822088, 2.4801587347331916e-05,
        2.7557255398591215e-06, 2.7557252920880764e-07, 2.5105217600474006e-08,
        2.0921586245014325e-09),
    # max weighted error 1.86e-7
    ("log", "f32"): (0.6666668527005164, 0.39988717008516994, 0.2958213326627009),
    # max weighted error 3.06e-16
    ("log", "f64"): (
        0.666666666666667, 0.39999999999898456, 0.2857142862639391, 0.22222211073668152,
        0.18182893160540847, 0.15331598847422795, 0.1461784975404444),
    # max weighted error 2.0e-8
    ("sin", "f32"): (-0.16666664666736522, 0.008332748765912465, -0.0001958795855148694),
    # max weighted error 2.04e-17
    ("sin", "f64"): (
        -0.16666666666666666, 0.008333333333330948, -0.00019841269836757408,
        2.755731610178906e-06, -2.505113166029247e-08, 1.591811451157248e-10),
    # max weighted error 2.0e-9
    ("cos", "f32"): (0.04166666466299112, -0.0013888303410142314, 2.4547990117423715e-05),
    # max weighted error 1.28e-18
    ("cos", "f64"): (
        0.041666666666666664, -0.0013888888888887398, 2.4801587298764788e-05,
        -2.7557317271175225e-07, 2.087614613858505e-09, -1.1382622252384216e-11),
    # max weighted error 1.21e-9
    ("erf_small", "f32"): (
        1.128379165726716, -0.3761262582418221, 0.1128358514803857, -0.026853811913283288,
        0.00518832764738102, -0.0008010193311824032, 7.853860377047079e-05),
    # max weighted error 7.3e-18
    ("erf_small", "f64"): (
        1.1283791670955126, -0.3761263890318352, 0.11283791670944185, -0.02686617064311147,
        0.005223977606118471, -0.0008548325929314197, 0.00012055293576889775,
        -1.4924712301797686e-05, 1.644713156887315e-06, -1.6206313742799395e-07,
        1.3710980344456691e-08, -7.779468417706518e-10),
    # max weighted error 1.33e-8
    ("erfc", "f32"): (
        0.2108065535259502, -0.11144955805315934, 0.05660505350065867, -0.02633964635160465,
        0.009953357559712512, -0.014901363754225598, -0.009116439200105905,
        -0.006644446558182348),
    # max weighted error 9.89e-18
    ("erfc", "f64"): (
        0.1552936556072204, -0.1033089445795497, 0.06663208336720114, -0.0417667784027932,
        0.025495569471388525, -0.015182878205831626, 0.008831184352046459,
        -0.005031220511852984, 0.0028210625664631442, -0.0014419369285432455,
        0.00096332679104811, -0.0005565919762529922, -0.0006607127051123003,
        -0.0016163943305319945, -0.0006655085251099992, 0.0015533489776633365,
        0.003619799289594989, 0.0036286528482494885, 0.002128073425577114,
        0.0007043394758910918, 0.00010663888193758533),
}

# erf switches from x E(x^2) to 1 - exp(-x^2) P(x) at ERF_SPLIT; beyond ERF_MAX[dt] erf rounds to
# +-1. Both must match the intervals fitted in vmath_fit.py.
ERF_SPLIT = 1.0
ERF_MAX = {"f32": 4.0, "f64": 6.0}
# sin and cos reduce |x| up to these with Cody-Waite, beyond with Payne-Hanek (vmath_reduce.py).
SINCOS_MAX = {"f32": 2.0 ** 20, "f64": 2.0 ** 50}

_LN2 = Fraction("0.69314718055994530941723212145817656807550013436026")
_PIO2 = Fraction("1.57079632679489661923132169163975144209858469968755")
_DT = {"f32": np.float32, "f64": np.float64}


def _split(value: Fraction, dt: str, parts: int) -> list[float]:
    """value as a sum of `parts` numbers of type dt, each the rounding of what is left (for
    Cody-Waite reduction with fma: k*c1 is exact inside the fma, so c1 needs no zero tail)."""
    out = []
    for _ in range(parts):
        c = float(_DT[dt](float(value)))
        out.append(c)
        value -= Fraction(c)
    return out


# -- emission helpers --------------------------------------------------------------------------
class _Emit:
    """IR-building helpers bound to one builder and one float type (scalar or vector): constants
    of that type, the same-width integer type for bit tricks, intrinsics, Horner with fma."""

    def __init__(self, b: ir.IRBuilder, x: ir.Value):
        ty = x.type
        self.lanes = ty.count if isinstance(ty, ir.VectorType) else None
        elem = ty.element if self.lanes else ty
        if not isinstance(elem, (ir.FloatType, ir.DoubleType)):
            raise TypeError(f"vmath works on float or double values (or vectors of them), "
                            f"got {ty}")
        self.b, self.ty = b, ty
        self.dt = "f64" if isinstance(elem, ir.DoubleType) else "f32"
        self.nbits, self.mant, self.bias = (64, 52, 1023) if self.dt == "f64" else (32, 23, 127)
        ity = ir.IntType(self.nbits)
        self.ity = ir.VectorType(ity, self.lanes) if self.lanes else ity
        self.suffix = ("v%d" % self.lanes if self.lanes else "") + self.dt

    def _const(self, ty, v):
        return vconst(ty, v) if self.lanes else ir.Constant(ty, v)

    def f(self, v: float):
        return self._const(self.ty, float(v))

    def i(self, v: int):
        return self._const(self.ity, int(v))

    def call(self, name: str, *args):
        """An overloaded LLVM intrinsic on our type (llvmlite cannot mangle vector names)."""
        full = f"{name}.{self.suffix}"
        mod = self.b.module
        fn = mod.globals.get(full)
        if fn is None:
            fn = ir.Function(mod, ir.FunctionType(self.ty, [self.ty] * len(args)), full)
        return self.b.call(fn, list(args))

    def fma(self, a, b, c):
        return self.call("llvm.fma", a, b, c)

    def poly(self, t, coeffs):
        """sum coeffs[k] t^k by Horner's rule, one fma a step."""
        acc = self.f(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, t, self.f(c))
        return acc

    def lt(self, a, c):    # ordered: false when a is nan, so nan takes the other arm
        return self.b.fcmp_ordered("<", a, c)

    def gt(self, a, c):
        return self.b.fcmp_ordered(">", a, c)

    def min(self, a, c):   # nan stays nan
        return self.b.select(self.gt(a, c), c, a)

    def max(self, a, c):
        return self.b.select(self.lt(a, c), c, a)

    def bits(self, x):
        return self.b.bitcast(x, self.ity)

    def from_bits(self, n):
        return self.b.bitcast(n, self.ty)

    def round_int(self, x, scale):
        """k = round(x * scale) as (float, int). Adding 1.5 * 2^mant rounds to an integer and
        leaves k in the low mantissa bits, so no fptosi (poison on nan or inf) is ever needed;
        valid for |x * scale| < 2^(mant-1), beyond which k is finite but wrong."""
        magic = self.f(1.5 * 2.0 ** self.mant)
        t = self.fma(x, self.f(scale), magic)
        return self.b.fsub(t, magic), self.b.sub(self.bits(t), self.bits(magic))

    def pow2(self, k):
        """2^k for integer k in the normal exponent range, built from its bits."""
        return self.from_bits(self.b.shl(self.b.add(k, self.i(self.bias)), self.i(self.mant)))

    def reduce(self, x, const: Fraction, parts: int):
        """Cody-Waite: x = k * const + r with |r| <= const/2; returns (k float, k int, r)."""
        k, ki = self.round_int(x, float(1 / const))
        mk, r = self.b.fneg(k), x
        for c in _split(const, self.dt, parts):
            r = self.fma(mk, self.f(c), r)
        return k, ki, r

    def expm1_reduced(self, r):
        """e^r - 1 = r + r^2 Q(r) for |r| <= ln2/2."""
        return self.fma(self.b.fmul(r, r), self.poly(r, COEFFS["exp", self.dt]), r)


# -- the functions -----------------------------------------------------------------------------
def exp(b: ir.IRBuilder, x):
    """e^x. x = k ln2 + r, |r| <= ln2/2 (ln2 in two parts); e^r = 1 + r + r^2 Q(r) with Q minimax
    of degree 4 (f32) / 10 (f64); the result is scaled by 2^(k/2) twice so that denormal results
    and overflow to inf round correctly. x is first clamped to where e^x rounds to 0 or inf.
    exp(-inf) = 0, exp(inf) = inf, exp(nan) = nan. Max error 1.0 ulp (f32 and f64)."""
    e = _Emit(b, x)
    lo, hi = (-746.0, 710.0) if e.dt == "f64" else (-104.0, 89.0)
    _, k, r = e.reduce(e.min(e.max(x, e.f(lo)), e.f(hi)), _LN2, 2)
    p = b.fadd(e.f(1.0), e.expm1_reduced(r))
    k1 = b.ashr(k, e.i(1))
    return b.fmul(b.fmul(p, e.pow2(k1)), e.pow2(b.sub(k, k1)))


def _exp_normal(e: _Emit, y):
    """e^y for y in [-80, 80], where 2^k is a normal number: exp without the clamps and the split
    scaling, for callers that know their argument's range."""
    _, k, r = e.reduce(y, _LN2, 2)
    return e.b.fmul(e.b.fadd(e.f(1.0), e.expm1_reduced(r)), e.pow2(k))


def _expm1(e: _Emit, y):
    """e^y - 1 for y in [-80, 80], accurate relative to the result also near 0: with y = k ln2 + r,
    e^y - 1 = 2^k (e^r - 1) + (2^k - 1), where 2^k - 1 is exact for small k."""
    _, k, r = e.reduce(y, _LN2, 2)
    s = e.pow2(k)
    return e.fma(s, e.expm1_reduced(r), e.b.fsub(s, e.f(1.0)))


def log(b: ir.IRBuilder, x):
    """Natural log. Denormals are first scaled by 2^(mant+2); then x = 2^k m with m in
    [sqrt(1/2), sqrt(2)) by integer arithmetic on the bits, f = m - 1 (exact), s = f / (2 + f),
    log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2)) with R(z) = z T(z), T minimax of degree 2 (f32) /
    6 (f64) (the fdlibm scheme: the rounding of s is damped by the small term it multiplies);
    result = k ln2 + log(1+f) with two fmas. log(0) = -inf, log(x<0) = nan, log(inf) = inf,
    log(nan) = nan. Max error 0.9 ulp (f32) / 1 ulp (f64), denormal inputs included."""
    e = _Emit(b, x)
    sub = e.lt(x, e.f(np.finfo(_DT[e.dt]).smallest_normal))
    xs = b.select(sub, b.fmul(x, e.f(2.0 ** (e.mant + 2))), x)
    ix = b.sub(e.bits(xs), e.bits(e.f(0.5 ** 0.5)))
    k = b.add(b.ashr(ix, e.i(e.mant)), b.select(sub, e.i(-(e.mant + 2)), e.i(0)))
    m = e.from_bits(b.add(b.and_(ix, e.i((1 << e.mant) - 1)), e.bits(e.f(0.5 ** 0.5))))
    f = b.fsub(m, e.f(1.0))
    s = b.fdiv(f, b.fadd(e.f(2.0), f))
    z = b.fmul(s, s)
    hfsq = b.fmul(e.f(0.5), b.fmul(f, f))
    r = b.fmul(z, e.poly(z, COEFFS["log", e.dt]))
    lg1p = b.fadd(f, e.fma(s, b.fadd(hfsq, r), b.fneg(hfsq)))
    kf = b.sitofp(k, e.ty)
    ln2 = _split(_LN2, e.dt, 2)
    y = e.fma(kf, e.f(ln2[0]), e.fma(kf, e.f(ln2[1]), lg1p))
    y = b.select(b.fcmp_ordered("==", x, e.f(np.inf)), x, y)
    y = b.select(b.fcmp_ordered("==", x, e.f(0.0)), e.f(-np.inf), y)
    return b.select(b.fcmp_unordered("<", x, e.f(0.0)), e.f(np.nan), y)


def tanh(b: ir.IRBuilder, x):
    """tanh x = sign(x) t / (t + 2) with t = expm1(2|x|), |x| clamped to 20 (tanh rounds to 1
    there in both dtypes). expm1 keeps full relative accuracy near 0, so no second polynomial
    is needed for small x. tanh(+-inf) = +-1, tanh(nan) = nan, tanh(-0) = -0. Max error 2.2 ulp
    (f32) / 3 ulp (f64), near |x| = 0.2 where expm1 reduces with k = 1."""
    e = _Emit(b, x)
    a = e.min(e.call("llvm.fabs", x), e.f(20.0))
    t = _expm1(e, b.fadd(a, a))
    return e.call("llvm.copysign", b.fdiv(t, b.fadd(t, e.f(2.0))), x)


def sigmoid(b: ir.IRBuilder, x):
    """1 / (1 + e^-x), computed as 1 / (1 + t) for x >= 0 and t / (1 + t) for x < 0 with
    t = e^-|x| <= 1: never overflows, keeps relative accuracy (down to denormal results) for
    large negative x. sigmoid(-inf) = 0, sigmoid(inf) = 1, nan -> nan. Max error 2.1 ulp (f32) /
    2 ulp (f64)."""
    e = _Emit(b, x)
    t = exp(b, b.fneg(e.call("llvm.fabs", x)))
    num = b.select(e.lt(x, e.f(0.0)), t, e.f(1.0))
    return b.fdiv(num, b.fadd(e.f(1.0), t))


def erf(b: ir.IRBuilder, x):
    """The error function, two pieces selected per element:
    |x| < 1: x E(x^2), E minimax of degree 6 (f32) / 11 (f64) for relative error;
    |x| >= 1: sign(x) (1 - e^(-x^2) P(u)), P a polynomial of degree 7 / 20 in u in [-1, 1]
    (x = mid + half u over [1, ERF_MAX]) fitted to erfc x e^(x^2) weighted by e^(-x^2), i.e.
    for absolute error of erfc, which is what 1 - erfc needs. |x| is clamped to ERF_MAX, where
    erf rounds to 1. erf(+-inf) = +-1, erf(nan) = nan, erf(-0) = -0. Max error 1.1 ulp (f32) /
    1 ulp (f64)."""
    e = _Emit(b, x)
    c = COEFFS["erf_small", e.dt]
    # x + x (E - 1): the last step adds x exactly, so E's rounding is damped by (E - 1) < 0.13
    small = e.fma(x, e.poly(b.fmul(x, x), (c[0] - 1.0, *c[1:])), x)
    a = e.call("llvm.fabs", x)
    ac = e.min(a, e.f(ERF_MAX[e.dt]))
    mid, half = (ERF_MAX[e.dt] + ERF_SPLIT) / 2, (ERF_MAX[e.dt] - ERF_SPLIT) / 2
    u = e.fma(ac, e.f(1 / half), e.f(-mid / half))
    erfc = b.fmul(_exp_normal(e, b.fneg(b.fmul(ac, ac))), e.poly(u, COEFFS["erfc", e.dt]))
    large = e.call("llvm.copysign", b.fsub(e.f(1.0), erfc), x)
    return b.select(e.lt(a, e.f(ERF_SPLIT)), small, large)


def _sincos_reduced(e: _Emit, k, r, quadrant: int):
    """sin(k pi/2 + r + quadrant pi/2) for |r| <= pi/4: sin r = r + r^3 S(r^2),
    cos r = 1 - r^2/2 + r^4 C(r^2), S and C minimax of degree 2 (f32) / 5 (f64); k mod 4 picks
    sin or cos and the sign."""
    b = e.b
    z = b.fmul(r, r)
    sin_r = e.fma(b.fmul(r, z), e.poly(z, COEFFS["sin", e.dt]), r)
    cos_r = e.fma(b.fmul(z, z), e.poly(z, COEFFS["cos", e.dt]), e.fma(z, e.f(-0.5), e.f(1.0)))
    q = b.add(k, e.i(quadrant))
    odd = b.icmp_unsigned("!=", b.and_(q, e.i(1)), e.i(0))
    v = e.bits(b.select(odd, cos_r, sin_r))
    sign = b.shl(b.and_(q, e.i(2)), e.i(e.nbits - 2))     # quadrants 2 and 3 flip the sign
    return e.from_bits(b.xor(v, sign))


def _sincos_big(e: _Emit, x, quadrant: int):
    """sin(x + quadrant pi/2) reduced by Payne-Hanek (right for every finite x)."""
    k, r = vmath_reduce.rem_pio2(e, x)
    return _sincos_reduced(e, k, r, quadrant)


# Vector widths (lanes) for which each scalar Payne-Hanek function gets a vector variant.
_VARIANT_LANES = {"f32": (4, 8, 16), "f64": (2, 4, 8)}


def _sincos_big_function(module: ir.Module, e: _Emit, quadrant: int) -> ir.Function:
    """`T lepton.sincos_big.<quadrant>.T(T x)`, one private function per module, noinline so
    that it stays out of the loop body, with masked vector variants announced to the loop
    vectoriser (LLVM's vector function ABI): a vectorised loop calls the variant of its width
    with the lanes that need it, and the variant returns at once when there are none."""
    name = f"lepton.sincos_big.{quadrant}.{e.dt}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    fn = _private_function(module, name, e.ty, [e.ty])
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(_sincos_big(_Emit(b, fn.args[0]), fn.args[0], quadrant))
    variants = []
    for lanes in _VARIANT_LANES[e.dt]:
        vty = ir.VectorType(e.ty, lanes)
        mty = ir.VectorType(ir.IntType(1), lanes)
        vfn = _private_function(module, f"{name}.v{lanes}", vty, [vty, mty])
        vfn.linkage = "weak_odr"    # no caller before vectorisation: keep it from dead-code removal
        b = ir.IRBuilder(vfn.append_basic_block("entry"))
        x, mask = vfn.args
        ve = _Emit(b, x)
        y = ir.Constant(vty, ir.Undefined)
        with b.if_then(_any(b, mask), likely=False):
            y_big = _sincos_big(ve, x, quadrant)
            rare = b.block
        out = b.phi(vty)
        out.add_incoming(y_big, rare)
        out.add_incoming(y, b.block.parent.blocks[0])
        b.ret(out)
        variants.append(f"_ZGV_LLVM_M{lanes}v_{name}({vfn.name})")
    set.add(fn.attributes, f'"vector-function-abi-variant"="{",".join(variants)}"')
    return fn


def _private_function(module, name, ret, args) -> ir.Function:
    fn = ir.Function(module, ir.FunctionType(ret, args), name)
    fn.linkage = "internal"
    for attr in ("noinline", "nounwind", "readnone"):
        fn.attributes.add(attr)
    return fn


def _any(b: ir.IRBuilder, v):
    """The OR of an integer vector's lanes (of an <N x i1> mask: whether any lane is set)."""
    ty = v.type.element
    name = f"llvm.vector.reduce.or.v{v.type.count}i{ty.width}"
    fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(ty, [v.type]), name)
    return b.call(fn, [v])


class Unreduced:
    """Where sin and cos emitted with it (`sin(b, x, unreduced)`) note that they left work
    undone: they give the Cody-Waite result only, right for |x| <= SINCOS_MAX, and record in a
    flag of the function whether some x was beyond (or inf or nan):

        flags = Unreduced()
        ... loops whose body emits vmath.sin(b, x, flags) ...
        with b.if_then(flags.seen(b), likely=False):
            ... the same loops again with vmath.sin(b, x), right for every x ...

    The flag is an integer as wide as x's lanes, cleared in the function's entry block, into
    which every x ORs bits(SINCOS_MAX) - bits(|x|): its sign bit ends up set when some |x| was
    beyond. That is three instructions per vector (and, sub, or) and a reduction the loop
    vectoriser keeps in one register, where an OR of compare results (which LLVM narrows to
    i1) costs packs of the masks on AVX2."""

    def __init__(self):
        self._flags: dict[str, ir.AllocaInstr] = {}

    def mark(self, e: _Emit, x) -> None:
        b, ity = e.b, ir.IntType(e.nbits)
        flag = self._flags.get(e.dt)
        if flag is None:
            with b.goto_entry_block():
                flag = self._flags[e.dt] = b.alloca(ity)
                b.store(ir.Constant(ity, 0), flag)
        lo = int(np.array(SINCOS_MAX[e.dt], _DT[e.dt]).view(f"i{e.nbits // 8}"))
        d = b.sub(e.i(lo), b.and_(e.bits(x), e.i((1 << (e.nbits - 1)) - 1)))
        b.store(b.or_(b.load(flag), _any(b, d) if e.lanes else d), flag)

    def seen(self, b: ir.IRBuilder):
        """An i1: whether some result computed with these flags is wrong (read after the loops)."""
        out = ir.Constant(ir.IntType(1), 0)
        for flag in self._flags.values():
            out = b.or_(out, b.icmp_signed("<", b.load(flag), ir.Constant(flag.type.pointee, 0)))
        return out


def _sincos(b: ir.IRBuilder, x, quadrant: int, unreduced: Unreduced | None = None):
    """sin(x + quadrant pi/2). For |x| <= SINCOS_MAX[dt], x = k pi/2 + r by Cody-Waite (pi/2 in
    three parts, with fma, whose first step is exact); inf and nan give nan (r is nan). The
    finite lanes beyond, where k no longer fits the dtype, need Payne-Hanek:

    - with `unreduced` they are not fixed here: their result is wrong and `unreduced` notes
      it; the caller computes again without when it is set (see Unreduced). The loop then
      holds no call at all and runs at full speed.
    - without, they are redone behind a branch that is almost never taken: a scalar x calls a
      noinline function, so that the loop vectoriser keeps the common path vectorised (it
      calls the function's masked vector variant in every iteration) instead of inlining and
      speculating the whole reduction into every iteration; a vector x tests whether any lane
      is big and then reduces the whole vector inline."""
    e = _Emit(b, x)
    _, k, r = e.reduce(x, _PIO2, 3)
    y = _sincos_reduced(e, k, r, quadrant)
    if unreduced is not None:
        unreduced.mark(e, x)
        return y
    a = e.call("llvm.fabs", x)
    big = b.and_(e.gt(a, e.f(SINCOS_MAX[e.dt])), e.lt(a, e.f(np.inf)))
    any_big = _any(b, big) if e.lanes else big
    common = b.block
    with b.if_then(any_big, likely=False):
        if e.lanes:
            y_big = b.select(big, _sincos_big(e, x, quadrant), y)
        else:
            y_big = b.call(_sincos_big_function(b.module, e, quadrant), [x])
        rare = b.block
    out = b.phi(y.type)
    out.add_incoming(y_big, rare)
    out.add_incoming(y, common)
    return out


def sin(b: ir.IRBuilder, x, unreduced: Unreduced | None = None):
    """sin x (see _sincos for the method and `unreduced`). sin(+-inf) = sin(nan) = nan,
    sin(-0) = -0. Every finite x is reduced correctly. Max error 1.6 ulp (f32); f64: 2 ulp for
    |x| <= 1e12 and beyond 2^50 (Payne-Hanek), 7 ulp in between (Cody-Waite's last bits)."""
    # r + r^3 S(r^2) turns r = -0 into +0 (the correction term has the opposite sign)
    zero = b.fcmp_ordered("==", x, _Emit(b, x).f(0.0))
    return b.select(zero, x, _sincos(b, x, 0, unreduced))


def cos(b: ir.IRBuilder, x, unreduced: Unreduced | None = None):
    """cos x = sin(x + pi/2), the quadrant shifted in integer arithmetic (no rounding); same
    accuracy as sin. cos(+-inf) = cos(nan) = nan."""
    return _sincos(b, x, 1, unreduced)


FUNCTIONS = {"exp": exp, "log": log, "tanh": tanh, "sigmoid": sigmoid, "erf": erf,
             "sin": sin, "cos": cos}
