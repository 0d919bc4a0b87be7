"""The GEMM building blocks, shared by every GEMM of a module: a register-blocked micro-kernel
and the packing routines. They take sizes and strides as arguments, so one copy per (dtype,
tile, operand layout) serves every matmul and convolution of a model (and LLVM compiles it
once), whatever their shapes.

The micro-kernel computes a block of up to mr x (nvec*VL) of C = A @ B for one slice of K,
keeping it in mr*nvec vector registers: per k it loads nvec vectors of one row of B, broadcasts
mr elements of one column of A and issues mr*nvec `llvm.fma` calls. Where A and B live is part
of the spec (which stride of A is 1; B packed or read in place), the strides themselves are
arguments, so the same generator serves packed panels (the fast path) and plain row-major
operands (few-rows products, where packing B would only add memory traffic).

    mk = emit_microkernel(module, TileSpec(float32, mr=8, nvec=2))
    # void mk(T* a, T* b, T* c, i64 kc, i64 a_ld, i64 b_ld, i64 ldc, i64 rows, i64 cols,
    #         i32 accumulate)

A element (r, k) is at a[r*a_ld + k] (spec.a_trans False) or a[r + k*a_ld] (True); B's row k
at b[k*b_ld] (b_ld is nvec*VL for packed B); C element (r, j) at c[r*ldc + j]. Only rows <
`rows` (<= mr) and columns < `cols` (<= nvec*VL) are stored: an edge tile reads A's last valid
row for the missing ones (never memory outside A) and masks B's loads past `cols` when B is read
in place (packed B is zero past its edge). `accumulate` nonzero adds the block to C (later K
slices) instead of overwriting it. Epilogues are applied by the drivers to each finished tile
(gemm.py), not here.

With spec.b_copy (B read in place) the kernel takes two more arguments, `T* bc, T* pf`: it
stores to bc (64-byte aligned) the B vectors it loads as one packed panel (element (k, j) at
k*nvec*VL + j, zeros past `cols` in the last vector), and prefetches into L2 the kc*nvec*VL
elements from pf on, a line per vector loaded: the few-rows GEMM's first row group copies a
strip of B as it computes (the other row groups read the copy with the packed kernel,
contiguous in L1 instead of strided through a few cache sets) and fetches its share of the
next K block of B in memory order, which DRAM serves far faster than the strip's column of
lines a row stride apart.

Packed layout of B (emit_pack_b here, transpose.emit_pack_bt for a B stored transposed):
    panel q (cols q*NR ..): element (k, j) at q*kc*NR + k*NR + j; columns past the edge are 0
Packed layout of a transposed A (emit_pack_at; only where reading it in place is slow):
    panel p (rows p*MR ..): element (r, k) at p*(kc*MR + pad) + k*MR + r
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...ir.types import DType
from .kernel import fma, intrinsic, llvm_type, masked_load, masked_store, splat, vector_width, vptr
from .loops import const, for_range, i32, i64, new_function, vconst

PREFETCH_C = True
UNROLL = 4  # k steps per trip of the micro-kernel's main loop: enough to hide the loop overhead


@dataclass(frozen=True)
class TileSpec:
    """The static part of one micro-kernel: register tile mr x nvec vectors, whether A is
    read transposed (A[r, k] at a[r + k*a_ld]) and whether B is packed (module docstring)."""
    dtype: DType
    mr: int
    nvec: int
    a_trans: bool = False
    b_packed: bool = True
    b_copy: bool = False    # B read in place is also stored, packed, to the argument `bc`

    @property
    def vl(self) -> int:
        return vector_width(self.dtype)

    @property
    def name(self) -> str:
        b = "p" if self.b_packed else "c" if self.b_copy else "s"
        return f"lepton.gemm.{self.dtype}.mk{self.mr}x{self.nvec}.{'t' if self.a_trans else 'n'}{b}"


def shared(module: ir.Module, name: str, build) -> ir.Function:
    """The module's function `name`, built by `build()` the first time it is asked for."""
    fn = module.globals.get(name)
    return fn if fn is not None else build()


def emit_microkernel(module: ir.Module, spec: TileSpec) -> ir.Function:
    """The shared micro-kernel for `spec` (module docstring), added to the module once."""
    return shared(module, spec.name, lambda: _emit_microkernel(module, spec))


def _lanes(vl: int) -> ir.Constant:
    return vconst(ir.VectorType(i64, vl), list(range(vl)))


