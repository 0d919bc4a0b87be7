"""Batched matmul kernels: a packed, cache-blocked, register-blocked GEMM for f32/f64, a streaming
path for few rows (matrix-vector), dot products for few columns or, with B transposed, few rows
(dot.py), a plain loop for integers (int_gemm.py).

    k = emit_matmul(module, "mm", TensorType(f32, (64, 784)), TensorType(f32, (784, 256)),
                    TensorType(f32, (64, 256)))
    # void mm(float* out, float* a, float* b, i8* scratch), scratch of k.scratch_bytes

Semantics are np.matmul's for inputs of at least 2 dims: batch dims broadcast. `trans_a` /
`trans_b` swap the last two axes of an operand as stored (x^T @ dy, x @ W^T) without copying
it: every path reads the stored operand through its strides or transposes a block as it packs.
The epilogue's row index counts rows of the output seen as a (batch*M, N) matrix; its column
index is n.

The float GEMM follows the BLIS loop nest (jc over NC columns, pc over KC of K, ic over MC rows,
then micro-panels jr, ir): a KC x NC block of B is packed once per (jc, pc) and stays in L2/L3,
each KC x NR micro-panel of B stays in L1 while the micro-kernel sweeps the MC x KC block of A
(L2) past it. A is read in place: packing it too was measured 0-10% slower here (the
prefetchers follow the mr row streams) and cost compile time. A transposed B is packed by
in-register transposes (transpose.py) into the same panels; a transposed A is read in place
with other strides, or packed when its row stride is a multiple of 4 KiB (see emit_gemm_driver).

Shared code: the packed GEMM (packed_gemm), the few-rows GEMM (rows_gemm), their micro-kernels
and packing routines take M, N, K, the strides and the blocks as arguments and are emitted once
per module for each (dtype, tile, operand layout) under fixed names (`lepton.gemm.f32.drv8x32.nn`
...), so a model with many matmuls and convolutions has LLVM compile them once. What stays per
GEMM is a thin driver passing its shape as constants, and with an epilogue its tile function
(emit_epilogue_tile), which the shared code calls through a pointer on each finished tile of C
after its last K slice. The dot-product paths (dot.py) and integer GEMMs stay per shape.

Measured on the znver5 host, one core (tests/bench_gemm_conv.py): 1024^3 f32 ~260 GFLOP/s with
either flag or none, f64 ~125 (np.matmul with this OpenBLAS: ~130 and ~63).
"""
from __future__ import annotations

import functools

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import llvmlite.binding as llvm
from llvmlite import ir

from ...ir.types import DType, TensorType, float32, float64
from .dot import DOT_MAX_N, DOT_SWAP_MAX_M, emit_dot_driver
from .int_gemm import emit_int_gemm
from .kernel import (SCRATCH_ARG, Epilogue, Kernel, intrinsic, kernel_args, llvm_type,
                     masked_load, masked_store, minmax, new_driver, new_kernel, splat,
                     vector_width, vptr, vsuffix)
from .loops import const, for_range, i8, i32, i64, new_function, vconst
from .parallel import finish_items, worth_threads
from .microkernel import UNROLL, TileSpec, emit_microkernel, emit_pack_at, emit_pack_b, shared
from .transpose import emit_pack_bt


@dataclass(frozen=True)
class Blocking:
    """Register tile (mr x nr) and cache blocks (mc, kc, nc); mc % mr == nc % nr == 0."""
    mr: int
    nr: int
    mc: int
    kc: int
    nc: int


# Tuned on znver5 (32 zmm registers, 48 KiB L1d, 1 MiB L2) with tests/bench_gemm_conv.py;
# 12x32, 14x32, 6x64, 8x48 tiles and kc 384/512 measured within noise of these.
WIDE_BLOCKING = {
    float32: Blocking(mr=8, nr=32, mc=128, kc=256, nc=2048),
    float64: Blocking(mr=8, nr=16, mc=96, kc=256, nc=1024),
}
# With 16 vector registers (AVX2) the 8 x 32 tile's 32 accumulators spill: 512^3 f32 ran at
# 16 GFLOP/s on znver3, a 6 x 16 tile (12 ymm accumulators) at 70 (NumPy's OpenBLAS 75).
NARROW_BLOCKING = {
    float32: Blocking(mr=6, nr=16, mc=96, kc=256, nc=2048),
    float64: Blocking(mr=6, nr=8, mc=96, kc=256, nc=1024),
}


@functools.cache
def _wide_registers() -> bool:
    """Whether the host has 32 512-bit vector registers (AVX-512) for the register tile."""
    return "+avx512f" in llvm.get_host_cpu_features().flatten()


def default_blocking(dtype) -> Blocking:
    """The blocking for the host's vector register file (the target key holds the CPU)."""
    return (WIDE_BLOCKING if _wide_registers() else NARROW_BLOCKING)[dtype]


