"""Integer GEMM: plain loops that LLVM vectorises, wrapping arithmetic (NumPy's).

    fn = emit_int_gemm(module, "mm.gemm", GemmShape(int32, 7, 9, 13, 13, 9, 9))
    # void fn(T* a, T* b, T* c, i8* scratch, i64 row0, i8* ctx): gemm.py's drivers' contract

With B stored as is, row i of C accumulates A[i, k] * B[k, :] (unit-stride vectors along N);
with B stored transposed, C[i, j] is a dot product along K (unit stride in B^T's rows).
The epilogue sees scalars (row = row0 + i, col = j).
"""
from __future__ import annotations

from llvmlite import ir

from .kernel import Epilogue, llvm_type, new_driver
from .loops import const, for_range


def emit_int_gemm(module: ir.Module, name: str, s, epilogue: Epilogue = None) -> ir.Function:
    """Adds the internal driver for the integer GemmShape `s` (any trans flags)."""
    t = llvm_type(s.dtype)
    fn, b = new_driver(module, name, s.dtype)
    a_p, b_p, c_p, _, row0, ctx = fn.args
    a_rs, a_cs = s.a_strides
    b_rs, b_cs = s.b_strides

    def a_at(i, k):
        return b.load(b.gep(a_p, [b.add(b.mul(i, const(a_rs)), b.mul(k, const(a_cs)))]))

    def b_at(k, j):
        return b.load(b.gep(b_p, [b.add(b.mul(k, const(b_rs)), b.mul(j, const(b_cs)))]))

    acc = b.alloca(t)   # in the entry block: promoted to a register
    with for_range(b, s.m, name="i") as i:
        crow = b.mul(i, const(s.ldc))
        if s.trans_b:
            with for_range(b, s.n, name="j") as j:
                b.store(ir.Constant(t, 0), acc)
                with for_range(b, s.k, name="k") as k:
                    b.store(b.add(b.load(acc), b.mul(a_at(i, k), b_at(k, j))), acc)
                b.store(b.load(acc), b.gep(c_p, [b.add(crow, j)]))
        else:
            with for_range(b, s.n, name="j") as j:
                b.store(ir.Constant(t, 0), b.gep(c_p, [b.add(crow, j)]))
            with for_range(b, s.k, name="k") as k:
                aik = a_at(i, k)
                with for_range(b, s.n, name="j") as j:
                    p = b.gep(c_p, [b.add(crow, j)])
                    b.store(b.add(b.load(p), b.mul(aik, b_at(k, j))), p)
        if epilogue is not None:
            with for_range(b, s.n, name="j") as j:
                p = b.gep(c_p, [b.add(crow, j)])
                b.store(epilogue(b, b.load(p), b.add(row0, i), j, ctx), p)
    b.ret_void()
    return fn