def _col_masks(b, vl, nvec, cols):
    """Per vector v of the tile, the lanes below `cols` (all, some or none)."""
    return [b.icmp_signed("<", _lanes(vl), splat(b, b.sub(cols, const(v * vl)), vl))
            for v in range(nvec)]


def _emit_microkernel(module: ir.Module, spec: TileSpec) -> ir.Function:
    t = llvm_type(spec.dtype)
    vl, mr, nvec = spec.vl, spec.mr, spec.nvec
    vt = ir.VectorType(t, vl)
    copy = spec.b_copy and not spec.b_packed
    fn, b = new_function(module, spec.name, [t.as_pointer()] * 3 + [i64] * 6 + [i32]
                         + [t.as_pointer()] * (2 * copy),
                         ["a", "b", "c", "kc", "a_ld", "b_ld", "ldc", "rows", "cols", "acc"]
                         + ["bc", "pf"] * copy)
    fn.linkage = "internal"
    # kept out of line: one copy whatever calls it (one call per mr x nr x kc tile is noise)
    fn.attributes.add("noinline")
    a_p, b_p, c_p, kc, a_ld, b_ld, ldc, rows, cols, acc_flag = fn.args[:10]
    width = nvec * vl
    b_rs = const(width) if spec.b_packed else b_ld
    # row r of an edge tile reads row min(r, rows - 1): valid memory, its result not stored
    last = b.sub(rows, const(1))
    a_row = [const(0)] + [b.select(b.icmp_signed("<", const(r), rows), const(r), last)
                          for r in range(1, mr)]
    a_off = [x if spec.a_trans else b.mul(x, a_ld) for x in a_row]
    a_step = a_ld if spec.a_trans else const(1)
    zero = vconst(vt, None)

    def step(k, acc, b_mask):
        bv = []
        for v in range(nvec):
            p = vptr(b, b_p, b.add(b.mul(k, b_rs), const(v * vl)), vt)
            if b_mask is not None and v == nvec - 1:
                bv.append(masked_load(b, p, b_mask, vt))
            else:
                bv.append(b.load(p, align=64 if spec.b_packed else spec.dtype.itemsize))
            if copy:
                b.store(bv[v], vptr(b, fn.args[10], b.add(b.mul(k, const(width)),
                                                          const(v * vl)), vt), align=64)
                _prefetch(b, b.gep(fn.args[11], [b.add(b.mul(k, const(width)),
                                                       const(v * vl))]), locality=2)
        ak = b.mul(k, a_step)
        out = []
        for r in range(mr):
            x = b.load(b.gep(a_p, [b.add(ak, a_off[r])], inbounds=True),
                       align=spec.dtype.itemsize)
            av = splat(b, x, vl)
            out.append([fma(b, av, bv[v], acc[r][v]) for v in range(nvec)])
        return out

    def phis(init, block):
        ps = [[b.phi(vt) for _ in range(nvec)] for _ in range(mr)]
        for r in range(mr):
            for v in range(nvec):
                ps[r][v].add_incoming(init[r][v], block)
        return ps

    def k_loop(tag, b_mask):
        """The k loop (UNROLL steps a trip while they fit, then single steps); returns the
        accumulators, the builder at the loop's exit."""
        entry = b.block
        head, body = fn.append_basic_block(f"k.head{tag}"), fn.append_basic_block(f"k.body{tag}")
        rhead, rbody = fn.append_basic_block(f"r.head{tag}"), fn.append_basic_block(f"r.body{tag}")
        exit_ = fn.append_basic_block(f"k.exit{tag}")
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(i64, "k")
        k.add_incoming(const(0), entry)
        acc = phis([[zero] * nvec] * mr, entry)
        b.cbranch(b.icmp_signed("<=", b.add(k, const(UNROLL)), kc), body, rhead)
        b.position_at_end(body)
        cur = acc
        for u in range(UNROLL):
            cur = step(b.add(k, const(u)), cur, b_mask)
        k.add_incoming(b.add(k, const(UNROLL)), b.block)
        for r in range(mr):
            for v in range(nvec):
                acc[r][v].add_incoming(cur[r][v], b.block)
        b.branch(head)
        b.position_at_end(rhead)
        k2 = b.phi(i64, "k2")
        k2.add_incoming(k, head)
        acc2 = phis(acc, head)
        b.cbranch(b.icmp_signed("<", k2, kc), rbody, exit_)
        b.position_at_end(rbody)
        cur = step(k2, acc2, b_mask)
        k2.add_incoming(b.add(k2, const(1)), b.block)
        for r in range(mr):
            for v in range(nvec):
                acc2[r][v].add_incoming(cur[r][v], b.block)
        b.branch(rhead)
        b.position_at_end(exit_)
        return acc2

    if PREFETCH_C and spec.b_packed:     # C is in cache on the few-rows path
        _prefetch_tile(b, spec, c_p, ldc, a_row)
    accumulate = b.icmp_unsigned("!=", acc_flag, ir.Constant(i32, 0))
    full = b.and_(b.icmp_signed("==", rows, const(mr)), b.icmp_signed("==", cols, const(width)))
    if spec.b_packed:   # zeros past the edge: one loop serves every tile
        _emit_store(b, spec, vt, k_loop("", None), c_p, ldc, rows, cols, full, accumulate)
    else:               # B read in place: a column edge masks B's last vector
        with b.if_else(b.icmp_signed("==", cols, const(width))) as (whole, edge):
            with whole:
                _emit_store(b, spec, vt, k_loop("", None), c_p, ldc, rows, cols, full,
                            accumulate)
            with edge:
                mask = _col_masks(b, vl, nvec, cols)[-1]
                _emit_store(b, spec, vt, k_loop(".e", mask), c_p, ldc, rows, cols, full,
                            accumulate)
    b.ret_void()
    return fn


