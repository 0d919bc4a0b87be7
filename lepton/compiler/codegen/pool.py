"""2-d max and average pooling kernels (NCHW, PyTorch's conventions).

    k = emit_pool2d(module, "mp", "max", TensorType(f32, (32, 32, 28, 28)),
                    TensorType(f32, (32, 32, 14, 14)), (2, 2), (2, 2), (0, 0))
    # void mp(float* out, float* x, i8* scratch); k.scratch_bytes == 0

Max treats the padding as -inf (NaN propagates, as in np.max); avg divides by the number of
window positions inside the input (padding excluded from the count). Each plane is split
statically into an interior, where every window lies inside the input (a branch-free loop over
the output width that LLVM vectorises, with strided loads for stride 2), and a border of at most
a few rows and columns computed element by element with bounds checks.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import TensorType
from .kernel import Kernel, intrinsic, llvm_type
from .loops import const, for_range, i8, i64, new_function

KINDS = ("max", "avg")


def _interior(n_out: int, size: int, k: int, s: int, p: int) -> tuple[int, int]:
    """[lo, hi) of output positions whose whole window k lies inside [0, size)."""
    lo = min(n_out, -(-p // s))                       # o*s - p >= 0
    hi = max(lo, min(n_out, (size + p - k) // s + 1))  # o*s - p + k - 1 <= size - 1
    return lo, hi


def emit_pool2d(module: ir.Module, name: str, kind: str, x: TensorType, out: TensorType,
                kernel, stride, padding) -> Kernel:
    """Adds `void name(T* out, T* x, i8* scratch)` (module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"pool kind must be one of {KINDS}, got {kind!r}")
    if not x.dtype.is_float or x.ndim != 4 or out.dtype != x.dtype:
        raise TypeError(f"{kind}_pool2d kernel: needs a float (N,C,H,W) input, got {x} -> {out}")
    (kh, kw), (sh, sw), (ph, pw) = tuple(kernel), tuple(stride), tuple(padding)
    n, c, h, w = x.shape
    ho, wo = out.shape[2:]
    if out.shape[:2] != (n, c) or ho != (h + 2 * ph - kh) // sh + 1 or \
            wo != (w + 2 * pw - kw) // sw + 1:
        raise ValueError(f"{kind}_pool2d kernel: output {out} does not match {x}")
    t = llvm_type(x.dtype)
    fn, b = new_function(module, name, [t.as_pointer()] * 2 + [i8.as_pointer()],
                         ["out", "x", "scratch"])
    out_p, x_p, _ = fn.args
    is_max = kind == "max"
    suffix = "f32" if x.dtype.itemsize == 4 else "f64"
    fmax = intrinsic(module, f"llvm.maximum.{suffix}", t, [t, t])
    init = ir.Constant(t, float("-inf") if is_max else 0.0)

    def combine(acc, v):
        return b.call(fmax, [acc, v]) if is_max else b.fadd(acc, v)

    def interior(plane, oh, ow):
        acc = init
        for i in range(kh):
            row = b.add(b.mul(oh, const(sh)), const(i - ph))
            base = b.add(b.mul(row, const(w)), b.sub(b.mul(ow, const(sw)), const(pw)))
            for j in range(kw):
                acc = combine(acc, b.load(b.gep(plane, [b.add(base, const(j))], inbounds=True)))
        return acc if is_max else b.fdiv(acc, ir.Constant(t, float(kh * kw)))

    def border(plane, oh, ow):
        acc, count = init, const(0)
        for i in range(kh):
            ih = b.add(b.mul(oh, const(sh)), const(i - ph))
            for j in range(kw):
                iw = b.add(b.mul(ow, const(sw)), const(j - pw))
                ok = b.and_(b.icmp_unsigned("<", ih, const(h)), b.icmp_unsigned("<", iw, const(w)))
                at = b.select(ok, b.add(b.mul(ih, const(w)), iw), const(0))  # element 0 exists
                v = b.load(b.gep(plane, [at], inbounds=True))
                acc = b.select(ok, combine(acc, v), acc)
                count = b.add(count, b.zext(ok, i64))
        return acc if is_max else b.fdiv(acc, b.sitofp(count, t))

    oh_lo, oh_hi = _interior(ho, h, kh, sh, ph)
    ow_lo, ow_hi = _interior(wo, w, kw, sw, pw)

    def row(plane, orow, oh, lo, hi, body):
        if lo >= hi:
            return
        with for_range(b, hi, start=lo, name="ow") as ow:
            b.store(body(plane, oh, ow), b.gep(orow, [ow], inbounds=True))

    with for_range(b, n * c, name="plane") as pi:
        plane = b.gep(x_p, [b.mul(pi, const(h * w))], inbounds=True)
        oplane = b.gep(out_p, [b.mul(pi, const(ho * wo))], inbounds=True)
        for r_lo, r_hi, inner in ((0, oh_lo, False), (oh_lo, oh_hi, True), (oh_hi, ho, False)):
            if r_lo >= r_hi:
                continue
            with for_range(b, r_hi, start=r_lo, name="oh") as oh:
                orow = b.gep(oplane, [b.mul(oh, const(wo))], inbounds=True)
                if inner:
                    row(plane, orow, oh, 0, ow_lo, border)
                    row(plane, orow, oh, ow_lo, ow_hi, interior)
                    row(plane, orow, oh, ow_hi, wo, border)
                else:
                    row(plane, orow, oh, 0, wo, border)
    b.ret_void()
    return Kernel(fn, 0)
