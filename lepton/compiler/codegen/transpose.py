"""Vectorised transposition of a row-major block, for GEMM operands stored transposed.

A VL x VL tile (16 x f32, 8 x f64) is loaded as VL vectors, transposed in registers by log2(VL)
stages of two-input shuffles, and stored as VL vectors: no gathers, no scalar moves.

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
from .kernel import lane_mask, llvm_type, masked_load, masked_store, splat, vector_width, vptr
from .loops import const, for_range, i1, i32, i64, new_function


def transpose_vectors(b: ir.IRBuilder, rows: list) -> list:
    """The transpose of a VL x VL block given as its VL row vectors (VL a power of two).

    Stage `bit` swaps that bit between the row index and the lane index (each output row is
    one shuffle of a pair of rows); after every bit has been swapped, (r, c) sits at (c, r)."""
    vl = len(rows)
    if vl & (vl - 1):
        raise ValueError(f"transpose_vectors: {vl} rows is not a power of two")
    mask_t = ir.VectorType(i32, vl)
    cur = list(rows)
    bit = 1
    while bit < vl:
        lo = ir.Constant(mask_t, [k if not k & bit else vl + (k ^ bit) for k in range(vl)])
        hi = ir.Constant(mask_t, [(k ^ bit) if not k & bit else vl + k for k in range(vl)])
        nxt = list(cur)
        for j in range(vl):
            if not j & bit:
                nxt[j] = b.shuffle_vector(cur[j], cur[j | bit], lo)
                nxt[j | bit] = b.shuffle_vector(cur[j], cur[j | bit], hi)
        cur, bit = nxt, bit << 1
    return cur


def emit_transpose(module: ir.Module, name: str, dtype: DType, lds: int, ldd: int,
                   rows_pad: int) -> ir.Function:
    """Adds the internal transposition function `name` (module docstring). rows_pad must be a
    multiple of VL and ldd >= rows_pad; the caller keeps rows <= rows_pad."""
    t = llvm_type(dtype)
    vl = vector_width(dtype)
    vt = ir.VectorType(t, vl)
    if rows_pad % vl or ldd < rows_pad:
        raise ValueError(f"transpose {name}: rows_pad {rows_pad}, ldd {ldd} for {vl} lanes")
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64, i64],
                         ["dst", "src", "rows", "cols"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    dst, src, rows, cols = fn.args
    mask_t = ir.VectorType(i1, vl)
    none = ir.Constant(mask_t, [0] * vl)
    full_c = b.udiv(cols, const(vl))
    tail_c = b.sub(cols, b.mul(full_c, const(vl)))
    lanes = ir.Constant(ir.VectorType(i64, vl), list(range(vl)))

    def tile(r0, c0, row_lim, col_mask, col_lim):
        """One VL x VL tile at (r0, c0). row_lim None: all VL rows are there; else rows
        r0 + r with r < row_lim are. col_mask None: all VL columns; else the lanes to read and
        col_lim the number of dst rows to write."""
        vecs = []
        for r in range(vl):
            p = vptr(b, src, b.add(b.mul(b.add(r0, const(r)), const(lds)), c0), vt)
            if row_lim is None and col_mask is None:
                vecs.append(b.load(p, align=dtype.itemsize))
                continue
            m = col_mask if col_mask is not None else ir.Constant(mask_t, [1] * vl)
            if row_lim is not None:
                m = b.select(b.icmp_signed("<", const(r), row_lim), m, none)
            vecs.append(masked_load(b, p, m, vt))
        for c, v in enumerate(transpose_vectors(b, vecs)):
            p = vptr(b, dst, b.add(b.mul(b.add(c0, const(c)), const(ldd)), r0), vt)
            if col_lim is None:
                b.store(v, p, align=dtype.itemsize)
            else:
                ok = b.icmp_signed("<", const(c), col_lim)
                masked_store(b, v, p, b.select(ok, ir.Constant(mask_t, [1] * vl), none))

    def row_block(r0, row_lim):
        with for_range(b, full_c, name="ct") as ct:
            tile(r0, b.mul(ct, const(vl)), row_lim, None, None)
        with b.if_then(b.icmp_signed(">", tail_c, const(0))):
            cmask = b.icmp_signed("<", lanes, splat(b, tail_c, vl))
            tile(r0, b.mul(full_c, const(vl)), row_lim, cmask, tail_c)

    with for_range(b, rows_pad // vl, name="rt") as rt:
        r0 = b.mul(rt, const(vl))
        left = b.sub(rows, r0)
        with b.if_else(b.icmp_signed(">=", left, const(vl))) as (whole, part):
            with whole:
                row_block(r0, None)
            with part:
                # rows past `rows` load as zeros (an all-false mask reads nothing)
                row_block(r0, left)
    b.ret_void()
    return fn


def emit_pack_bt(module: ir.Module, name: str, dtype: DType, nr: int, ldb: int) -> ir.Function:
    """`void name(T* dst, T* src, i64 kc, i64 nc)`: packs the kc x nc block of B whose
    transpose is stored row-major at src (B[k, j] at src[j*ldb + k]) into the packed panel
    layout of microkernel.py (panel q: element (k, j) at q*kc*nr + k*nr + j, zero past nc)."""
    t = llvm_type(dtype)
    tr = emit_transpose(module, f"{name}.tr", dtype, lds=ldb, ldd=nr, rows_pad=nr)
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64, i64], ["dst", "src", "kc", "nc"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    dst, src, kc, nc = fn.args
    with for_range(b, b.udiv(b.add(nc, const(nr - 1)), const(nr)), name="q") as q:
        rows = b.sub(nc, b.mul(q, const(nr)))
        rows = b.select(b.icmp_signed("<", rows, const(nr)), rows, const(nr))
        b.call(tr, [b.gep(dst, [b.mul(q, b.mul(kc, const(nr)))], inbounds=True),
                    b.gep(src, [b.mul(q, const(nr * ldb))], inbounds=True), rows, kc])
    b.ret_void()
    return fn