# The few-rows path (emit_rows_driver) beats packing up to about 64 rows while C stays in L2
# (measured: 32x784x512 1.35x faster, 64x784x512 even, 128x256x10 slower).
ROWS_MAX_M = 64
ROWS_MAX_C_BYTES = 1 << 18      # C is re-read once per K slice
ROWS_MAX_VECTORS = 16           # vectors of C per row in a tile (znver5, 1x784x512: 16 > 8 > 4)
ROWS_KB = 16                    # rows of B per K slice: streams for the prefetcher, or more
ROWS_SLICE_BYTES = 1 << 15      # while narrow B rows give a slice smaller than this
ROWS_PANEL_BYTES = 1 << 14      # the packed strip of B that several row groups share (L1)
# with several row groups, the next K block of B is prefetched into L2 during this one: up to
# this many bytes (znver3, 512 KiB L2, 784x512 and 512x512 f32 B, 8-32 rows: blocks of 64 rows
# of B beat 32, 128 and 256 with B in DRAM, within 5% of 256 with B in cache) ...
ROWS_AHEAD_BYTES = 1 << 17
# ... up to this many rows of A; with more, a block's FMAs hide the misses of a larger one and
# fewer micro-kernel calls win (64 rows: 256-row blocks even with B in DRAM, 10% faster hot)
ROWS_AHEAD_MAX_M = 40
# B read in place with a row stride that is a multiple of 4 KiB puts a tile's k steps in one L1
# set: from this many rows on, packing B pays (znver3: 16x256x1024 1.65x, 32x256x1024 1.5x,
# 64x256x1024 1.8x faster packed; 8x256x1024 even)
ROWS_MAX_M_4K = 15


A_PANEL_PAD = 16                # elements between packed A panels (64 B for f32)


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m


@dataclass(frozen=True)
class GemmShape:
    """One static GEMM C[M,N] = op(A) @ op(B), row-major with leading dims lda/ldb/ldc.

    op(A) is A[M,K] stored as is, or with trans_a its transpose stored as a row-major K x M
    matrix (A[i, k] at a[k*lda + i]); likewise trans_b: B[K,N] stored as N x K (B[k, j] at
    b[j*ldb + k]). lda/ldb are the row strides of the operands as stored."""
    dtype: DType
    m: int
    n: int
    k: int
    lda: int
    ldb: int
    ldc: int
    trans_a: bool = False
    trans_b: bool = False

    @property
    def a_strides(self) -> tuple[int, int]:
        """(row, column) element strides of A[M,K]: A[i, k] at a[i*rs + k*cs]."""
        return (1, self.lda) if self.trans_a else (self.lda, 1)

    @property
    def b_strides(self) -> tuple[int, int]:
        """(row, column) element strides of B[K,N]: B[k, j] at b[k*rs + j*cs]."""
        return (1, self.ldb) if self.trans_b else (self.ldb, 1)


def _b_pack_bytes(s: GemmShape, blk: Blocking) -> int:
    return _round_up(min(blk.kc, s.k) * _round_up(min(blk.nc, s.n), blk.nr) * s.dtype.itemsize, 64)


def _packs_a(s: GemmShape, blk: Blocking) -> bool:
    return s.trans_a and s.n > blk.nr and s.lda * s.dtype.itemsize % 4096 == 0


def gemm_scratch_bytes(s: GemmShape, blk: Blocking) -> int:
    """Scratch for one packed kc x nc block of B (and with trans_a one mc x kc block of A)."""
    panels = min(blk.mc, _round_up(s.m, blk.mr)) // blk.mr
    a_bytes = panels * (min(blk.kc, s.k) * blk.mr + A_PANEL_PAD) * s.dtype.itemsize
    return _b_pack_bytes(s, blk) + (a_bytes if _packs_a(s, blk) else 0)


def _epi_tile_type(t: ir.Type) -> ir.PointerType:
    """The epilogue of one finished tile, `void (T* c, i64 ldc, i64 rows, i64 cols, i64 row0,
    i64 col0, i8* ctx)` (see emit_epilogue_tile), as the shared drivers take it."""
    return ir.FunctionType(ir.VoidType(), [t.as_pointer()] + [i64] * 5 + [i8.as_pointer()]) \
        .as_pointer()


def emit_epilogue_tile(module: ir.Module, name: str, dtype: DType,
                       epilogue: Epilogue) -> ir.Function:
    """Adds `void name(T* c, i64 ldc, i64 rows, i64 cols, i64 row0, i64 col0, i8* ctx)`
    applying the epilogue in place to a rows x cols tile of C (row stride ldc) whose element
    (0, 0) is the output's (row0, col0): called by a shared driver on each tile just after
    its last K slice was stored, while the tile is in L1."""
    t = llvm_type(dtype)
    vl = vector_width(dtype)
    vt = ir.VectorType(t, vl)
    fn, b = new_function(module, name, [t.as_pointer()] + [i64] * 5 + [i8.as_pointer()],
                         ["c", "ldc", "rows", "cols", "row0", "col0", "ctx"])
    fn.linkage = "internal"
    c, ldc, rows, cols, row0, col0, ctx = fn.args
    whole = b.udiv(cols, const(vl))
    rem = b.sub(cols, b.mul(whole, const(vl)))
    mask = b.icmp_signed("<", vconst(ir.VectorType(i64, vl), list(range(vl))),
                         splat(b, rem, vl))
    # vector code already: not unrolled or vectorised again (that tripled its size)
    with for_range(b, rows, name="r", unroll=False, interleave=1) as r:
        c_r = b.gep(c, [b.mul(r, ldc)], inbounds=True)
        row = b.add(row0, r)
        with for_range(b, whole, name="v", unroll=False, interleave=1) as v:
            j = b.mul(v, const(vl))
            p = vptr(b, c_r, j, vt)
            b.store(epilogue(b, _fenced(b, b.load(p, align=dtype.itemsize)), row,
                             b.add(col0, j), ctx), p,
                    align=dtype.itemsize)
        with b.if_then(b.icmp_signed("!=", rem, const(0))):
            j = b.mul(whole, const(vl))
            p = vptr(b, c_r, j, vt)
            masked_store(b, epilogue(b, masked_load(b, p, mask, vt), row, b.add(col0, j), ctx),
                         p, mask)
    b.ret_void()
    return fn


