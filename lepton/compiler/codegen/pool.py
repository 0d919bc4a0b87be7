"""2-d max and average pooling kernels (NCHW, PyTorch's conventions).

    k = emit_pool2d(module, "mp", "max", TensorType(f32, (32, 32, 28, 28)),
                    TensorType(f32, (32, 32, 14, 14)), (2, 2), (2, 2), (0, 0))
    # void mp(float* out, float* x, i8* scratch); k.scratch_bytes == 0

Max treats the padding as -inf (NaN propagates, as in np.max); avg divides by the number of
window positions inside the input (padding excluded from the count). Each plane is split
statically into an interior, where every window lies inside the input (a branch-free loop over
the output width in explicit vectors of 16 (f32) outputs, deinterleaving the input for stride 2;
other strides use a scalar loop), and a border of at most a few rows and columns computed
element by element with bounds checks.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import TensorType
from .kernel import (Kernel, intrinsic, lane_mask, llvm_type, masked_load, masked_store,
                     vector_width, vptr, vsuffix)
from .loops import const, for_range, i8, i32, i64, new_function

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
    vl = vector_width(x.dtype)
    vt = ir.VectorType(t, vl)
    init = ir.Constant(t, float("-inf") if is_max else 0.0)

    def combine(acc, v):
        if not is_max:
            return b.fadd(acc, v)
        name = f"llvm.maximum.{vsuffix(v.type) if v.type == vt else 'f%d' % (8 * x.dtype.itemsize)}"
        return b.call(intrinsic(module, name, v.type, [v.type, v.type]), [acc, v])

    def interior(plane, oh, ow):
        acc = init
        for i in range(kh):
            row = b.add(b.mul(oh, const(sh)), const(i - ph))
            base = b.add(b.mul(row, const(w)), b.sub(b.mul(ow, const(sw)), const(pw)))
            for j in range(kw):
                acc = combine(acc, b.load(b.gep(plane, [b.add(base, const(j))], inbounds=True)))
        return acc if is_max else b.fdiv(acc, ir.Constant(t, float(kh * kw)))

    def interior_vec(plane, oh, ow0, r):
        """Outputs ow0 .. ow0+r-1 (r <= VL) of an interior row as one vector. Tap (i, j) of
        lane l reads row element (ow0 + l)*sw - pw + j: sw contiguous vectors, deinterleaved
        by a shuffle when sw == 2; loads are masked to the elements a valid lane needs."""
        need = (r - 1) * sw + 1
        pick = ir.Constant(ir.VectorType(i32, vl), [l * sw for l in range(vl)])
        acc = ir.Constant(vt, [init.constant] * vl)
        for i in range(kh):
            row = b.add(b.mul(oh, const(sh)), const(i - ph))
            base = b.add(b.mul(row, const(w)), b.sub(b.mul(ow0, const(sw)), const(pw)))
            for j in range(kw):
                parts = []
                for q in range(sw):
                    p = vptr(b, plane, b.add(base, const(j + q * vl)), vt)
                    if need >= (q + 1) * vl:
                        parts.append(b.load(p, align=x.dtype.itemsize))
                    else:
                        parts.append(masked_load(b, p, lane_mask(vl, need - q * vl), vt))
                v = parts[0] if sw == 1 else b.shuffle_vector(parts[0], parts[1], pick)
                acc = combine(acc, v)
        return acc if is_max else b.fdiv(acc, ir.Constant(vt, [float(kh * kw)] * vl))

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

    def vector_row(plane, orow, oh, lo, hi):
        full, rest = divmod(hi - lo, vl)
        if full:
            with for_range(b, full, name="v") as v:
                ow0 = b.add(const(lo), b.mul(v, const(vl)))
                b.store(interior_vec(plane, oh, ow0, vl), vptr(b, orow, ow0, vt),
                        align=x.dtype.itemsize)
        if rest:
            ow0 = const(lo + full * vl)
            masked_store(b, interior_vec(plane, oh, ow0, rest), vptr(b, orow, ow0, vt),
                         lane_mask(vl, rest))

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
                    if sw <= 2:
                        vector_row(plane, orow, oh, ow_lo, ow_hi)
                    else:
                        row(plane, orow, oh, ow_lo, ow_hi, interior)
                    row(plane, orow, oh, ow_hi, wo, border)
                else:
                    row(plane, orow, oh, 0, wo, border)
    b.ret_void()
    return Kernel(fn, 0)
