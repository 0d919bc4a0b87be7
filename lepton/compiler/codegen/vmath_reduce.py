"""Payne-Hanek reduction of huge arguments for sin and cos, exact integer arithmetic on the bits.

    k, r = rem_pio2(e, x)      # x = k pi/2 + r, |r| <= pi/4 (+ a rounding), for any finite x

vmath's sin/cos reduce |x| <= SINCOS_MAX with Cody-Waite (a few fmas). Beyond that, k =
round(x 2/pi) no longer fits the dtype and only x 2/pi mod 4 matters; it is computed here from a
table of 2/pi's bits. With x = M 2^s (M the integer mantissa), the bits of 2/pi above 2^-(s-1)
contribute multiples of 4 and are skipped: the table is read from the limb holding bit s - 1 on.

Everything is integer arithmetic on 24-bit limbs in i64 lanes: mantissa limbs times table limbs
are < 2^48 and a column sums at most four of them, so no product or sum overflows and the
result is exact up to the bits of 2/pi left out (enough are kept for the worst case of each
dtype, x 2/pi within 2^-62 of an integer for f64). The fraction is turned into floats limb by
limb, largest first (each exact), so cancellation near a multiple of pi/2 costs no accuracy.
"""
from __future__ import annotations

import functools
from fractions import Fraction

from llvmlite import ir

from .loops import vconst

LIMB = 24
MASK = (1 << LIMB) - 1
i32, i64 = ir.IntType(32), ir.IntType(64)

# Per dtype: result limbs N (enough that the bits of 2/pi left out change x 2/pi by less than
# 2^-(worst cancellation + precision + margin): 2^-60 for f32, 2^-122 for f64); fraction limbs
# turned into floats (down to 2^-72 / 2^-120).
_RESULT_LIMBS = {"f32": 6, "f64": 10}
_FRACTION_LIMBS = {"f32": 3, "f64": 5}
# Zero limbs in front of 2/pi, for exponents whose window starts above the binary point.
_PAD = 2


