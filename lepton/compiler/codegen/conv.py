"""conv2d kernels (NCHW, weight (O, C/groups, KH, KW)) as im2col + the GEMM of gemm.py, and
re-exports the pooling kernels of pool.py.

    k = emit_conv2d(module, "cv", TensorType(f32, (32, 32, 14, 14)), TensorType(f32, (64, 32, 3, 3)),
                    TensorType(f32, (32, 64, 14, 14)), (1, 1), (1, 1), (1, 1), 1)
    # void cv(float* out, float* x, float* w, i8* scratch), scratch of k.scratch_bytes

For each image n and group g, out[n, g] (Og x Ho*Wo, already NCHW) = w[g] (Og x Cg*KH*KW) @
col, where col row (c, kh, kw) holds the input pixels that tap meets for every output position
(zeros where it falls in the padding). A 1x1 stride-1 unpadded convolution uses x as col
directly. The epilogue sees the output as a (N*O, Ho*Wo) matrix: row n*O + o, column oh*Wo + ow
(so a per-channel bias reads channel row % O).
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import TensorType
from .gemm import GemmShape, plan_gemm
from .kernel import (SCRATCH_ARG, Epilogue, Kernel, kernel_args, llvm_type, masked_load,
                     minmax, new_kernel, splat, vector_width)
from .loops import const, for_range, i64, new_function, vconst
from .parallel import finish_items, worth_threads
from .pool import emit_pool2d

__all__ = ["emit_conv2d", "emit_pool2d"]

# Elements after col that im2col may overwrite (its last vector store; see emit_im2col).
IM2COL_SLACK = 16


def _check(x: TensorType, w: TensorType, out: TensorType, stride, padding, dilation, groups):
    if x.ndim != 4 or w.ndim != 4 or out.ndim != 4 or not (x.dtype == w.dtype == out.dtype):
        raise ValueError(f"conv2d kernel: bad types x {x}, w {w}, out {out}")
    if not x.dtype.is_float:
        raise TypeError(f"conv2d kernel: float inputs only, got {x.dtype}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if groups < 1 or c % groups or o % groups or cg != c // groups:
        raise ValueError(f"conv2d kernel: x {x} and w {w} do not match groups={groups}")
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if out.shape != (n, o, ho, wo):
        raise ValueError(f"conv2d kernel: output {out} should be {(n, o, ho, wo)}")


def _span(b, lo_num, hi_num, step, limit):
    """The output positions p in [0, limit) with 0 <= p*step + off < size, as [lo, hi), given
    lo_num = -off and hi_num = size - off (i64 values): lo = ceil(lo_num/step), hi = ceil(hi_num/step)."""
    def ceil_div(v):
        v = minmax(b, v, const(0), smaller=False)
        return b.udiv(b.add(v, const(step - 1)), const(step))
    lo = minmax(b, ceil_div(lo_num), const(limit), smaller=True)
    hi = minmax(b, ceil_div(hi_num), const(limit), smaller=True)
    return lo, minmax(b, hi, lo, smaller=False)


def emit_im2col(module: ir.Module, name: str, x: TensorType, cg: int, kernel, stride, padding,
                dilation, out_hw, ld: int = 0) -> ir.Function:
    """Adds the internal `void name(T* col, T* x)` filling the (cg*KH*KW) x (Ho*Wo) row-major
    matrix col (rows `ld` >= Ho*Wo elements apart; 0: Ho*Wo) from the cg channels at x (each
    H x W). Stride-1 rows are masked vector copies
    (one load and one store per 16 output pixels, zeros for the padding come from the mask).
    A row's last vector is stored whole, running up to VL - 1 elements past it into what is
    written next (masked stores are slow on some CPUs): col needs IM2COL_SLACK elements more."""
    t = llvm_type(x.dtype)
    vl = vector_width(x.dtype)
    vt = ir.VectorType(t, vl)
    fn, b = new_function(module, name, [t.as_pointer()] * 2, ["col", "x"])
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    col, xp = fn.args
    h, w = x.shape[2:]
    kh, kw = kernel
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = out_hw
    lanes = ir.Constant(ir.VectorType(i64, vl), list(range(vl)))
    zero = ir.Constant(t, 0)
    with for_range(b, cg * kh * kw, name="row") as row:
        c = b.udiv(row, const(kh * kw))
        tap = b.urem(row, const(kh * kw))
        ki, kj = b.udiv(tap, const(kw)), b.urem(tap, const(kw))
        # input column of output column ow is ow*sw + off_w; off_w = kj*dw - pw
        off_w = b.sub(b.mul(kj, const(dw)), const(pw))
        lo, hi = _span(b, b.neg(off_w), b.sub(const(w), off_w), sw, wo)
        dst_row = b.gep(col, [b.mul(row, const(ld or ho * wo))], inbounds=True)
        src_c = b.gep(xp, [b.mul(c, const(h * w))], inbounds=True)
        if sw == 1:
            # the lanes [lo, hi) of each vector of an output row, the same for every row oh
            # (computed here, not per oh: 64-bit lane compares and their packing into a mask
            # cost more than the copy)
            row_masks = []
            for v0 in range(0, wo, vl):
                idx = b.add(splat(b, const(v0), vl), lanes)
                row_masks.append(b.and_(b.icmp_signed(">=", idx, splat(b, lo, vl)),
                                        b.icmp_signed("<", idx, splat(b, hi, vl))))
        with for_range(b, ho, name="oh") as oh:
            ih = b.add(b.mul(oh, const(sh)), b.sub(b.mul(ki, const(dh)), const(ph)))
            dst = b.gep(dst_row, [b.mul(oh, const(wo))], inbounds=True)
            inside = b.icmp_unsigned("<", ih, const(h))   # also rejects negative ih
            # outside rows read nothing: an empty [lo, hi) makes every lane a zero
            rlo = b.select(inside, lo, const(0))
            rhi = b.select(inside, hi, const(0))
            if sw == 1:
                # an outside row loads row 0's lanes and stores zeros: a mask chosen by `inside`
                # (select of two masks) makes LLVM's O2 codegen abort on AVX2 hosts splitting
                # 512-bit vectors ("unknown LocationSize", the LLVM of llvmlite 0.50)
                ih0 = b.select(inside, ih, const(0))
                src0 = b.gep(src_c, [b.add(b.mul(ih0, const(w)), off_w)])   # may be before x
                for v0, row_ok in zip(range(0, wo, vl), row_masks):
                    sp = b.bitcast(b.gep(src0, [const(v0)]), vt.as_pointer())
                    val = b.select(inside, masked_load(b, sp, row_ok, vt), vconst(vt, None))
                    dp = b.bitcast(b.gep(dst, [const(v0)], inbounds=True), vt.as_pointer())
                    b.store(val, dp, align=x.dtype.itemsize)
            else:
                with for_range(b, wo, name="ow") as ow:
                    ok = b.and_(b.icmp_signed(">=", ow, rlo), b.icmp_signed("<", ow, rhi))
                    at = b.add(b.mul(ih, const(w)), b.add(b.mul(ow, const(sw)), off_w))
                    # masked-off positions read element 0 of the channel, which always exists
                    val = b.load(b.gep(src_c, [b.select(ok, at, const(0))], inbounds=True))
                    b.store(b.select(ok, val, zero), b.gep(dst, [ow], inbounds=True))
    b.ret_void()
    return fn


def emit_conv2d(module: ir.Module, name: str, x: TensorType, w: TensorType, out: TensorType,
                stride, padding, dilation, groups: int, epilogue: Epilogue = None,
                threads: int = 1) -> Kernel:
    """Adds `void name(T* out, T* x, T* w, i8* scratch[, i8* ctx])` (ctx, passed to the
    epilogue, only with one) computing conv2d (module docstring)."""
    stride, padding, dilation = tuple(stride), tuple(padding), tuple(dilation)
    _check(x, w, out, stride, padding, dilation, groups)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ho, wo = out.shape[2:]
    og, kdim, npix = o // groups, cg * kh * kw, ho * wo
    t = llvm_type(x.dtype)
    fn, b = new_kernel(module, name, x.dtype, epilogue)
    direct = (kh, kw) == (1, 1) and stride == (1, 1) and padding == (0, 0)
    s = GemmShape(x.dtype, og, npix, kdim, kdim, npix, npix)
    gemm, gemm_bytes = plan_gemm(module, f"{name}.gemm", s, epilogue)
    col_off = (gemm_bytes + 63) // 64 * 64
    col_bytes = 0 if direct else (kdim * npix + IM2COL_SLACK) * x.dtype.itemsize
    im2col = None if direct else emit_im2col(module, f"{name}.im2col", x, cg, (kh, kw), stride,
                                             padding, dilation, (ho, wo))
    per_scratch = _round64(col_off + col_bytes if col_bytes else gemm_bytes)
    use = worth_threads(threads, n * groups * og * npix * kdim // 32, n * groups)

    def image(bb, ng, args):
        out_p, x_p, w_p, scratch, ctx = kernel_args(args)
        # image n, group g: its channels are contiguous in x, its filters in w, outputs in out
        col = bb.bitcast(bb.gep(scratch, [const(col_off)]), t.as_pointer())
        xg = bb.gep(x_p, [bb.mul(ng, const(cg * h * wd))], inbounds=True)
        g = bb.urem(ng, const(groups))
        wg = bb.gep(w_p, [bb.mul(g, const(og * kdim))], inbounds=True)
        og_row = bb.mul(ng, const(og))
        outg = bb.gep(out_p, [bb.mul(og_row, const(npix))], inbounds=True)
        if direct:
            bb.call(gemm, [wg, xg, outg, scratch, og_row, ctx])
        else:
            bb.call(im2col, [col, xg])
            bb.call(gemm, [wg, col, outg, scratch, og_row, ctx])

    return Kernel(fn, finish_items(module, name, fn, b, n * groups, use, per_scratch, image,
                                   SCRATCH_ARG))


def _round64(x: int) -> int:
    return (x + 63) // 64 * 64
