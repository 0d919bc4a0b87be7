"""Vectorised max_pool2d_grad for windows that abut along the width (kernel width == stride
width, 1 or 2) and neither overlap nor pad: the usual 2x2/stride 2 (and 1-wide) pooling.

    if vector_max_pool_grad_fits(win, dtype): emit_vector_max_pool_grad(b, win, dtype, out, x, dy)

VL windows of an output row at a time (VL: a register's lanes, fewer for narrower rows): each tap row of x is one
(stride 1) or two (stride 2, deinterleaved by shuffles) vector loads; the first maximum (or
first NaN) of each lane's window is found with vector compares in the reference's row-major
tap order; each tap's dx is dy where it is the maximum and 0 elsewhere, re-interleaved and
stored whole rows at a time. Every pixel a window covers is written once (no read-modify-
write); pixels no window covers are zeroed by the caller. The scalar loop it replaces ran
~2 ns per window on znver3.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import float32, float64
from . import gemm
from .kernel import lane_mask, llvm_type, masked_load, masked_store, vector_width, vptr
from .loops import const, for_range, i32


def vector_max_pool_grad_fits(win, dtype) -> bool:
    """Whether `win` (grad_kernels._Windows) takes this path: no padding, windows that do not
    overlap vertically and abut horizontally with a width of 1 or 2, a float32/64 input."""
    return (dtype in (float32, float64) and (win.ph, win.pw) == (0, 0) and win.sh >= win.kh
            and win.kw == win.sw and win.sw in (1, 2))


def emit_vector_max_pool_grad(b: ir.IRBuilder, win, dtype, out, x_p, dy_p) -> None:
    t = llvm_type(dtype)
    # 256-bit vectors without AVX-512: 512-bit ones are split in two, and their deinterleaving
    # shuffles cross the halves (32x32x32x32 f32, znver3: 494 us with 16 lanes, 241 with 8);
    # narrow rows take narrower vectors (8 windows a row: one 8-lane vector, no masks)
    top = vector_width(dtype) if gemm._wide_registers() else vector_width(dtype) // 2
    vl = min(top, max(4, 1 << (win.wo - 1).bit_length()))
    vt = ir.VectorType(t, vl)
    it = ir.VectorType(i32, vl)
    kh, sw, h, w, ho, wo = win.kh, win.sw, win.h, win.w, win.ho, win.wo
    zero = ir.Constant(vt, [0.0] * vl)
    neg_inf = ir.Constant(vt, [float("-inf")] * vl)
    pick = [ir.Constant(it, [lane * sw + j for lane in range(vl)]) for j in range(sw)]
    # output vector q of a row pair (j = 0 values a, j = 1 values c): element e of the row
    # segment is window e // 2, tap e % 2, i.e. lane (q*vl + e)//2 of a or of c
    weave = [ir.Constant(it, [(q * vl + e) // 2 + (q * vl + e) % 2 * vl for e in range(vl)])
             for q in range(sw)]

    def windows(plane_x, plane_dx, g_row, oh, ow0, r):
        """The r <= vl windows ow0 .. ow0 + r - 1 of output row oh."""
        full = r == vl
        g = b.load(vptr(b, g_row, ow0, vt), align=dtype.itemsize) if full else \
            masked_load(b, vptr(b, g_row, ow0, vt), lane_mask(vl, r), vt)
        rows = []
        for i in range(kh):
            row = b.add(b.mul(oh, const(win.sh)), const(i))
            at = b.add(b.mul(row, const(w)), b.mul(ow0, const(sw)))
            parts = []
            for q in range(sw):
                need = min(vl, r * sw - q * vl)
                p = vptr(b, plane_x, b.add(at, const(q * vl)), vt)
                parts.append(b.load(p, align=dtype.itemsize) if need == vl else
                             masked_load(b, p, lane_mask(vl, need), vt) if need > 0 else zero)
            taps = [parts[0]] if sw == 1 else \
                [b.shuffle_vector(parts[0], parts[1], pick[j]) for j in range(sw)]
            rows.append((at, taps))
        best, arg, n = neg_inf, None, 0
        for _, taps in rows:
            for v in taps:
                tap = ir.Constant(it, [n] * vl)
                if arg is None:     # the first tap always counts (also a NaN or -inf)
                    best, arg = v, tap
                else:
                    better = b.or_(b.fcmp_ordered(">", v, best),
                                   b.and_(b.fcmp_unordered("uno", v, v),
                                          b.fcmp_ordered("ord", best, best)))
                    best, arg = b.select(better, v, best), b.select(better, tap, arg)
                n += 1
        n = 0
        for at, taps in rows:
            vals = []
            for _ in taps:
                hit = b.icmp_signed("==", arg, ir.Constant(it, [n] * vl))
                vals.append(b.select(hit, g, zero))
                n += 1
            outs = vals if sw == 1 else \
                [b.shuffle_vector(vals[0], vals[1], weave[q]) for q in range(sw)]
            for q, v in enumerate(outs):
                need = min(vl, r * sw - q * vl)
                p = vptr(b, plane_dx, b.add(at, const(q * vl)), vt)
                if need == vl:
                    b.store(v, p, align=dtype.itemsize)
                elif need > 0:
                    masked_store(b, v, p, lane_mask(vl, need))

    whole, rest = divmod(wo, vl)
    with for_range(b, win.planes, name="plane") as pl:
        plane_x = b.gep(x_p, [b.mul(pl, const(h * w))], inbounds=True)
        plane_dx = b.gep(out, [b.mul(pl, const(h * w))], inbounds=True)
        with for_range(b, ho, name="oh") as oh:
            g_row = b.gep(dy_p, [b.add(b.mul(pl, const(ho * wo)), b.mul(oh, const(wo)))],
                          inbounds=True)
            if whole:
                with for_range(b, whole, name="v") as v:
                    windows(plane_x, plane_dx, g_row, oh, b.mul(v, const(vl)), vl)
            if rest:
                windows(plane_x, plane_dx, g_row, oh, const(whole * vl), rest)