def _prefetch(b, p, locality: int, write: bool = False):
    """A prefetch of the line holding element pointer p (never faults)."""
    pf = intrinsic(b.module, "llvm.prefetch.p0", ir.VoidType(),
                   [ir.IntType(8).as_pointer(), i32, i32, i32])
    b.call(pf, [b.bitcast(p, ir.IntType(8).as_pointer()), ir.Constant(i32, int(write)),
                ir.Constant(i32, locality), ir.Constant(i32, 1)])


def _prefetch_tile(b, spec, c_p, ldc, rows):
    """Prefetches (for writing) the lines of the C tile the k loop will end by updating, so
    their misses overlap the loop instead of stalling the stores (C is beyond L2 in big
    GEMMs). Rows past the edge prefetch the last valid row again: never outside C."""
    last = spec.nvec * spec.vl - 1
    for r in rows:
        row = b.gep(c_p, [b.mul(r, ldc)], inbounds=True)
        for off in sorted({0, last} | set(range(64 // spec.dtype.itemsize, last + 1,
                                                64 // spec.dtype.itemsize))):
            _prefetch(b, b.gep(row, [const(off)]), locality=3, write=True)


def _emit_store(b, spec, vt, acc, c_p, ldc, rows, cols, full, accumulate):
    """Writes the register block to C: a whole tile with plain vector stores (added to C or
    not), an edge tile with masked stores of its valid rows and columns."""
    vl = spec.vl
    row_p = [c_p] + [b.gep(c_p, [b.mul(ldc, const(r))], inbounds=True) for r in range(1, spec.mr)]
    with b.if_else(full) as (whole, edge):
        with whole:
            with b.if_else(accumulate) as (add, put):
                for branch, adding in ((add, True), (put, False)):
                    with branch:
                        for r in range(spec.mr):
                            for v in range(spec.nvec):
                                p = vptr(b, row_p[r], v * vl, vt)
                                val = acc[r][v]
                                if adding:
                                    val = b.fadd(b.load(p, align=spec.dtype.itemsize), val)
                                b.store(val, p, align=spec.dtype.itemsize)
        with edge:
            masks = _col_masks(b, vl, spec.nvec, cols)
            for r in range(spec.mr):
                with b.if_then(b.icmp_signed("<", const(r), rows)):
                    for v in range(spec.nvec):
                        p = vptr(b, row_p[r], v * vl, vt)
                        old = masked_load(b, p, masks[v], vt)
                        val = b.select(accumulate, b.fadd(old, acc[r][v]), acc[r][v])
                        masked_store(b, val, p, masks[v])


def emit_pack_b(module: ir.Module, dtype: DType, nr: int) -> ir.Function:
    """The shared `void lepton.gemm.T.pbNR(T* dst, T* src, i64 kc, i64 nc, i64 ldb)`: packs the
    kc x nc block of row-major B (row stride ldb) at src into panels of nr columns (layout in
    the module docstring), zero filling the last panel's missing columns. dst must be 64-byte
    aligned."""
    return shared(module, f"lepton.gemm.{dtype}.pb{nr}", lambda: _emit_pack_b(module, dtype, nr))


def _emit_pack_b(module: ir.Module, dtype: DType, nr: int) -> ir.Function:
    t = llvm_type(dtype)
    vl = vector_width(dtype)
    vt = ir.VectorType(t, vl)
    fn, b = new_function(module, f"lepton.gemm.{dtype}.pb{nr}", [t.as_pointer()] * 2 + [i64] * 3,
                         ["dst", "src", "kc", "nc", "ldb"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # one copy, not one per call site
    dst, src, kc, nc, ldb = fn.args
    full = b.udiv(nc, const(nr))
    rem = b.sub(nc, b.mul(full, const(nr)))
    panel = b.mul(kc, const(nr))
    with for_range(b, full, name="p") as p:
        with for_range(b, kc, name="k") as k:
            s = b.add(b.mul(k, ldb), b.mul(p, const(nr)))
            d = b.add(b.mul(p, panel), b.mul(k, const(nr)))
            for v in range(nr // vl):
                x = b.load(vptr(b, src, b.add(s, const(v * vl)), vt), align=dtype.itemsize)
                b.store(x, vptr(b, dst, b.add(d, const(v * vl)), vt), align=64)
    has_rem = b.icmp_unsigned("!=", rem, const(0))
    with b.if_then(has_rem):
        # lanes < rem come from B, the rest are zeros so the micro-kernel may use them freely
        masks = _col_masks(b, vl, nr // vl, rem)
        with for_range(b, kc, name="ke") as k:
            s = b.add(b.mul(k, ldb), b.mul(full, const(nr)))
            d = b.add(b.mul(full, panel), b.mul(k, const(nr)))
            for v in range(nr // vl):
                x = masked_load(b, vptr(b, src, b.add(s, const(v * vl)), vt), masks[v], vt)
                b.store(x, vptr(b, dst, b.add(d, const(v * vl)), vt), align=64)
    b.ret_void()
    return fn


def emit_pack_at(module: ir.Module, dtype: DType, mr: int, pad: int = 0) -> ir.Function:
    """The shared `void lepton.gemm.T.paMR(T* dst, T* src, i64 kc, i64 mc, i64 lda)`: packs the
    mc x kc block of A whose transpose is stored row-major at src (A[i, k] at src[k*lda + i])
    into panels of mr rows: panel p holds element (r, k) at p*(kc*mr + pad) + k*mr + r (the
    last panel's missing rows are left alone: its edge tiles never store what they give).
    Each source row k is read once, front to back, as mr-element vectors; `pad` keeps the
    panels' write streams out of one cache set."""
    name = f"lepton.gemm.{dtype}.pa{mr}.{pad}"
    return shared(module, name, lambda: _emit_pack_at(module, name, dtype, mr, pad))


def _emit_pack_at(module, name, dtype, mr, pad):
    t = llvm_type(dtype)
    vt = ir.VectorType(t, mr)
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64] * 3,
                         ["dst", "src", "kc", "mc", "lda"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    dst, src, kc, mc, lda = fn.args
    full = b.udiv(mc, const(mr))
    rem = b.sub(mc, b.mul(full, const(mr)))
    panel = b.add(b.mul(kc, const(mr)), const(pad))
    lanes = ir.Constant(ir.VectorType(i64, mr), list(range(mr)))
    mask = b.icmp_signed("<", lanes, splat(b, rem, mr))
    has_rem = b.icmp_unsigned("!=", rem, const(0))
    with for_range(b, kc, name="k") as k:
        row = b.mul(k, lda)
        with for_range(b, full, name="p") as p:
            x = b.load(vptr(b, src, b.add(row, b.mul(p, const(mr))), vt), align=dtype.itemsize)
            b.store(x, vptr(b, dst, b.add(b.mul(p, panel), b.mul(k, const(mr))), vt),
                    align=dtype.itemsize)
        with b.if_then(has_rem):
            x = masked_load(b, vptr(b, src, b.add(row, b.mul(full, const(mr))), vt), mask, vt)
            masked_store(b, x, vptr(b, dst, b.add(b.mul(full, panel), b.mul(k, const(mr))), vt),
                         mask)
    b.ret_void()
    return fn