def _fenced(b: ir.IRBuilder, v):
    """v through llvm.arithmetic.fence: the same value, but the code generator no longer sees
    that the epilogue's result may be the value just loaded from where it is stored. Without it
    an epilogue `select(c > 0, c, 0)` (a ReLU without bias) becomes a masked store of zeros,
    which AMD CPUs run microcoded: W7's first conv 4x slower on znver3."""
    f = intrinsic(b.module, f"llvm.arithmetic.fence.{vsuffix(v.type)}", v.type, [v.type])
    return b.call(f, [v])


def _thin_driver(module, name, dtype, epilogue, shared_fn, sizes, scratch_arg: bool):
    """The per-GEMM driver (new_driver's signature) calling a shared routine with this GEMM's
    sizes and strides (`sizes`: i64 constants, or ir values) and its epilogue tile function."""
    fn, b = new_driver(module, name, dtype)
    a_p, b_p, c_p, scratch, row0, ctx = fn.args
    t = llvm_type(dtype)
    epi = ir.Constant(_epi_tile_type(t), None) if epilogue is None else \
        emit_epilogue_tile(module, f"{name}.et", dtype, epilogue)
    args = [a_p, b_p, c_p] + ([scratch] if scratch_arg else [])
    args += [const(x) if isinstance(x, int) else x for x in sizes]
    b.call(shared_fn, args + [row0, epi, ctx])
    b.ret_void()
    return fn


def emit_gemm_driver(module: ir.Module, name: str, s: GemmShape, blk: Blocking,
                     epilogue: Epilogue = None, accumulate: bool = False) -> ir.Function:
    """Adds the internal `void name(T* a, T* b, T* c, i8* scratch, i64 row0, i8* ctx)`
    computing C = op(A) @ op(B) (with `accumulate`, C += op(A) @ op(B)) for the shape `s`
    (row0: the epilogue's index of C's first row, ctx: the epilogue's context) by a call of
    the module's shared packed GEMM for (dtype, mr x nr, transposes); scratch holds
    gemm_scratch_bytes(s, blk) for the packed block of B (and of A, if packed)."""
    if blk.nr % vector_width(s.dtype) or blk.mc % blk.mr or blk.nc % blk.nr:
        raise ValueError(f"bad blocking {blk} for {s.dtype}")
    drv = packed_gemm(module, s.dtype, blk.mr, blk.nr, s.trans_a, s.trans_b)
    sizes = [s.m, s.n, s.k, s.lda, s.ldb, s.ldc, blk.mc, blk.kc, blk.nc,
             ir.Constant(i32, int(_packs_a(s, blk))), ir.Constant(i32, int(accumulate))]
    return _thin_driver(module, name, s.dtype, epilogue, drv, sizes, True)


def packed_gemm(module: ir.Module, dtype: DType, mr: int, nr: int, trans_a: bool,
                trans_b: bool) -> ir.Function:
    """The module's shared packed GEMM (BLIS loop nest, module docstring) for this dtype, tile
    and operand layout: `void (T* a, T* b, T* c, i8* scratch, i64 m, n, k, lda, ldb, ldc, mc,
    kc, nc, i32 pack_a, i32 acc0, i64 row0, epi_tile* epi, i8* ctx)`. epi (or null) is called
    on each tile after its last K slice. With pack_a (trans_a only) blocks of A are packed;
    with acc0 the first K slice adds to C too (C += A @ B)."""
    name = f"lepton.gemm.{dtype}.drv{mr}x{nr}.{'t' if trans_a else 'n'}{'t' if trans_b else 'n'}"
    return shared(module, name, lambda: _emit_packed_gemm(module, name, dtype, mr, nr, trans_a,
                                                          trans_b))


