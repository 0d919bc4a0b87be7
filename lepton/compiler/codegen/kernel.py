"""`Kernel`, what every kernel emitter returns, and the small LLVM helpers the emitters share.

Every emitter (GEMM, conv, pools) adds one externally visible function to a module with the
calling convention `void name(T* out, T* in0, [T* in1,] i8* scratch)` and returns a `Kernel`:

    k = emit_matmul(module, "mm", a_type, b_type, out_type)
    k.fn             # the ir.Function
    k.scratch_bytes  # the caller passes a 64-byte aligned buffer of at least this many bytes

An *epilogue* is a callable `epilogue(builder, value, row, col, ctx) -> value` applied once to
each output value: in registers before its last store (dot products, the C^T copy of a
transposed A with few columns), or by gemm.py's shared drivers to each finished tile of C,
read back while it is in L1. `value` is a `<VL x T>` vector holding columns
col .. col+VL-1 of row `row` (or a scalar of type T in scalar code paths); `row` and `col` are
i64 values indexing the output seen as a 2-d matrix (see each emitter for the mapping).
Lanes past the matrix edge (col + l >= N) hold garbage and are never stored: an epilogue that
loads per-column data (a bias) must mask those lanes itself, N being static. `ctx` is the i8*
the kernel was called with for its epilogue (the addresses of the epilogue's inputs): it is
passed down every internal function to the epilogue, so each call, even one running at the
same time as another, reads its own inputs (no global state).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from llvmlite import ir

from ...ir.types import DType, float32, float64, int32, int64
from .loops import i1, i8, i32, i64, new_function, vconst

Epilogue = Optional[Callable[[ir.IRBuilder, ir.Value, ir.Value, ir.Value, ir.Value], ir.Value]]


@dataclass(frozen=True)
class Kernel:
    """An emitted kernel: the function and the scratch bytes its caller must provide. Lowering
    (lower.py) adds what a call passes: the values it writes (`outputs`) and reads
    (`operands`), in the order of its arguments `void name(out..., operand..., i8* scratch)`.
    A kernel with a `status` returns an i1 instead, true when its check failed, and the entry
    then returns that status; status -1: it returns an i32 status itself (0: none failed)."""
    fn: ir.Function
    scratch_bytes: int = 0
    outputs: tuple = ()
    operands: tuple = ()
    status: int = 0


def new_driver(module: ir.Module, name: str, dt: DType) -> tuple[ir.Function, ir.IRBuilder]:
    """An internal GEMM driver `void name(T* a, T* b, T* c, i8* scratch, i64 row0, i8* ctx)`
    (the contract of gemm.py's drivers; ctx: the epilogue's) and a builder at its entry."""
    tp = llvm_type(dt).as_pointer()
    fn, b = new_function(module, name, [tp, tp, tp, i8.as_pointer(), i64, i8.as_pointer()],
                         ["a", "b", "c", "scratch", "row0", "ctx"])
    fn.linkage = "internal"
    return fn, b


def new_kernel(module: ir.Module, name: str, dt: DType,
               epilogue: Epilogue) -> tuple[ir.Function, ir.IRBuilder]:
    """A GEMM or convolution kernel `void name(T* out, T* x, T* y, i8* scratch[, i8* ctx])`
    (ctx, the epilogue's, only with one) and a builder at its entry."""
    p, i8p = llvm_type(dt).as_pointer(), i8.as_pointer()
    extra = [i8p] if epilogue is not None else []
    return new_function(module, name, [p, p, p, i8p] + extra,
                        ["out", "x", "y", "scratch", "ctx"][:4 + len(extra)])


SCRATCH_ARG = 3     # the scratch's place among a new_kernel function's arguments


def kernel_args(args) -> tuple:
    """(out, x, y, scratch, ctx) from a new_kernel function's arguments (ctx null if none)."""
    ctx = args[4] if len(args) > 4 else ir.Constant(i8.as_pointer(), None)
    return (*args[:4], ctx)


_LLVM = {float32: ir.FloatType(), float64: ir.DoubleType(), int32: i32, int64: i64}


def llvm_type(dt: DType) -> ir.Type:
    """The LLVM scalar type of a dtype (bool is not a kernel element type here)."""
    try:
        return _LLVM[dt]
    except KeyError:
        raise TypeError(f"no kernel element type for dtype {dt}") from None


def vector_width(dt: DType) -> int:
    """Lanes of one 512-bit register for `dt` (16 x f32, 8 x f64)."""
    return 64 // dt.itemsize


def intrinsic(module: ir.Module, name: str, ret: ir.Type, args) -> ir.Function:
    """Declares (once) and returns an LLVM intrinsic by its mangled name."""
    g = module.globals.get(name)
    if g is None:
        g = ir.Function(module, ir.FunctionType(ret, list(args)), name)
    return g


def vsuffix(vt: ir.VectorType) -> str:
    """LLVM's mangling of a vector type, e.g. v16f32."""
    el = vt.element
    s = {"float": "f32", "double": "f64"}.get(str(el), f"i{getattr(el, 'width', 0)}")
    return f"v{vt.count}{s}"


def fma(b: ir.IRBuilder, x, y, z):
    """x*y + z through llvm.fma (one rounding; one instruction on the host)."""
    t = x.type
    name = f"llvm.fma.{vsuffix(t)}" if isinstance(t, ir.VectorType) else \
        f"llvm.fma.{'f32' if isinstance(t, ir.FloatType) else 'f64'}"
    return b.call(intrinsic(b.module, name, t, [t, t, t]), [x, y, z])


def splat(b: ir.IRBuilder, x: ir.Value, n: int) -> ir.Value:
    """An n-lane vector of copies of scalar x."""
    vt = ir.VectorType(x.type, n)
    v = b.insert_element(vconst(vt, None), x, ir.Constant(i32, 0))
    return b.shuffle_vector(v, vconst(vt, None), vconst(ir.VectorType(i32, n), None))


def lane_mask(n_lanes: int, n_valid: int) -> ir.Constant:
    """A constant <n_lanes x i1> with the first n_valid lanes set."""
    return vconst(ir.VectorType(i1, n_lanes), [1 if i < n_valid else 0 for i in range(n_lanes)])


def vptr(b: ir.IRBuilder, base: ir.Value, offset, vt: ir.VectorType) -> ir.Value:
    """A <vt>* to element `offset` (i64 value or int) of the scalar pointer `base`."""
    off = ir.Constant(i64, offset) if isinstance(offset, int) else offset
    return b.bitcast(b.gep(base, [off], inbounds=True), vt.as_pointer())


def masked_load(b: ir.IRBuilder, ptr: ir.Value, mask: ir.Value, vt: ir.VectorType) -> ir.Value:
    """Loads the lanes of `mask` from <vt>* ptr, zero elsewhere; never touches masked-off memory."""
    f = intrinsic(b.module, f"llvm.masked.load.{vsuffix(vt)}.p0", vt,
                  [vt.as_pointer(), mask.type, vt])
    return b.call(f, [ptr, mask, vconst(vt, None)])


def masked_store(b: ir.IRBuilder, value: ir.Value, ptr: ir.Value, mask: ir.Value) -> None:
    vt = value.type
    f = intrinsic(b.module, f"llvm.masked.store.{vsuffix(vt)}.p0", ir.VoidType(),
                  [vt, vt.as_pointer(), mask.type])
    b.call(f, [value, ptr, mask])


def minmax(b: ir.IRBuilder, x, y, smaller: bool):
    """Signed min or max of two i64 values (for loop bounds)."""
    return b.select(b.icmp_signed("<" if smaller else ">", x, y), x, y)
