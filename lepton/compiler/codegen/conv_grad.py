"""The kernel of `conv2d_weight_grad` (conv2d's gradient wrt its weight): per image, the
forward convolution's im2col of x against the cotangent, accumulated over the batch by the
packed GEMM.

    k = emit_conv2d_weight_grad(module, "dw", TensorType(f32, (32, 32, 16, 16)),
                                TensorType(f32, (32, 64, 16, 16)), TensorType(f32, (64, 32, 3, 3)),
                                (1, 1), (1, 1), (1, 1), 1)
    # void dw(float* dw, float* x, float* dy, i8* scratch), scratch of k.scratch_bytes

For group g, with col_n = im2col(x[n, g]) ((C/g*KH*KW) x (Ho*Wo), conv.emit_im2col) and
dy_n = dy[n, g] (O/g x Ho*Wo):

    dw[g]^T (C/g*KH*KW x O/g) = sum over n of col_n @ dy_n^T

one GEMM per image with K = Ho*Wo (col read in place, dy_n packed transposed), each adding to
the same C (the packed GEMM's acc0), which is transposed into dw at the end. Written as a
conv2d with batch and channels swapped (as before), the same product ran as per-channel GEMMs
with K = N*KH'*KW' and N = KH*KW (9 columns for a 3x3 kernel), about 3x slower here, plus
transposes of x and dy. With threads the channels of a group are split into blocks: each
thread builds only its channels' rows of col and owns their rows of the sum.
"""
from __future__ import annotations

from llvmlite import ir

from ...ir.types import TensorType
from .conv import IM2COL_SLACK, emit_im2col
from .gemm import GemmShape, default_blocking, emit_gemm_driver, fit_blocking, gemm_scratch_bytes
from .kernel import SCRATCH_ARG, Kernel, kernel_args, llvm_type, new_kernel
from .loops import const, for_range
from .parallel import finish_items, worth_threads


def _round64(x: int) -> int:
    return (x + 63) // 64 * 64


def _channel_block(cg: int, groups: int, threads: int, work: int) -> tuple[int, int]:
    """(channels per item, threads used): one item per group, or with threads the largest
    divisor of C/g that gives at least `threads` items in all."""
    if worth_threads(threads, work, threads) == 1 or groups >= threads:
        return cg, worth_threads(threads, work, groups)
    want = -(-threads // groups)
    cb = max(d for d in range(1, cg + 1) if cg % d == 0 and (cg // d >= want or d == 1))
    items = groups * (cg // cb)
    return cb, worth_threads(threads, work, items)


def emit_conv2d_weight_grad(module: ir.Module, name: str, x: TensorType, dy: TensorType,
                            out: TensorType, stride, padding, dilation, groups: int,
                            threads: int = 1) -> Kernel:
    """Adds `void name(T* dw, T* x, T* dy, i8* scratch)` (module docstring)."""
    stride, padding, dilation = tuple(stride), tuple(padding), tuple(dilation)
    if not (x.dtype == dy.dtype == out.dtype) or not x.dtype.is_float:
        raise TypeError(f"conv2d_weight_grad kernel: float inputs of one dtype, got {x}, {dy}, "
                        f"{out}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = out.shape
    ho, wo = dy.shape[2:]
    if dy.shape[:2] != (n, o) or c != cg * groups or o % groups:
        raise ValueError(f"conv2d_weight_grad kernel: x {x}, dy {dy} and dw {out} do not match")
    og, taps, npix = o // groups, kh * kw, ho * wo
    t = llvm_type(x.dtype)
    isz = x.dtype.itemsize
    cb, use = _channel_block(cg, groups, threads, n * o * cg * taps * npix // 32)
    blocks = cg // cb
    m = cb * taps
    # C^T block (m x og) += col (m x npix) @ dy_n^T (npix x og): dy_n as stored is og x npix
    s = GemmShape(x.dtype, m, og, npix, npix, npix, og, trans_b=True)
    blk = fit_blocking(default_blocking(x.dtype), s)
    gemm = emit_gemm_driver(module, f"{name}.gemm", s, blk, accumulate=True)
    col_off = _round64(gemm_scratch_bytes(s, blk))
    acc_off = col_off + _round64((m * npix + IM2COL_SLACK) * isz)
    per_scratch = _round64(acc_off + m * og * isz)
    im2col = emit_im2col(module, f"{name}.im2col", x, cb, (kh, kw), stride, padding, dilation,
                         (ho, wo))
    fn, b = new_kernel(module, name, x.dtype, None)

    def item(bb, it, args):
        out_p, x_p, dy_p, scratch, ctx = kernel_args(args)
        g = bb.udiv(it, const(blocks))
        c0 = bb.mul(bb.urem(it, const(blocks)), const(cb))
        col = bb.bitcast(bb.gep(scratch, [const(col_off)]), t.as_pointer())
        acc = bb.bitcast(bb.gep(scratch, [const(acc_off)]), t.as_pointer())
        with for_range(bb, m * og, name="z") as z:
            bb.store(ir.Constant(t, 0), bb.gep(acc, [z], inbounds=True))
        with for_range(bb, n, name="img") as img:
            xc = bb.add(bb.mul(img, const(c)), bb.add(bb.mul(g, const(cg)), c0))
            bb.call(im2col, [col, bb.gep(x_p, [bb.mul(xc, const(h * wd))], inbounds=True)])
            dyo = bb.add(bb.mul(img, const(o)), bb.mul(g, const(og)))
            bb.call(gemm, [col, bb.gep(dy_p, [bb.mul(dyo, const(npix))], inbounds=True), acc,
                           scratch, const(0), ctx])
        # dw[g*og + j, c0*taps + r] = acc[r, j]
        base = bb.gep(out_p, [bb.add(bb.mul(g, const(og * cg * taps)), bb.mul(c0, const(taps)))],
                      inbounds=True)
        with for_range(bb, og, name="j") as j:
            dst = bb.gep(base, [bb.mul(j, const(cg * taps))], inbounds=True)
            with for_range(bb, m, name="r") as r:
                v = bb.load(bb.gep(acc, [bb.add(bb.mul(r, const(og)), j)], inbounds=True))
                bb.store(v, bb.gep(dst, [r], inbounds=True))

    return Kernel(fn, finish_items(module, name, fn, b, groups * blocks, use, per_scratch, item,
                                   SCRATCH_ARG))