def _emit_packed_gemm(module, name, dtype, mr, nr, trans_a, trans_b):
    t = llvm_type(dtype)
    tp = t.as_pointer()
    vl = vector_width(dtype)
    fn, b = new_function(module, name, [tp, tp, tp, i8.as_pointer()] + [i64] * 9 +
                         [i32, i32, i64, _epi_tile_type(t), i8.as_pointer()],
                         ["a", "b", "c", "scratch", "m", "n", "k", "lda", "ldb", "ldc", "mc",
                          "kc", "nc", "pack_a", "acc0", "row0", "epi", "ctx"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    (a_p, b_p, c_p, scratch, m, n, k, lda, ldb, ldc, mc_max, kc_max, nc_max, pack_a_flag, acc0,
     row0, epi, ctx) = fn.args
    b_rs, b_cs = (const(1), ldb) if trans_b else (ldb, const(1))
    a_rs, a_cs = (const(1), lda) if trans_a else (lda, const(1))
    mk = emit_microkernel(module, TileSpec(dtype, mr, nr // vl, a_trans=trans_a))
    pack_b = (emit_pack_bt if trans_b else emit_pack_b)(module, dtype, nr)
    b_pack = b.bitcast(scratch, tp)
    # packed A after one packed block of B (gemm_scratch_bytes)
    kc_top = minmax(b, kc_max, k, smaller=True)
    nc_top = minmax(b, nc_max, n, smaller=True)
    b_bytes = b.mul(b.mul(kc_top, _round_up_v(b, nc_top, nr)), const(dtype.itemsize))
    a_pack = b.bitcast(b.gep(scratch, [_round_up_v(b, b_bytes, 64)]), tp)
    packs_a = b.icmp_unsigned("!=", pack_a_flag, ir.Constant(i32, 0))
    has_epi = b.icmp_unsigned("!=", b.ptrtoint(epi, i64), const(0))
    # A is read in place (a transposed A has other strides), except a transposed A whose
    # row stride is a multiple of 4 KiB (the caller's choice, _packs_a): then a micro-panel's
    # k steps all map to one L1 set (1024^3 f32: 216 instead of 262 GFLOP/s); packing it
    # (reading rows front to back) pays once the block meets more than one B micro-panel.
    pack_a = emit_pack_at(module, dtype, mr, A_PANEL_PAD) if trans_a else None

    with _steps(b, n, nc_max, "jc") as jc:
        nc = minmax(b, nc_max, b.sub(n, jc), smaller=True)
        with _steps(b, k, kc_max, "pc") as pc:
            kc = minmax(b, kc_max, b.sub(k, pc), smaller=True)
            b_blk = b.add(b.mul(pc, b_rs), b.mul(jc, b_cs))
            b.call(pack_b, [b_pack, b.gep(b_p, [b_blk], inbounds=True), kc, nc, ldb])
            acc = b.or_(b.zext(b.icmp_signed(">", pc, const(0)), i32), acc0)
            do_epi = b.and_(has_epi, b.icmp_signed("==", b.add(pc, kc), k))
            with _steps(b, m, mc_max, "ic") as ic:
                mc = minmax(b, mc_max, b.sub(m, ic), smaller=True)
                a_blk = b.gep(a_p, [b.add(b.mul(ic, a_rs), b.mul(pc, a_cs))], inbounds=True)
                a_ld, panel_step = lda, b.mul(const(mr), a_rs)
                if pack_a is not None:
                    with b.if_then(packs_a):
                        b.call(pack_a, [a_pack, a_blk, kc, mc, lda])
                    a_blk = b.select(packs_a, a_pack, a_blk)
                    a_ld = b.select(packs_a, const(mr), lda)
                    panel_step = b.select(packs_a, b.add(b.mul(kc, const(mr)),
                                                         const(A_PANEL_PAD)), panel_step)
                with for_range(b, _ceil_div_v(b, nc, nr), name="jr") as jr:
                    j0 = b.mul(jr, const(nr))
                    bp = b.gep(b_pack, [b.mul(j0, kc)], inbounds=True)
                    col = b.add(jc, j0)
                    cols = minmax(b, const(nr), b.sub(nc, j0), smaller=True)
                    with for_range(b, _ceil_div_v(b, mc, mr), name="ir") as ir_:
                        i0 = b.mul(ir_, const(mr))
                        row = b.add(ic, i0)
                        rows = minmax(b, const(mr), b.sub(mc, i0), smaller=True)
                        cp = b.gep(c_p, [b.add(b.mul(row, ldc), col)], inbounds=True)
                        b.call(mk, [b.gep(a_blk, [b.mul(ir_, panel_step)], inbounds=True), bp,
                                    cp, kc, a_ld, const(nr), ldc, rows, cols, acc])
                        with b.if_then(do_epi):
                            b.call(epi, [cp, ldc, rows, cols, b.add(row0, row), col, ctx])
    b.ret_void()
    return fn


@contextmanager
def _steps(b, n, step, name):
    """A loop over 0, step, 2*step, ... < n for an i64 value `step`."""
    with for_range(b, b.udiv(b.add(n, b.sub(step, const(1))), step), name=name) as i:
        yield b.mul(i, step)


def _ceil_div_v(b, x, d: int):
    return b.udiv(b.add(x, const(d - 1)), const(d))


def _round_up_v(b, x, d: int):
    return b.mul(_ceil_div_v(b, x, d), const(d))


def rows_accumulators() -> int:
    """Accumulator vectors (of vector_width lanes) the rows driver's tile may hold: 24 of 32
    zmm registers with AVX-512; without it each vector is two of 16 ymm registers, so 6 (12
    ymm). Measured on znver3: the old 6 x 4 tile (48 ymm) ran W7's second convolution at 19
    GFLOP/s, 6 x 1 at 54; 1x784x512 1.3x faster with 1 x 4 than 1 x 16. With the shared panel
    (rows_gemm), 16-64 rows x 784 x 512: 4 x 1 and 6 x 1 within noise, 3 x 2, 2 x 2, 2 x 3 and
    1 x 4 10-45% slower, 8 x 1 (16 ymm accumulators) spills."""
    return 24 if _wide_registers() else 6


def _rows_tile(s: GemmShape, mr: int) -> tuple[int, int]:
    """(rows, vectors) of the rows driver's register tile for GemmShape s: enough
    accumulators to cover the FMA latency, few enough to stay in registers, and not much work
    past M or N (M=32 with mr 6 takes 4 rows a group, not 36 rows of work)."""
    acc = rows_accumulators()
    mr = _snug(s.m, min(mr, s.m, acc), low=max(1, min(mr, s.m, acc) // 2))
    vecs = -(-s.n // vector_width(s.dtype))
    return mr, _snug(vecs, max(1, min(ROWS_MAX_VECTORS, acc // mr, vecs)), low=1)


def _snug(total: int, top: int, low: int) -> int:
    """The largest step in [low, top] whose whole steps cover `total` with less than 1/16
    left over, else the one leaving least over."""
    def over(x):
        return -(-total // x) * x - total
    fits = [x for x in range(top, low - 1, -1) if over(x) * 16 <= -(-total // x) * x]
    return fits[0] if fits else min(range(top, low - 1, -1), key=over)


def emit_rows_driver(module: ir.Module, name: str, s: GemmShape, mr: int,
                     epilogue: Epilogue = None) -> ir.Function:
    """Adds an internal driver (emit_gemm_driver's signature) for GEMMs whose C fits in cache
    (few rows: matrix-vector products, small batches), calling the module's shared rows GEMM
    (rows_gemm) with this shape's sizes."""
    if s.trans_b:
        raise ValueError("rows driver: B must be stored untransposed")
    mr, nvec = _rows_tile(s, mr)
    drv = rows_gemm(module, s.dtype, mr, nvec, s.trans_a, s.m > mr)
    return _thin_driver(module, name, s.dtype, epilogue, drv,
                        [s.m, 0, s.n, s.k, s.lda, s.ldb, s.ldc, _rows_kb(s, mr, nvec)], False)


def _rows_kb(s: GemmShape, mr: int, nvec: int) -> int:
    """Rows of B per K block of the rows driver for GemmShape s and its mr x nvec tile. With
    several row groups: as many as the shared panel holds (the accumulators stay in registers
    that long; fewer calls), and up to ROWS_AHEAD_MAX_M rows no more than keep the next
    block, prefetched into L2 meanwhile, within ROWS_AHEAD_BYTES; K evened out over the
    blocks. With one row group: a slice of a few rows of B for the hardware prefetcher."""
    if s.m > mr:
        row_bytes = s.n * s.dtype.itemsize
        top = ROWS_PANEL_BYTES // (nvec * vector_width(s.dtype) * s.dtype.itemsize)
        if s.m <= ROWS_AHEAD_MAX_M:
            top = min(top, max(ROWS_KB, ROWS_AHEAD_BYTES // row_bytes))
        top = max(UNROLL, top // UNROLL * UNROLL)
        blocks = -(-s.k // top)
        return min(top, _round_up(-(-s.k // blocks), UNROLL))
    if s.m * s.n * s.dtype.itemsize > ROWS_MAX_C_BYTES:
        # one row group and a C beyond L2 (emit_ct_driver's tall C^T): slices would only
        # re-read C, there is no other row group to share them with
        return s.k
    return max(ROWS_KB, ROWS_SLICE_BYTES // (s.n * s.dtype.itemsize))


def rows_gemm(module: ir.Module, dtype: DType, mr: int, nvec: int, trans_a: bool,
              panel: bool):
    """The module's shared few-rows GEMM: `void (T* a, T* b, T* c, i64 m, n_lo, n_hi, k, lda,
    ldb, ldc, kb, i64 row0, epi_tile* epi, i8* ctx)` computing the columns [n_lo, n_hi) of C
    (a thread's share; a, b, c point at the whole operands). Nothing is packed ahead and B
    streams through exactly once, K cut into blocks of kb rows; each block meets every column
    tile of width nvec*VL, each tile every row group of mr rows.

    Without `panel` (for one row group, M <= mr: matrix-vector) every tile reads B in place;
    kb is small (a slice of B whose kb concurrent row streams the hardware prefetcher follows).

    With `panel` (several row groups) the first row group reads the kb x width strip of B in
    place and copies it into a packed panel on the stack as it goes (microkernel b_copy); the
    other row groups read that panel, contiguous and in L1. The strip comes from memory once,
    overlapped with the first group's FMAs. Read in place by every group, a strip whose rows
    are a power of two apart sits in a few cache sets of L1 and L2 and came from L3 again for
    each group (18x784x512 ran at 70 GF/s, 18x784x528 at 94 on znver3). kb is cut to what the
    panel holds (ROWS_PANEL_BYTES); the accumulators stay in registers for all kb steps. While
    it copies, the first group also prefetches into L2 its share of the next K block in memory
    order (when the columns are whole rows of B): read as the strips' columns of lines a row
    stride apart, B from DRAM came 1.5x slower (16x512x512, B cold: 255 us, 160 with this).

    A may be transposed (other strides); B may not (its rows are what the vector loads
    stream)."""
    name = f"lepton.gemm.{dtype}.rows{mr}x{nvec}.{'t' if trans_a else 'n'}{'p' if panel else ''}"
    return shared(module, name, lambda: _emit_rows_gemm(module, name, dtype, mr, nvec, trans_a,
                                                         panel))


def _emit_rows_gemm(module, name, dtype, mr, nvec, trans_a, panel):
    t = llvm_type(dtype)
    tp = t.as_pointer()
    width = nvec * vector_width(dtype)
    fn, b = new_function(module, name, [tp, tp, tp] + [i64] * 9 + [_epi_tile_type(t),
                                                                   i8.as_pointer()],
                         ["a", "b", "c", "m", "n_lo", "n_hi", "k", "lda", "ldb", "ldc", "kb",
                          "row0", "epi", "ctx"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    a_p, b_p, c_p, m, n_lo, n_hi, k, lda, ldb, ldc, kb, row0, epi, ctx = fn.args
    n = b.sub(n_hi, n_lo)
    a_rs, a_cs = (const(1), lda) if trans_a else (lda, const(1))
    has_epi = b.icmp_unsigned("!=", b.ptrtoint(epi, i64), const(0))
    groups = _ceil_div_v(b, m, mr)
    tiles = _ceil_div_v(b, n, width)
    panel_len = max(UNROLL, ROWS_PANEL_BYTES // (width * dtype.itemsize)) * width

    # loop nests as generators: the caller's `for` body is emitted inside the loop
    def blocks(kb):
        """Loops over the K blocks; yields (a, b at the block, kc, accumulate, last block)."""
        with _steps(b, k, kb, "ks") as k0:
            kc = minmax(b, kb, b.sub(k, k0), smaller=True)
            acc = b.zext(b.icmp_signed(">", k0, const(0)), i32)
            yield (b.gep(a_p, [b.mul(k0, a_cs)], inbounds=True),
                   b.gep(b_p, [b.mul(k0, ldb)], inbounds=True), kc, acc,
                   b.icmp_signed("==", b.add(k0, kc), k))

    def tile(mk_fn, a_k, b_j, col, cols, g, kc, acc, last, extra=()):
        r0 = b.mul(g, const(mr))
        rows = minmax(b, const(mr), b.sub(m, r0), smaller=True)
        cp = b.gep(c_p, [b.add(b.mul(r0, ldc), col)], inbounds=True)
        b.call(mk_fn, [b.gep(a_k, [b.mul(r0, a_rs)], inbounds=True), b_j, cp, kc, lda, ldb,
                       ldc, rows, cols, acc] + list(extra))
        with b.if_then(b.and_(has_epi, last)):
            b.call(epi, [cp, ldc, rows, cols, b.add(row0, r0), col, ctx])

    def columns():
        with for_range(b, tiles, name="j") as j:
            col = b.add(n_lo, b.mul(j, const(width)))
            yield col, minmax(b, const(width), b.sub(n_hi, col), smaller=True)

    if panel:
        mk_copy = emit_microkernel(module, TileSpec(dtype, mr, nvec, a_trans=trans_a,
                                                    b_packed=False, b_copy=True))
        mk_panel = emit_microkernel(module, TileSpec(dtype, mr, nvec, a_trans=trans_a))
        buf = b.alloca(ir.ArrayType(t, panel_len))
        buf.align = 64
        buf = b.bitcast(buf, tp)
        # the next K block's rows, prefetched in memory order (a share per column tile) when
        # they are whole rows of B (not a thread's block of columns) and there is one
        whole_rows = b.icmp_signed("==", n, ldb)
        for a_k, b_k, kc, acc, last in blocks(minmax(b, kb, const(panel_len // width),
                                                     smaller=True)):
            ahead = b.and_(whole_rows, b.not_(last))
            next_rows = b.gep(b_k, [b.add(b.mul(kc, ldb), n_lo)])
            for col, cols in columns():
                share = b.gep(next_rows, [b.mul(b.sub(col, n_lo), kc)])
                tile(mk_copy, a_k, b.gep(b_k, [col], inbounds=True), col, cols, const(0), kc,
                     acc, last, [buf, b.select(ahead, share, buf)])
                with for_range(b, groups, start=1, name="g") as g:
                    tile(mk_panel, a_k, buf, col, cols, g, kc, acc, last)
    else:
        mk = emit_microkernel(module, TileSpec(dtype, mr, nvec, a_trans=trans_a,
                                               b_packed=False))
        for a_k, b_k, kc, acc, last in blocks(kb):
            for col, cols in columns():
                with for_range(b, groups, name="g") as g:
                    tile(mk, a_k, b.gep(b_k, [col], inbounds=True), col, cols, g, kc, acc,
                         last)
    b.ret_void()
    return fn


def emit_ct_driver(module: ir.Module, name: str, s: GemmShape,
                   epilogue: Epilogue = None) -> tuple[ir.Function, int]:
    """Adds a driver (emit_gemm_driver's signature) for a transposed A with few columns
    (N <= DOT_MAX_N < M: a weight gradient x^T @ dy with few outputs). A as stored is
    op(A)^T, rows running along M, so C^T = op(B)^T @ op(A)^T is a few-rows product whose
    vector loads stream A once: the rows driver computes it into scratch, then C^T is copied
    into C through the epilogue (scalars: row = row0 + i, col = j). Returns (fn, scratch)."""
    if not s.trans_a:
        raise ValueError("ct driver: for a transposed A only")
    ldt = _round_up(s.m, vector_width(s.dtype))
    st = GemmShape(s.dtype, s.n, s.m, s.k, s.ldb, s.lda, ldt, trans_a=not s.trans_b)
    inner = emit_rows_driver(module, f"{name}.t", st, default_blocking(s.dtype).mr)
    tp = llvm_type(s.dtype).as_pointer()
    fn, b = new_driver(module, name, s.dtype)
    a_p, b_p, c_p, scratch, row0, ctx = fn.args
    ct = b.bitcast(scratch, tp)
    b.call(inner, [b_p, a_p, ct, scratch, const(0), ctx])
    with for_range(b, s.m, name="i") as i:
        for j in range(s.n):
            v = b.load(b.gep(ct, [b.add(i, const(j * ldt))], inbounds=True))
            if epilogue is not None:
                v = epilogue(b, v, b.add(row0, i), const(j), ctx)
            b.store(v, b.gep(c_p, [b.add(b.mul(i, const(s.ldc)), const(j))], inbounds=True))
    b.ret_void()
    return fn, s.n * ldt * s.dtype.itemsize


# A few-rows product splits its columns across threads once B holds this many elements (4 MiB of
# f32, ~80 us on one znver3 core). Smaller ones gain less than a fork-join can cost: W1's 1x784x512
# (~30 us) split over 2 threads ran 0.08 ms (as torch's 2 threads) in one round on the shared
# 2-core VM and 0.11-4.3 ms in others, each region waiting for the second thread to get a CPU.
SPLIT_MIN_B_ELEMENTS = 1 << 20


def _rows_path(s: GemmShape) -> bool:
    """Whether plan_gemm takes the few-rows path for GemmShape s (float, default blocking)."""
    rows_max = ROWS_MAX_M_4K if s.ldb * s.dtype.itemsize % 4096 == 0 else ROWS_MAX_M
    return s.dtype in (float32, float64) and not s.trans_b and \
        not (s.n <= DOT_MAX_N and s.m > s.n) and s.m <= rows_max and \
        s.m * s.n * s.dtype.itemsize <= ROWS_MAX_C_BYTES


def _splits_columns(s: GemmShape, threads: int) -> bool:
    """Whether a few-rows product (too few rows to split: matrix-vector) splits its columns."""
    if threads <= 1 or not _rows_path(s) or s.n * s.k < SPLIT_MIN_B_ELEMENTS:
        return False
    return s.n >= 2 * _rows_tile(s, default_blocking(s.dtype).mr)[1] * vector_width(s.dtype)


def _column_split(module, name, fn, bld, s: GemmShape, epilogue, threads: int) -> Kernel:
    """Completes the kernel `fn` (emit_matmul's) as the few-rows product of GemmShape s with
    its columns split across threads: each thread calls the shared rows GEMM on a block of
    whole register tiles (the last block takes the edge), so B streams once, in parallel."""
    mr, nvec = _rows_tile(s, default_blocking(s.dtype).mr)
    width = nvec * vector_width(s.dtype)
    tiles = -(-s.n // width)
    parts = min(threads, tiles)
    block = -(-tiles // parts) * width
    parts = -(-s.n // block)
    drv = rows_gemm(module, s.dtype, mr, nvec, s.trans_a, s.m > mr)
    epi = ir.Constant(_epi_tile_type(llvm_type(s.dtype)), None) if epilogue is None else \
        emit_epilogue_tile(module, f"{name}.et", s.dtype, epilogue)
    kb = _rows_kb(s, mr, nvec)

    def body(bb, part, args):
        c_p, a_p, b_p, _, ctx = kernel_args(args)
        lo = bb.mul(part, const(block))
        hi = minmax(bb, bb.add(lo, const(block)), const(s.n), smaller=True)
        bb.call(drv, [a_p, b_p, c_p, const(s.m), lo, hi] +
                [const(x) for x in (s.k, s.lda, s.ldb, s.ldc, kb, 0)] + [epi, ctx])
    return Kernel(fn, finish_items(module, name, fn, bld, parts, parts, 0, body, SCRATCH_ARG))


def plan_gemm(module: ir.Module, name: str, s: GemmShape, epilogue: Epilogue = None,
              blocking: Optional[Blocking] = None) -> tuple[ir.Function, int]:
    """Picks the code path for one static GEMM; returns (driver function, scratch bytes).
    The driver has the signature of `emit_gemm_driver`'s. An explicit `blocking` forces the
    packed path with those blocks (for tests and tuning).

    Float paths: N <= DOT_MAX_N < M: dot products (A rows against B columns), or for a
    transposed A the few-rows product C^T = op(B)^T @ A as stored; a transposed B with
    M <= DOT_SWAP_MAX_M: dot products the other way round (rows of B^T as stored against
    groups of up to DOT_MAX_N rows of A); few rows and a small C with B untransposed: the
    streaming rows driver; else packed (a transposed B cannot stream along N: beyond 16 rows
    packing it beats another pass over it per 8 rows)."""
    if s.dtype not in (float32, float64):
        return emit_int_gemm(module, name, s, epilogue), 0
    blk = blocking or default_blocking(s.dtype)
    if blocking is None:
        if s.n <= DOT_MAX_N and s.m > s.n:
            if s.trans_a:
                return emit_ct_driver(module, name, s, epilogue)
            return emit_dot_driver(module, name, s, epilogue)
        if s.trans_b and s.m <= DOT_SWAP_MAX_M:
            return emit_dot_driver(module, name, s, epilogue, swap=True)
        if _rows_path(s):
            return emit_rows_driver(module, name, s, blk.mr, epilogue), 0
    blk = fit_blocking(blk, s)
    return emit_gemm_driver(module, name, s, blk, epilogue), gemm_scratch_bytes(s, blk)


def fit_blocking(blk: Blocking, s: GemmShape) -> Blocking:
    """Evens out the K and M blocks (K=288 with kc=256 becomes two slices of 144, not 256+32:
    a short last slice pays the whole C read-modify-write for little work)."""
    nk = -(-s.k // blk.kc)
    kc = min(blk.kc, _round_up(-(-s.k // nk), UNROLL))
    nm = -(-s.m // blk.mc)
    mc = min(blk.mc, _round_up(-(-s.m // nm), blk.mr))
    return Blocking(blk.mr, blk.nr, mc, kc, blk.nc)


def _check_matmul(a: TensorType, b: TensorType, out: TensorType, trans_a: bool, trans_b: bool):
    """Returns (batch shape, m, k, n) of op(a) @ op(b); ValueError if the types disagree."""
    what = f"{'transpose(' + str(a) + ')' if trans_a else a} @ " \
           f"{'transpose(' + str(b) + ')' if trans_b else b}"
    if a.ndim < 2 or b.ndim < 2 or a.dtype != b.dtype:
        raise ValueError(f"matmul kernel: bad operand types {what}")
    m, k = a.shape[-1:-3:-1] if trans_a else a.shape[-2:]
    kb, n = b.shape[-1:-3:-1] if trans_b else b.shape[-2:]
    if k != kb:
        raise ValueError(f"matmul kernel: contracted dims differ ({k} and {kb}) in {what}")
    batch = _broadcast(a.shape[:-2], b.shape[:-2])
    want = batch + (m, n)
    if out.shape != want or out.dtype != a.dtype:
        raise ValueError(f"matmul kernel: output {out} does not match {what} (want {want})")
    return batch, m, k, n


def _broadcast(x, y):
    n = max(len(x), len(y))
    x, y = (1,) * (n - len(x)) + tuple(x), (1,) * (n - len(y)) + tuple(y)
    if any(p != q and 1 not in (p, q) for p, q in zip(x, y)):
        raise ValueError(f"matmul kernel: batch dims {x} and {y} do not broadcast")
    return tuple(max(p, q) for p, q in zip(x, y))


def _batch_strides(shape, batch, matrix_elems):
    """Element strides of an operand's batch dims aligned to `batch` (0 where broadcast)."""
    shape = (1,) * (len(batch) - len(shape)) + tuple(shape)
    strides, acc = [], matrix_elems
    for d in reversed(shape):
        strides.append(0 if d == 1 else acc)
        acc *= d
    return strides[::-1]


def emit_matmul(module: ir.Module, name: str, a: TensorType, b: TensorType, out: TensorType,
                epilogue: Epilogue = None, blocking: Optional[Blocking] = None,
                trans_a: bool = False, trans_b: bool = False, threads: int = 1) -> Kernel:
    """Adds `void name(T* out, T* a, T* b, i8* scratch[, i8* ctx])` (ctx, passed to the
    epilogue, only with one) computing op(a) @ op(b) with static shapes and NumPy's batch
    broadcasting (module docstring). op(x) is x, or with the trans
    flag its last two axes swapped: `a` then describes the operand as stored, (..., K, M),
    and `b` (..., N, K); nothing is copied to memory for it. Raises ValueError on
    inconsistent types.

        emit_matmul(mod, "dw", TensorType(f32, (128, 784)), TensorType(f32, (128, 256)),
                    TensorType(f32, (784, 256)), trans_a=True)     # x^T @ dy
    """
    batch, m, k, n = _check_matmul(a, b, out, trans_a, trans_b)
    t = llvm_type(a.dtype)
    nb = math.prod(batch)
    sa = _batch_strides(a.shape[:-2], batch, m * k)
    sb = _batch_strides(b.shape[:-2], batch, k * n)
    fn, bld = new_kernel(module, name, a.dtype, epilogue)
    c_p, a_p, b_p, scratch, ctx = kernel_args(fn.args)
    if m == 0 or n == 0 or nb == 0:
        bld.ret_void()
        return Kernel(fn, 0)
    if k == 0:
        # an empty sum: zeros (through the epilogue, as scalars), no GEMM machinery
        with for_range(bld, nb * m, name="r") as r:
            with for_range(bld, n, name="j") as j:
                v = ir.Constant(t, 0)
                if epilogue is not None:
                    v = epilogue(bld, v, r, j, ctx)
                bld.store(v, bld.gep(c_p, [bld.add(bld.mul(r, const(n)), j)]))
        bld.ret_void()
        return Kernel(fn, 0)
    lda, ldb = (m if trans_a else k), (k if trans_b else n)
    if nb == 1 or (not trans_a and not any(sb) and all(x for x, d in zip(sa, batch) if d > 1)):
        # B shared by every batch and A a dense stack of row-major matrices: one tall GEMM
        # of nb*m rows, split into blocks of rows across threads
        rows = nb * m
        per_thread = worth_threads(threads, rows * n * k // 32, rows // 8)
        s = GemmShape(a.dtype, rows, n, k, lda, ldb, n, trans_a, trans_b)
        if per_thread == 1 and blocking is None and _splits_columns(s, threads):
            return _column_split(module, name, fn, bld, s, epilogue, threads)
        mb = rows if per_thread == 1 else _round_up(-(-rows // per_thread), 8)
        sizes = sorted({mb, rows - (-(-rows // mb) - 1) * mb})
        drivers = {}
        for size in sizes:
            s = GemmShape(a.dtype, size, n, k, lda, ldb, n, trans_a, trans_b)
            tag = ".gemm" if size == mb else ".gemm.tail"
            drivers[size] = plan_gemm(module, name + tag, s, epilogue, blocking)
        per_scratch = _round_up(max(sc for _, sc in drivers.values()), 64)

        def rows_body(bb, blk, args):
            c_p, a_p, b_p, scratch, ctx = kernel_args(args)
            r0 = bb.mul(blk, const(mb))
            a_blk = bb.gep(a_p, [r0 if trans_a else bb.mul(r0, const(lda))])
            args = [a_blk, b_p, bb.gep(c_p, [bb.mul(r0, const(n))]), scratch, r0, ctx]
            last = -(-rows // mb) - 1
            if len(sizes) == 1:
                bb.call(drivers[sizes[0]][0], args)
            else:
                with bb.if_else(bb.icmp_signed("==", blk, const(last))) as (tail, full):
                    with tail:
                        bb.call(drivers[sizes[0]][0], args)
                    with full:
                        bb.call(drivers[sizes[1]][0], args)
        return Kernel(fn, finish_items(module, name, fn, bld, -(-rows // mb), per_thread,
                                       per_scratch, rows_body, SCRATCH_ARG))
    s = GemmShape(a.dtype, m, n, k, lda, ldb, n, trans_a, trans_b)
    drv, scratch_bytes = plan_gemm(module, f"{name}.gemm", s, epilogue, blocking)
    per_scratch = _round_up(scratch_bytes, 64)

    def batch_body(bb, bi, args):
        c_p, a_p, b_p, scratch, ctx = kernel_args(args)
        a_off, b_off, rest = const(0), const(0), bi
        for d in reversed(range(len(batch))):
            idx = bb.urem(rest, const(batch[d]))
            rest = bb.udiv(rest, const(batch[d]))
            a_off = bb.add(a_off, bb.mul(idx, const(sa[d])))
            b_off = bb.add(b_off, bb.mul(idx, const(sb[d])))
        bb.call(drv, [bb.gep(a_p, [a_off]), bb.gep(b_p, [b_off]),
                      bb.gep(c_p, [bb.mul(bi, const(m * n))]), scratch, bb.mul(bi, const(m)),
                      ctx])
    return Kernel(fn, finish_items(module, name, fn, bld, nb,
                                   worth_threads(threads, nb * m * n * k // 32, nb),
                                   per_scratch, batch_body, SCRATCH_ARG))
