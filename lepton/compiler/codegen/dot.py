"""GEMM for very few columns (A @ x with x of shape (K, 1) .. (K, 8)): dot products.

With N this small a register tile along N wastes most lanes, so the kernel vectorises along K
instead: B is transposed once into scratch (N rows of K, zero-padded to whole vectors), then
each group of R rows of A streams through, every (row, column) pair keeping one vector of
partial sums that is reduced to a scalar at the end.

    drv, nbytes = emit_dot_driver(module, "mv", GemmShape(f32, 1024, 1, 1024, 1024, 1, 1))
    # void drv(T* a, T* b, T* c, i8* scratch, i64 row0): same contract as gemm.py's drivers

The epilogue receives scalars here (row = row0 + m, col = n).
"""
from __future__ import annotations

from llvmlite import ir

from .kernel import (Epilogue, fma, intrinsic, lane_mask, llvm_type, masked_load, vector_width,
                     vptr, vsuffix)
from .loops import const, for_range, i8, i64, new_function

DOT_MAX_N = 8       # at most this many columns (with N=10, one row per group loses to packing)
ACCUMULATORS = 16   # R*N vectors of partial sums: registers to spare, FMA latency hidden


def dot_scratch_bytes(dtype, n: int, k: int) -> int:
    vl = vector_width(dtype)
    return n * (-(-k // vl) * vl) * dtype.itemsize


def emit_dot_driver(module: ir.Module, name: str, s, epilogue: Epilogue = None):
    """Adds the internal driver for GemmShape `s` (s.n <= DOT_MAX_N); returns (fn, scratch bytes)."""
    t = llvm_type(s.dtype)
    vl = vector_width(s.dtype)
    vt = ir.VectorType(t, vl)
    tp = t.as_pointer()
    fn, b = new_function(module, name, [tp, tp, tp, i8.as_pointer(), i64],
                         ["a", "b", "c", "scratch", "row0"])
    fn.linkage = "internal"
    a_p, b_p, c_p, scratch, row0 = fn.args
    n, k = s.n, s.k
    kp = -(-k // vl) * vl
    full_chunks, tail = divmod(k, vl)
    rows = max(1, min(8, ACCUMULATORS // n))
    bt = b.bitcast(scratch, tp)
    zero = ir.Constant(t, 0)
    reduce_fn = intrinsic(module, f"llvm.vector.reduce.fadd.{vsuffix(vt)}", t, [t, vt])
    accs = [[b.alloca(vt) for _ in range(n)] for _ in range(rows)]   # promoted to registers

    for j in range(n):   # B^T, zero padded: the tail chunk needs no mask on this side
        with for_range(b, k, name="tk") as kk:
            v = b.load(b.gep(b_p, [b.add(b.mul(kk, const(s.ldb)), const(j))], inbounds=True))
            b.store(v, b.gep(bt, [b.add(kk, const(j * kp))], inbounds=True))
        for kk in range(k, kp):
            b.store(zero, b.gep(bt, [const(j * kp + kk)], inbounds=True))

    def chunk(r_count, r0, c0, mask):
        bv = [b.load(vptr(b, bt, b.add(c0, const(j * kp)), vt), align=64) for j in range(n)]
        for r in range(r_count):
            p = vptr(b, a_p, b.add(b.mul(b.add(r0, const(r)), const(s.lda)), c0), vt)
            av = masked_load(b, p, mask, vt) if mask is not None else \
                b.load(p, align=s.dtype.itemsize)
            for j in range(n):
                b.store(fma(b, av, bv[j], b.load(accs[r][j])), accs[r][j])

    def group(r_count, r0):
        for r in range(r_count):
            for j in range(n):
                b.store(ir.Constant(vt, None), accs[r][j])
        if full_chunks:
            with for_range(b, full_chunks, name="kc") as c:
                chunk(r_count, r0, b.mul(c, const(vl)), None)
        if tail:
            chunk(r_count, r0, const(full_chunks * vl), lane_mask(vl, tail))
        for r in range(r_count):
            row = b.add(r0, const(r))
            for j in range(n):
                v = b.call(reduce_fn, [ir.Constant(t, 0.0), b.load(accs[r][j])],
                           fastmath=("reassoc",))
                if epilogue is not None:
                    v = epilogue(b, v, b.add(row0, row), const(j))
                b.store(v, b.gep(c_p, [b.add(b.mul(row, const(s.ldc)), const(j))], inbounds=True))

    groups, edge = divmod(s.m, rows)
    if groups:
        with for_range(b, groups, name="g") as g:
            group(rows, b.mul(g, const(rows)))
    if edge:
        group(edge, const(groups * rows))
    b.ret_void()
    return fn, dot_scratch_bytes(s.dtype, n, k)
