"""The `philox` kernel: a key's Philox-4x32-10 word stream over an array (lepton/ir/ops/random.py
holds the definition and its NumPy reference; this computes the same bits).

    emit_philox(b, v, out, [key])     # in a kernel `void k(T* out, i32* key, i8* scratch)`

One loop over the full Philox blocks: block j's counter is (j mod 2**32, j div 2**32, 0, 0),
so iterations are independent and LLVM vectorises the loop (the 32x32->64-bit products become
vector multiplies, the four or two stores per block an interleaved store); a partial last block
is computed once after the loop and stores only the elements that exist. The key schedule is
computed once, before the loop.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.ops.random import MULTIPLIERS, ROUNDS, WEYL, words_per_element
from ...ir.types import float32, float64, int32
from .loops import const, for_range, i32, i64

_F32, _F64 = ir.FloatType(), ir.DoubleType()


def _block(b: ir.IRBuilder, j, keys) -> list:
    """The four i32 output words of block j (an i64)."""
    c = [b.trunc(j, i32), b.trunc(b.lshr(j, const(32)), i32),
         ir.Constant(i32, 0), ir.Constant(i32, 0)]
    m0, m1 = ir.Constant(i64, MULTIPLIERS[0]), ir.Constant(i64, MULTIPLIERS[1])
    for k0, k1 in keys:
        p0, p1 = b.mul(b.zext(c[0], i64), m0), b.mul(b.zext(c[2], i64), m1)
        hi0, hi1 = (b.trunc(b.lshr(p, const(32)), i32) for p in (p0, p1))
        c = [b.xor(b.xor(hi1, c[1]), k0), b.trunc(p1, i32),
             b.xor(b.xor(hi0, c[3]), k1), b.trunc(p0, i32)]
    return c


def _elements(b: ir.IRBuilder, words: list, dt) -> list:
    """The elements of one block's words (the op's conversions; all exact)."""
    if dt == int32:
        return words
    if dt == float32:
        return [b.fmul(b.sitofp(b.lshr(w, ir.Constant(i32, 8)), _F32),
                       ir.Constant(_F32, 2.0 ** -24)) for w in words]
    out = []
    for w0, w1 in zip(words[0::2], words[1::2]):
        hi = b.sitofp(b.lshr(w0, ir.Constant(i32, 5)), _F64)
        lo = b.sitofp(b.lshr(w1, ir.Constant(i32, 6)), _F64)
        out.append(b.fmul(b.fadd(b.fmul(hi, ir.Constant(_F64, 2.0 ** 26)), lo),
                          ir.Constant(_F64, 2.0 ** -53)))
    return out


def emit_philox(b: ir.IRBuilder, v, out, ins) -> None:
    """Fills `out` (v's type) with the stream of the key at ins[0] (two i32 words)."""
    dt = v.dtype
    if dt not in (int32, float32, float64):
        raise TypeError(f"philox kernel: no {dt} output")
    key = ins[0]
    k0, k1 = b.load(key), b.load(b.gep(key, [const(1)]))
    keys = [(b.add(k0, ir.Constant(i32, r * WEYL[0] & 0xFFFFFFFF)),
             b.add(k1, ir.Constant(i32, r * WEYL[1] & 0xFFFFFFFF))) for r in range(ROUNDS)]
    per = 4 // words_per_element(dt)
    full, rest = divmod(v.type.size, per)

    def store(j, count):
        base = b.mul(j, const(per))
        for e, x in enumerate(_elements(b, _block(b, j, keys), dt)[:count]):
            b.store(x, b.gep(out, [b.add(base, const(e))], inbounds=True))

    if full:
        with for_range(b, full, name="block") as j:
            store(j, per)
    if rest:
        store(const(full), rest)
