"""The GEMM building blocks: a register-blocked micro-kernel and the packing of B.

The micro-kernel computes an mr x (nvec*VL) block of C = A @ B for one slice of K, keeping the
block in mr*nvec vector registers: per k it loads nvec vectors of one row of B, broadcasts mr
elements of one column of A and issues mr*nvec `llvm.fma` calls. Where A and B live is part of
the spec (element strides), so the same generator serves packed panels (contiguous, the fast
path) and plain row-major operands (matrix-vector products, where packing B would only add
memory traffic).

    spec = TileSpec(float32, mr=8, nvec=2, n_valid=32, a_rs=1024, a_cs=1, b_rs=32, ldc=1024)
    mk = emit_microkernel(module, "mm.tile", spec)
    # void mk(T* a, T* b, T* c, i64 kc, i32 mode, i64 row0, i64 col0, i8* ctx)

`mode` bit 0: add the block to C (later K slices) instead of overwriting it; bit 1: this is the
last K slice, apply the epilogue (given ctx) before storing. The store is one place, written
once per mode, so an epilogue sees every output value exactly once.

Packed layout of B (the micro-kernel's fast input; emit_pack_b here, transpose.emit_pack_bt
for a B stored transposed):
    panel q (cols q*NR ..): element (k, j) at q*kc*NR + k*NR + j; columns past the edge are 0
Packed layout of a transposed A (emit_pack_at; only where reading it in place is slow):
    panel p (rows p*MR ..): element (r, k) at p*(kc*MR + pad) + k*MR + r
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ...ir.types import DType
from .kernel import (Epilogue, fma, lane_mask, llvm_type, masked_load, masked_store, splat,
                     vector_width, vptr)
from .loops import const, for_range, i8, i32, i64, new_function, vconst

UNROLL = 4  # k steps per trip of the micro-kernel's main loop: enough to hide the loop overhead


@dataclass(frozen=True)
class TileSpec:
    """The static shape of one micro-kernel.

    A element (r, k) is at a[r*a_rs + k*a_cs]; B's vector v of row k at b[k*b_rs + v*VL];
    C element (r, j) at c[r*ldc + j]. Only the first n_valid of the nvec*VL columns are
    loaded from an unpacked B (`b_masked`) and stored to C."""
    dtype: DType
    mr: int
    nvec: int
    n_valid: int
    a_rs: int
    a_cs: int
    b_rs: int
    ldc: int
    b_masked: bool = False
    b_align: int = 4

    @property
    def vl(self) -> int:
        return vector_width(self.dtype)


def emit_microkernel(module: ir.Module, name: str, spec: TileSpec,
                     epilogue: Epilogue = None) -> ir.Function:
    """Adds the internal micro-kernel function `name` (see the module docstring)."""
    t = llvm_type(spec.dtype)
    vl = spec.vl
    vt = ir.VectorType(t, vl)
    if not 0 < spec.n_valid <= spec.nvec * vl or spec.n_valid <= (spec.nvec - 1) * vl:
        raise ValueError(f"micro-kernel {name}: {spec.n_valid} valid columns for {spec.nvec} vectors")
    tail = spec.n_valid - (spec.nvec - 1) * vl          # valid lanes of the last vector
    tail_mask = lane_mask(vl, tail) if tail < vl else None
    fn, b = new_function(module, name,
                         [t.as_pointer()] * 3 + [i64, i32, i64, i64, i8.as_pointer()],
                         ["a", "b", "c", "kc", "mode", "row0", "col0", "ctx"])
    fn.linkage = "internal"
    # kept out of line: inlined with a constant kc, LLVM unrolls the k loop wholesale, which
    # multiplies compile time for no speed (one call per mr x nr x kc tile is noise)
    fn.attributes.add("noinline")
    a_p, b_p, c_p, kc, mode, row0, col0, ctx = fn.args
    mr, nvec = spec.mr, spec.nvec
    zero = vconst(vt, None)

    def step(k, acc):
        bv = []
        for v in range(nvec):
            p = vptr(b, b_p, b.add(b.mul(k, const(spec.b_rs)), const(v * vl)), vt)
            if spec.b_masked and v == nvec - 1 and tail_mask is not None:
                bv.append(masked_load(b, p, tail_mask, vt))
            else:
                bv.append(b.load(p, align=spec.b_align))
        out = []
        for r in range(mr):
            ak = b.load(b.gep(a_p, [b.add(b.mul(k, const(spec.a_cs)), const(r * spec.a_rs))],
                              inbounds=True), align=spec.dtype.itemsize)
            av = splat(b, ak, vl)
            out.append([fma(b, av, bv[v], acc[r][v]) for v in range(nvec)])
        return out

    # main loop: UNROLL k steps a trip while they fit; then single steps for the rest of kc
    entry = b.block
    head, body = fn.append_basic_block("k.head"), fn.append_basic_block("k.body")
    rhead, rbody = fn.append_basic_block("r.head"), fn.append_basic_block("r.body")
    store = fn.append_basic_block("store")
    b.branch(head)
    b.position_at_end(head)
    k = b.phi(i64, "k")
    acc = [[b.phi(vt) for _ in range(nvec)] for _ in range(mr)]
    k.add_incoming(const(0), entry)
    for row in acc:
        for p in row:
            p.add_incoming(zero, entry)
    b.cbranch(b.icmp_signed("<=", b.add(k, const(UNROLL)), kc), body, rhead)
    b.position_at_end(body)
    cur = acc
    for u in range(UNROLL):
        cur = step(b.add(k, const(u)), cur)
    k.add_incoming(b.add(k, const(UNROLL)), body)
    for r in range(mr):
        for v in range(nvec):
            acc[r][v].add_incoming(cur[r][v], body)
    b.branch(head)

    b.position_at_end(rhead)
    k2 = b.phi(i64, "k2")
    acc2 = [[b.phi(vt) for _ in range(nvec)] for _ in range(mr)]
    k2.add_incoming(k, head)
    for r in range(mr):
        for v in range(nvec):
            acc2[r][v].add_incoming(acc[r][v], head)
    b.cbranch(b.icmp_signed("<", k2, kc), rbody, store)
    b.position_at_end(rbody)
    cur = step(k2, acc2)
    k2.add_incoming(b.add(k2, const(1)), rbody)
    for r in range(mr):
        for v in range(nvec):
            acc2[r][v].add_incoming(cur[r][v], rbody)
    b.branch(rhead)

    b.position_at_end(store)
    _emit_store(b, spec, vt, acc2, c_p, mode, row0, col0, tail_mask, epilogue, ctx)
    return fn


def _emit_store(b, spec, vt, acc, c_p, mode, row0, col0, tail_mask, epilogue, ctx):
    """Writes the register block to C once per mode (see the module docstring)."""
    fn = b.function
    vl = spec.vl
    modes = (0, 1, 2, 3) if epilogue is not None else (0, 1)
    blocks = [fn.append_basic_block(f"store.m{m}") for m in modes]
    done = fn.append_basic_block("done")
    if epilogue is None:
        b.cbranch(b.trunc(mode, ir.IntType(1)), blocks[1], blocks[0])
    else:
        sw = b.switch(b.and_(mode, ir.Constant(i32, 3)), blocks[0])
        for m, blk in zip(modes, blocks):
            sw.add_case(ir.Constant(i32, m), blk)
    for m, blk in zip(modes, blocks):
        b.position_at_end(blk)
        for r in range(spec.mr):
            row = b.add(row0, const(r)) if m & 2 else None
            for v in range(spec.nvec):
                p = vptr(b, c_p, r * spec.ldc + v * vl, vt)
                masked = tail_mask is not None and v == spec.nvec - 1
                val = acc[r][v]
                if m & 1:
                    old = masked_load(b, p, tail_mask, vt) if masked else b.load(p, align=spec.dtype.itemsize)
                    val = b.fadd(old, val)
                if m & 2:
                    val = epilogue(b, val, row, b.add(col0, const(v * vl)), ctx)
                if masked:
                    masked_store(b, val, p, tail_mask)
                else:
                    b.store(val, p, align=spec.dtype.itemsize)
        b.branch(done)
    b.position_at_end(done)
    b.ret_void()


def emit_pack_b(module: ir.Module, name: str, dtype: DType, nr: int, ldb: int) -> ir.Function:
    """`void name(T* dst, T* src, i64 kc, i64 nc)`: packs the kc x nc block of row-major B
    (row stride ldb) at src into panels of nr columns (layout in the module docstring), zero
    filling the last panel's missing columns. dst must be 64-byte aligned."""
    t = llvm_type(dtype)
    vl = vector_width(dtype)
    vt = ir.VectorType(t, vl)
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64, i64], ["dst", "src", "kc", "nc"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")  # one copy, not one per call site and constant
    dst, src, kc, nc = fn.args
    full = b.udiv(nc, const(nr))
    rem = b.sub(nc, b.mul(full, const(nr)))
    panel = b.mul(kc, const(nr))
    with for_range(b, full, name="p") as p:
        with for_range(b, kc, name="k") as k:
            s = b.add(b.mul(k, const(ldb)), b.mul(p, const(nr)))
            d = b.add(b.mul(p, panel), b.mul(k, const(nr)))
            for v in range(nr // vl):
                x = b.load(vptr(b, src, b.add(s, const(v * vl)), vt), align=dtype.itemsize)
                b.store(x, vptr(b, dst, b.add(d, const(v * vl)), vt), align=64)
    has_rem = b.icmp_unsigned("!=", rem, const(0))
    with b.if_then(has_rem):
        # lanes < rem come from B, the rest are zeros so the micro-kernel may use them freely
        lanes = ir.Constant(ir.VectorType(i64, vl), list(range(vl)))
        with for_range(b, kc, name="ke") as k:
            s = b.add(b.mul(k, const(ldb)), b.mul(full, const(nr)))
            d = b.add(b.mul(full, panel), b.mul(k, const(nr)))
            for v in range(nr // vl):
                lim = splat(b, b.sub(rem, const(v * vl)), vl)
                mask = b.icmp_signed("<", lanes, lim)
                x = masked_load(b, vptr(b, src, b.add(s, const(v * vl)), vt), mask, vt)
                b.store(x, vptr(b, dst, b.add(d, const(v * vl)), vt), align=64)
    b.ret_void()
    return fn


def emit_pack_at(module: ir.Module, name: str, dtype: DType, mr: int, lda: int,
                 pad: int = 0) -> ir.Function:
    """`void name(T* dst, T* src, i64 kc, i64 mc)`: packs the mc x kc block of A whose
    transpose is stored row-major at src (A[i, k] at src[k*lda + i]) into panels of mr rows:
    panel p holds element (r, k) at p*(kc*mr + pad) + k*mr + r (the last panel's missing rows
    are left alone: its edge micro-kernel never reads them). Each source row k is read once,
    front to back, as mr-element vectors; `pad` keeps the panels' write streams out of one
    cache set."""
    t = llvm_type(dtype)
    vt = ir.VectorType(t, mr)
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i64, i64],
                         ["dst", "src", "kc", "mc"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    dst, src, kc, mc = fn.args
    full = b.udiv(mc, const(mr))
    rem = b.sub(mc, b.mul(full, const(mr)))
    panel = b.add(b.mul(kc, const(mr)), const(pad))
    lanes = ir.Constant(ir.VectorType(i64, mr), list(range(mr)))
    mask = b.icmp_signed("<", lanes, splat(b, rem, mr))
    has_rem = b.icmp_unsigned("!=", rem, const(0))
    with for_range(b, kc, name="k") as k:
        row = b.mul(k, const(lda))
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
