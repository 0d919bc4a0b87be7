"""Vectorised transposition of a row-major block, for GEMM operands stored transposed.

A VL x VL tile (16 x f32, 8 x f64) is loaded as VL vectors, transposed in registers by a network
of two-input shuffles (64 single-instruction shuffles for f32, 24 for f64), and stored as VL
vectors: no gathers, no scalar moves. Measured ~20 G elements/s from L1 (f32), so packing a
transposed B costs about what reading it does.

    tr = emit_transpose(module, "pack.tr", float32, lds=784, ldd=32, rows_pad=32)
    # void tr(T* dst, T* src, i64 rows, i64 cols):
    #   dst[c*ldd + r] = src[r*lds + c]  for r < rows, c < cols
    #   dst[c*ldd + r] = 0               for rows <= r < rows_pad, c < cols

It never reads src outside rows x cols and never writes dst rows c >= cols (edges use masked
loads and stores), so it can fill one packed panel of B without touching the next one.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import DType
from .kernel import llvm_type, masked_load, masked_store, splat, vector_width, vptr
from .loops import const, for_range, i1, i32, i64, new_function
from .microkernel import shared


def transpose_vectors(b: ir.IRBuilder, rows: list) -> list:
    """The transpose of a VL x VL block (VL = 16 x f32 or 8 x f64) given as its VL row vectors.

    The classic AVX-512 network, each output one two-input shuffle that the backend maps to a
    single instruction: interleave row pairs within 128-bit lanes (unpcklps/unpckhps), for f32
    pair those again by 64-bit halves (shufps), then vector x[g*L + c] holds, in 128-bit lane
    q, rows g*L .. g*L+L-1 of column q*L + c (L elements per lane); two rounds of 128-bit
    lane shuffles (vshuff32x4) finish a 4 x 4 transpose of those lanes for each c."""
    vl = len(rows)
    lane = vl // 4                      # elements per 128-bit lane
    if lane not in (2, 4) or vl != 4 * lane:
        raise ValueError(f"transpose_vectors: {vl} rows of {rows[0].type}")

    def shuf(x, y, idx):
        return b.shuffle_vector(x, y, ir.Constant(ir.VectorType(i32, vl), idx))

    def in_lanes(pick):    # pick(e) -> source index within (x ++ y) for element e of a lane
        return [q * lane + pick(e) for q in range(4) for e in range(lane)]

    half = lane // 2
    lo = in_lanes(lambda e: e // 2 + (vl if e % 2 else 0))
    hi = in_lanes(lambda e: half + e // 2 + (vl if e % 2 else 0))
    x = []
    for r in range(0, vl, 2):
        x += [shuf(rows[r], rows[r + 1], lo), shuf(rows[r], rows[r + 1], hi)]
    if lane == 4:
        # x[4g + 2h + s] holds, per lane, rows 4g+2h, 4g+2h+1 at columns 2s, 2s+1 (paired)
        lo64 = in_lanes(lambda e: e % 2 + (vl if e >= 2 else 0))
        hi64 = in_lanes(lambda e: 2 + e % 2 + (vl if e >= 2 else 0))
        y = []
        for g in range(4):
            t = x[4 * g:4 * g + 4]
            y += [shuf(t[0], t[2], lo64), shuf(t[0], t[2], hi64),
                  shuf(t[1], t[3], lo64), shuf(t[1], t[3], hi64)]
        x = y

    def lanes(first, second):   # 128-bit lanes (a.first, a.second, b.first, b.second)
        return [src + blk * lane + e for src, blk in ((0, first), (0, second), (vl, first),
                                                      (vl, second)) for e in range(lane)]
    even, odd = lanes(0, 2), lanes(1, 3)
    out = [None] * vl
    for c in range(lane):
        g = [x[k * lane + c] for k in range(4)]
        y0, y1 = shuf(g[0], g[1], even), shuf(g[0], g[1], odd)
        y2, y3 = shuf(g[2], g[3], even), shuf(g[2], g[3], odd)
        for q, (u, v, m) in enumerate(((y0, y2, even), (y1, y3, even), (y0, y2, odd),
                                       (y1, y3, odd))):
            out[q * lane + c] = shuf(u, v, m)
    return out


def emit_transpose(module: ir.Module, name: str, dtype: DType, lds: int | None, ldd: int,
                   rows_pad: int) -> ir.Function:
    """Adds the internal transposition function `name` (module docstring). rows_pad must be a
    multiple of VL and ldd >= rows_pad; the caller keeps rows <= rows_pad. With lds None the
    source's row stride is a fifth argument, `i64 lds`."""
    t = llvm_type(dtype)
    vl = vector_width(dtype)
    vt = ir.VectorType(t, vl)
    if rows_pad % vl or ldd < rows_pad:
        raise ValueError(f"transpose {name}: rows_pad {rows_pad}, ldd {ldd} for {vl} lanes")
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64] * (2 if lds else 3),
                         ["dst", "src", "rows", "cols", "lds"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    dst, src, rows, cols = fn.args[:4]
    lds = const(lds) if lds else fn.args[4]
    mask_t = ir.VectorType(i1, vl)
    none = ir.Constant(mask_t, [0] * vl)
    lanes = ir.Constant(ir.VectorType(i64, vl), list(range(vl)))

    def tile(r0, c0, row_lim=None, col_lim=None):
        """One VL x VL tile at (r0, c0). Without limits all of it is there; else only rows
        r0 + r with r < row_lim and columns c0 + c with c < col_lim are (masked loads read
        zeros elsewhere) and only dst rows c < col_lim are written."""
        ones = ir.Constant(mask_t, [1] * vl)
        col_mask = None if col_lim is None else \
            b.icmp_signed("<", lanes, splat(b, col_lim, vl))
        vecs = []
        for r in range(vl):
            p = vptr(b, src, b.add(b.mul(b.add(r0, const(r)), lds), c0), vt)
            if row_lim is None:
                vecs.append(b.load(p, align=dtype.itemsize))
            else:
                ok = b.icmp_signed("<", const(r), row_lim)
                vecs.append(masked_load(b, p, b.select(ok, col_mask, none), vt))
        for c, v in enumerate(transpose_vectors(b, vecs)):
            p = vptr(b, dst, b.add(b.mul(b.add(c0, const(c)), const(ldd)), r0), vt)
            if col_lim is None:
                b.store(v, p, align=dtype.itemsize)
            else:
                ok = b.icmp_signed("<", const(c), col_lim)
                masked_store(b, v, p, b.select(ok, ones, none))

    # two copies of the tile: unmasked for whole tiles, masked for the edges (rows past
    # `rows`, up to rows_pad, load as zeros: an all-false mask reads nothing)
    with for_range(b, rows_pad // vl, name="rt") as rt:
        r0 = b.mul(rt, const(vl))
        row_lim = b.sub(rows, r0)
        whole_rows = b.icmp_signed(">=", row_lim, const(vl))
        with for_range(b, b.udiv(b.add(cols, const(vl - 1)), const(vl)), name="ct") as ct:
            c0 = b.mul(ct, const(vl))
            col_lim = b.sub(cols, c0)
            whole = b.and_(whole_rows, b.icmp_signed(">=", col_lim, const(vl)))
            with b.if_else(whole) as (full, edge):
                with full:
                    tile(r0, c0)
                with edge:
                    tile(r0, c0, row_lim, col_lim)
    b.ret_void()
    return fn


def emit_pack_bt(module: ir.Module, dtype: DType, nr: int) -> ir.Function:
    """The shared `void lepton.gemm.T.pbtNR(T* dst, T* src, i64 kc, i64 nc, i64 ldb)`: packs
    the kc x nc block of B whose transpose is stored row-major at src (B[k, j] at
    src[j*ldb + k]) into the packed panel layout of microkernel.py (panel q: element (k, j)
    at q*kc*nr + k*nr + j, zero past nc)."""
    name = f"lepton.gemm.{dtype}.pbt{nr}"
    return shared(module, name, lambda: _emit_pack_bt(module, name, dtype, nr))


def _emit_pack_bt(module: ir.Module, name: str, dtype: DType, nr: int) -> ir.Function:
    t = llvm_type(dtype)
    tr = emit_transpose(module, f"{name}.tr", dtype, lds=None, ldd=nr, rows_pad=nr)
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64] * 3,
                         ["dst", "src", "kc", "nc", "ldb"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    dst, src, kc, nc, ldb = fn.args
    with for_range(b, b.udiv(b.add(nc, const(nr - 1)), const(nr)), name="q") as q:
        rows = b.sub(nc, b.mul(q, const(nr)))
        rows = b.select(b.icmp_signed("<", rows, const(nr)), rows, const(nr))
        b.call(tr, [b.gep(dst, [b.mul(q, b.mul(kc, const(nr)))], inbounds=True),
                    b.gep(src, [b.mul(b.mul(q, const(nr)), ldb)], inbounds=True), rows, kc, ldb])
    b.ret_void()
    return fn