def _pi_bits(bits: int) -> int:
    """floor(pi 2^bits), by Machin's formula in integer arithmetic (guard bits cover the
    truncations)."""
    one = 1 << (bits + 32)

    def atan_inv(n):   # atan(1/n) * one, by its Taylor series
        total, term, k, sign = 0, one // n, 1, 1
        while term:
            total += sign * (term // k)
            term //= n * n
            k, sign = k + 2, -sign
        return total

    return (16 * atan_inv(5) - 4 * atan_inv(239)) >> 32


PIO2 = Fraction(_pi_bits(200), 1 << 201)


@functools.cache
def two_over_pi_limbs(count: int = 56) -> tuple[int, ...]:
    """2/pi's fraction bits in 24-bit limbs, most significant first, after _PAD zero limbs."""
    bits = LIMB * count
    value = (1 << (2 * bits + 8)) // _pi_bits(bits + 8) * 2   # floor(2/pi 2^bits)
    limbs = [(value >> (LIMB * (count - 1 - j))) & MASK for j in range(count)]
    return (0,) * _PAD + tuple(limbs)


def _table(module: ir.Module) -> ir.GlobalVariable:
    """The limb table as one private constant per module (shared by every kernel in it)."""
    name = "lepton.two_over_pi"
    g = module.globals.get(name)
    if g is None:
        limbs = two_over_pi_limbs()
        ty = ir.ArrayType(i32, len(limbs))
        g = ir.GlobalVariable(module, ty, name)
        g.initializer = ir.Constant(ty, list(limbs))
        g.global_constant, g.linkage = True, "private"
    return g


class _Wide:
    """i64 and float helpers of x's lane count: the limb arithmetic runs in i64, the fraction in
    double for both dtypes (f32 results are rounded once at the end)."""

    def __init__(self, e):
        self.e, self.b = e, e.b
        lanes = e.lanes
        vec = (lambda t: ir.VectorType(t, lanes)) if lanes else (lambda t: t)
        self.ity, self.i32ty, self.fty = vec(i64), vec(i32), vec(ir.DoubleType())

    def _const(self, ty, v):
        return vconst(ty, v) if self.e.lanes else ir.Constant(ty, v)

    def c(self, v: int):
        return self._const(self.ity, int(v))

    def f(self, v: float):
        return self._const(self.fty, float(v))

    def ext(self, v):
        return v if v.type == self.ity else self.b.zext(v, self.ity)

    def narrow(self, v):
        """An i64 of x's integer width (k only matters mod 4, so truncation is harmless)."""
        return v if v.type == self.e.ity else self.b.trunc(v, self.e.ity)

    def to_float(self, v):
        """A limb (|v| < 2^24) as an exact double, through i32 (every ISA converts those)."""
        return self.b.sitofp(self.b.trunc(v, self.i32ty), self.fty)

    def clamp(self, v, lo: int, hi: int):
        b = self.b
        v = b.select(b.icmp_signed("<", v, self.c(lo)), self.c(lo), v)
        return b.select(b.icmp_signed(">", v, self.c(hi)), self.c(hi), v)

    def load(self, table, idx):
        """table[idx], lane by lane for vectors (this is the rare path: no gather needed)."""
        b, zero = self.b, ir.Constant(i32, 0)
        if not self.e.lanes:
            return b.zext(b.load(b.gep(table, [zero, b.trunc(idx, i32)])), i64)
        out = self._const(self.ity, 0)
        for lane in range(self.e.lanes):
            j = b.trunc(b.extract_element(idx, ir.Constant(i32, lane)), i32)
            v = b.zext(b.load(b.gep(table, [zero, j])), i64)
            out = b.insert_element(out, v, ir.Constant(i32, lane))
        return out

    def times_pio2(self, f):
        """f pi/2 (f a double) in x's type: for f64 pi/2 in two parts with an fma (0.5 ulp more
        than f's own error), for f32 one double product rounded once."""
        b, e = self.b, self.e
        hi = float(PIO2)
        if e.dt == "f32":
            return b.fptrunc(b.fmul(f, self.f(hi)), e.ty)
        lo = float(PIO2 - Fraction(hi))
        return e.fma(f, self.f(hi), b.fmul(f, self.f(lo)))


def rem_pio2(e, x):
    """(k, r) with x = k pi/2 + r, |r| <= pi/4 (plus rounding), for finite x with |x| >= 2^-20:
    k of x's integer width (right mod 4), r of x's type. e is vmath's _Emit for x. Lanes with
    inf or nan give garbage, never an out-of-bounds read (the table index is clamped)."""
    b, w = e.b, _Wide(e)
    N = _RESULT_LIMBS[e.dt]
    bits = e.bits(x)
    M = w.ext(b.or_(b.and_(bits, e.i((1 << e.mant) - 1)), e.i(1 << e.mant)))
    biased = w.ext(b.and_(b.lshr(bits, e.i(e.mant)), e.i((1 << (e.nbits - e.mant - 1)) - 1)))
    # x = M 2^s with s = biased - bias - mant; s = 24 m + sh, 0 <= sh < 24. Offset by 24*60 so
    # that the division is of a non-negative number for every exponent.
    t = b.add(biased, w.c(LIMB * 60 - e.bias - e.mant))
    sh = b.urem(t, w.c(LIMB))
    m = b.sub(b.udiv(t, w.c(LIMB)), w.c(60))
    # limbs of M << sh (up to p + 23 bits), least significant first
    nx = (e.mant + 2 * LIMB - 1) // LIMB
    X = [b.and_(b.shl(M, sh), w.c(MASK))]
    # (M >> 24a-sh in two steps: a shift by 64 or more would be poison)
    X += [b.and_(b.lshr(b.lshr(M, w.c(LIMB * (a - 1))), b.sub(w.c(LIMB), sh)), w.c(MASK))
          for a in range(1, nx)]
    # The window: limbs m-1 .. m+N-2 of 2/pi (limb j holds bits 24j+1 .. 24j+24; bits above
    # limb m-1 give multiples of 4). With G the window as an integer, x 2/pi = P 2^(24-24N)
    # mod 4, P = (M << sh) G: the top digit of P mod 2^(24N) is the integer part.
    top = w.clamp(b.add(m, w.c(_PAD - 1)), 0, len(two_over_pi_limbs()) - N)
    table = _table(b.module)
    F = [w.load(table, b.add(top, w.c(N - 1 - i))) for i in range(N)]   # least significant first
    D, carry = [], w.c(0)
    for k in range(N):
        col = carry
        for a in range(min(nx, k + 1)):
            col = b.add(col, b.mul(X[a], F[k - a]))
        D.append(b.and_(col, w.c(MASK)))
        carry = b.lshr(col, w.c(LIMB))
    # round to nearest: the fraction's top bit adds one to k and then counts as -1/2
    half = b.lshr(D[N - 2], w.c(LIMB - 1))
    k = b.add(D[N - 1], half)
    f = b.fmul(w.to_float(b.sub(D[N - 2], b.shl(half, w.c(LIMB)))), w.f(2.0 ** -LIMB))
    for j in range(1, _FRACTION_LIMBS[e.dt]):     # largest first: each term is exact
        f = b.fadd(f, b.fmul(w.to_float(D[N - 2 - j]), w.f(2.0 ** (-LIMB * (j + 1)))))
    r = w.times_pio2(f)
    neg = b.icmp_signed("<", bits, e.i(0))      # -x = (-k) pi/2 + (-r)
    k = w.narrow(k)
    return b.select(neg, b.sub(e.i(0), k), k), b.select(neg, b.fneg(r), r)
