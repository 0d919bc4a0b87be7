"""GEMM with very few columns or rows (A @ x with x of shape (K, 1) .. (K, 8); x @ W^T with W
stored (N, K) and x of 1 .. 8 rows, as nn.Linear's): dot products along K.

With N this small a register tile along N wastes most lanes, so the kernel vectorises along K
instead. It pairs P, the many rows streamed once, with Q, the few (<= DOT_MAX_N) rows kept in
L1; both run along K. Normally P is A and Q the columns of B; with `swap` (B stored
transposed, few rows of A) P is B^T's rows as stored and Q the rows of A. A Q that does not
run along K in memory (B's columns, or a transposed A's rows) is first transposed into
scratch, zero-padded to whole vectors; then each group of R rows of P streams through, every
(p, q) pair keeping one vector of partial sums that is reduced to a scalar at the end.

    drv, nbytes = emit_dot_driver(module, "mv", GemmShape(f32, 1024, 1, 1024, 1024, 1, 1))
    # void drv(T* a, T* b, T* c, i8* scratch, i64 row0, i8* ctx): gemm.py's drivers' contract

The epilogue receives scalars here (row = row0 + m, col = n).
"""
from __future__ import annotations

from dataclasses import replace

from llvmlite import ir

from .kernel import (Epilogue, fma, intrinsic, lane_mask, llvm_type, masked_load, new_driver,
                     vector_width, vptr, vsuffix)
from .loops import const, for_range, i64

DOT_MAX_N = 8       # at most this many columns (with N=10, one row per group loses to packing)
ACCUMULATORS = 16   # R*N vectors of partial sums: registers to spare, FMA latency hidden
# With swap, rows of A beyond DOT_MAX_N are taken in groups, each streaming B^T again; that
# beats packing B^T up to 16 rows (784x512 f32 B: 9 rows 44 vs 65 us, 16 rows 71 vs 78,
# 24 rows 106 vs 101)
DOT_SWAP_MAX_M = 16


