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
the same C (the packed GEMM's acc0), which is transposed into dw at the end. Images of fewer
than K_TARGET pixels are taken nb at a time (their cols side by side, their dy copied side by
side), so that K = nb*Ho*Wo >= K_TARGET: at 4x4 pixels one image a GEMM re-read and re-wrote
all of C for 16 multiply-adds. Written as a
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


# products per element of C in one GEMM: images with fewer pixels are batched to reach it
K_TARGET = 256


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
    # small images: nb of them side by side in col and in a copy of dy, so each GEMM sums at
    # least K_TARGET products per element of C (one image of 4x4 pixels would re-read and
    # re-write the whole C for 16 multiply-adds)
    nb = 1 if npix >= K_TARGET else min(n, -(-K_TARGET // npix))
    nblk, tail = -(-n // nb), n - (-(-n // nb) - 1) * nb
    # with several images a row, the last one's im2col spill (IM2COL_SLACK) needs room
    ld = npix if nb == 1 else nb * npix + IM2COL_SLACK
    ldb = npix if nb == 1 else ld

    def driver(images, tag):
        # C^T block (m x og) += col (m x K) @ dy^T (K x og): dy as stored is og x K
        s = GemmShape(x.dtype, m, og, images * npix, ld, ldb, og, trans_b=True)
        blk = fit_blocking(default_blocking(x.dtype), s)
        return (emit_gemm_driver(module, f"{name}.gemm{tag}", s, blk, accumulate=True),
                gemm_scratch_bytes(s, blk))
    gemm, gemm_bytes = driver(nb, "")
    gemm_tail, tail_bytes = driver(tail, ".tail") if tail != nb else (gemm, gemm_bytes)
    col_off = _round64(max(gemm_bytes, tail_bytes))
    dyb_off = col_off + _round64((m * ld + IM2COL_SLACK) * isz)
    acc_off = dyb_off + (_round64(og * ld * isz) if nb > 1 else 0)
    per_scratch = _round64(acc_off + m * og * isz)
    im2col = emit_im2col(module, f"{name}.im2col", x, cb, (kh, kw), stride, padding, dilation,
                         (ho, wo), ld)
    fn, b = new_kernel(module, name, x.dtype, None)

    def item(bb, it, args):
        out_p, x_p, dy_p, scratch, ctx = kernel_args(args)
        g = bb.udiv(it, const(blocks))
        c0 = bb.mul(bb.urem(it, const(blocks)), const(cb))
        col = bb.bitcast(bb.gep(scratch, [const(col_off)]), t.as_pointer())
        dyb = bb.bitcast(bb.gep(scratch, [const(dyb_off)]), t.as_pointer())
        acc = bb.bitcast(bb.gep(scratch, [const(acc_off)]), t.as_pointer())
        with for_range(bb, m * og, name="z") as z:
            bb.store(ir.Constant(t, 0), bb.gep(acc, [z], inbounds=True))
        with for_range(bb, nblk, name="blk") as blk:
            n0 = bb.mul(blk, const(nb))
            count = bb.select(bb.icmp_signed("==", blk, const(nblk - 1)), const(tail), const(nb))
            with for_range(bb, count, name="img") as i:
                img = bb.add(n0, i)
                xc = bb.add(bb.mul(img, const(c)), bb.add(bb.mul(g, const(cg)), c0))
                bb.call(im2col, [bb.gep(col, [bb.mul(i, const(npix))], inbounds=True),
                                 bb.gep(x_p, [bb.mul(xc, const(h * wd))], inbounds=True)])
                if nb > 1:   # dy[img, g] (og x npix) into columns i*npix.. of dyb's rows
                    dyo = bb.add(bb.mul(img, const(o)), bb.mul(g, const(og)))
                    src = bb.gep(dy_p, [bb.mul(dyo, const(npix))], inbounds=True)
                    dst = bb.gep(dyb, [bb.mul(i, const(npix))], inbounds=True)
                    with for_range(bb, og, name="j") as j:
                        s_row = bb.gep(src, [bb.mul(j, const(npix))], inbounds=True)
                        d_row = bb.gep(dst, [bb.mul(j, const(ld))], inbounds=True)
                        with for_range(bb, npix, name="p") as q:
                            bb.store(bb.load(bb.gep(s_row, [q], inbounds=True)),
                                     bb.gep(d_row, [q], inbounds=True))
            if nb > 1:
                bmat = dyb
            else:
                dyo = bb.add(bb.mul(n0, const(o)), bb.mul(g, const(og)))
                bmat = bb.gep(dy_p, [bb.mul(dyo, const(npix))], inbounds=True)
            gemm_args = [col, bmat, acc, scratch, const(0), ctx]
            if tail == nb:
                bb.call(gemm, gemm_args)
            else:
                with bb.if_else(bb.icmp_signed("==", blk, const(nblk - 1))) as (last, other):
                    with last:
                        bb.call(gemm_tail, gemm_args)
                    with other:
                        bb.call(gemm, gemm_args)
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