def dot_scratch_bytes(dtype, n: int, k: int) -> int:
    vl = vector_width(dtype)
    return n * (-(-k // vl) * vl) * dtype.itemsize


def emit_dot_driver(module: ir.Module, name: str, s, epilogue: Epilogue = None,
                    swap: bool = False):
    """Adds the internal driver for GemmShape `s`; returns (fn, scratch bytes). Without swap
    A must be untransposed and s.n <= DOT_MAX_N; with swap B must be transposed and
    s.m <= DOT_SWAP_MAX_M (more than DOT_MAX_N rows go in balanced groups, one pass each)."""
    if swap and s.m > DOT_MAX_N:
        return _emit_row_groups(module, name, s, epilogue)
    t = llvm_type(s.dtype)
    vl = vector_width(s.dtype)
    vt = ir.VectorType(t, vl)
    tp = t.as_pointer()
    if swap and not s.trans_b or not swap and s.trans_a:
        raise ValueError(f"dot driver: the streamed operand must run along K ({s})")
    fn, b = new_driver(module, name, s.dtype)
    a_p, b_p, c_p, scratch, row0, ctx = fn.args
    k = s.k
    if swap:    # P: rows of B^T as stored; Q: rows of A (along K unless A is transposed)
        p_p, n_p, ldp, q_p, n_q, ldq, q_direct = b_p, s.n, s.ldb, a_p, s.m, s.lda, not s.trans_a
    else:       # P: rows of A; Q: columns of B (along K only if B is transposed)
        p_p, n_p, ldp, q_p, n_q, ldq, q_direct = a_p, s.m, s.lda, b_p, s.n, s.ldb, s.trans_b
    if n_q > DOT_MAX_N:
        raise ValueError(f"dot driver: {n_q} > {DOT_MAX_N} rows kept in registers ({s})")
    kp = -(-k // vl) * vl
    full_chunks, tail = divmod(k, vl)
    rows = max(1, min(8, ACCUMULATORS // n_q))
    zero = ir.Constant(t, 0)
    reduce_fn = intrinsic(module, f"llvm.vector.reduce.fadd.{vsuffix(vt)}", t, [t, vt])
    accs = [[b.alloca(vt) for _ in range(n_q)] for _ in range(rows)]   # promoted to registers

    if not q_direct:
        # Q^T is stored row-major (Q[j, k] at q[k*ldq + j]): transpose it into scratch, zero
        # padded so the tail chunk needs no mask on this side
        qt = b.bitcast(scratch, tp)
        with for_range(b, kp, name="tk") as kk:
            # one pass over Q^T's rows (its n_q elements each), zeros past K
            inside = b.icmp_signed("<", kk, const(k))
            src = b.gep(q_p, [b.mul(b.select(inside, kk, const(0)), const(ldq))], inbounds=True)
            for j in range(n_q):
                v = b.select(inside, b.load(b.gep(src, [const(j)], inbounds=True)), zero)
                b.store(v, b.gep(qt, [b.add(kk, const(j * kp))], inbounds=True))
        q_p, ldq = qt, kp

    def load(p, mask, align):
        return masked_load(b, p, mask, vt) if mask is not None else b.load(p, align=align)

    def chunk(r_count, r0, c0, mask):
        q_mask = mask if q_direct else None
        qv = [load(vptr(b, q_p, b.add(c0, const(j * ldq)), vt), q_mask,
                   s.dtype.itemsize if q_direct else 64) for j in range(n_q)]
        for r in range(r_count):
            pv = load(vptr(b, p_p, b.add(b.mul(b.add(r0, const(r)), const(ldp)), c0), vt), mask,
                      s.dtype.itemsize)
            for j in range(n_q):
                b.store(fma(b, pv, qv[j], b.load(accs[r][j])), accs[r][j])

    def group(r_count, r0):
        for r in range(r_count):
            for j in range(n_q):
                b.store(ir.Constant(vt, None), accs[r][j])
        if full_chunks:
            with for_range(b, full_chunks, name="kc") as c:
                chunk(r_count, r0, b.mul(c, const(vl)), None)
        if tail:
            chunk(r_count, r0, const(full_chunks * vl), lane_mask(vl, tail))
        for r in range(r_count):
            p = b.add(r0, const(r))
            for j in range(n_q):
                v = b.call(reduce_fn, [ir.Constant(t, 0.0), b.load(accs[r][j])],
                           fastmath=("reassoc",))
                row, col = (const(j), p) if swap else (p, const(j))
                if epilogue is not None:
                    v = epilogue(b, v, b.add(row0, row), col, ctx)
                b.store(v, b.gep(c_p, [b.add(b.mul(row, const(s.ldc)), col)], inbounds=True))

    groups, edge = divmod(n_p, rows)
    if groups:
        with for_range(b, groups, name="g") as g:
            group(rows, b.mul(g, const(rows)))
    if edge:
        group(edge, const(groups * rows))
    b.ret_void()
    return fn, 0 if q_direct else dot_scratch_bytes(s.dtype, n_q, k)


def _emit_row_groups(module: ir.Module, name: str, s, epilogue: Epilogue):
    """The swapped dot driver for DOT_MAX_N < s.m <= DOT_SWAP_MAX_M: A's rows in balanced
    groups of at most DOT_MAX_N, each group a swapped dot pass over all of B^T."""
    if s.m > DOT_SWAP_MAX_M:
        raise ValueError(f"dot driver: {s.m} rows > {DOT_SWAP_MAX_M}")
    count = -(-s.m // DOT_MAX_N)
    sizes = [s.m // count + (g < s.m % count) for g in range(count)]
    passes, scratch = {}, 0
    for m in sorted(set(sizes)):
        passes[m], nbytes = emit_dot_driver(module, f"{name}.g{m}", replace(s, m=m), epilogue,
                                            swap=True)
        scratch = max(scratch, nbytes)
    fn, b = new_driver(module, name, s.dtype)
    a_p, b_p, c_p, scratch_p, row0, ctx = fn.args
    a_rs = s.a_strides[0]
    r0 = 0
    for m in sizes:
        b.call(passes[m], [b.gep(a_p, [const(r0 * a_rs)], inbounds=True), b_p,
                           b.gep(c_p, [const(r0 * s.ldc)], inbounds=True), scratch_p,
                           b.add(row0, const(r0)), ctx])
        r0 += m
    b.ret_void()
    return fn, scratch
