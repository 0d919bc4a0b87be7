"""Lowering of the ops that gradients introduce: `pad`, `scatter_add`, `max_pool2d_grad`,
`max_pool2d_select`, `avg_pool2d_grad`. Each is a body emitter `f(b, value, out_ptr, in_ptrs)`
that lower.py wraps into a kernel `void k(T* out, T* in..., i8* scratch)`.

    pad          zero-fill, then one strided copy loop nest (the input seen through a view of
                 the output with strides scaled by interior + 1)
    scatter_add  zero-fill, then out[.., idx[j], ..] += u[.., j, ..]; indices wrap like NumPy's
                 negatives and are clamped into range, as take's kernel does
    pools        one pass over the output windows; the max ones find each window's first
                 maximum (or first NaN) with branch-free selects, as the reference does; when
                 windows cannot overlap, each tap is stored once instead of accumulated

The pool loops are scalar with bounds checks on every tap (windows are small), about 2-3 ns
per window here, except max_pool2d_grad over windows that abut along the width without
overlap or padding (2x2 stride 2 and the like): vectors of windows, pool_grad.py.
"""
from __future__ import annotations

from llvmlite import ir

from .loopnest import Access, View, contiguous, emit_map, row_major_strides
from .loops import const, for_range, i64
from .pool_grad import emit_vector_max_pool_grad, vector_max_pool_grad_fits
from .scalar import index, llvm_type, load, store, zero


def _fill_zero(b, v, out) -> None:
    emit_map(b, v.shape, [], [Access(out, contiguous(v.shape), v.dtype)],
             lambda b, xs: [zero(v.dtype)])


def _add(b, x, y, dt):
    return b.fadd(x, y) if dt.is_float else b.add(x, y)


def emit_pad(b, v, out, ins) -> None:
    x = v.inputs[0]
    _fill_zero(b, v, out)
    strides = row_major_strides(v.shape)
    view = View(sum(lo * s for lo, s in zip(v.attrs["lo"], strides)),
                tuple((i + 1) * s for i, s in zip(v.attrs["interior"], strides)))
    emit_map(b, x.shape, [Access(ins[0], contiguous(x.shape), x.dtype)],
             [Access(out, view, v.dtype)], lambda b, xs: xs)


def emit_scatter_add(b, v, out, ins) -> None:
    u, idx = v.inputs
    axis, n = v.attrs["axis"], v.attrs["size"]
    _fill_zero(b, v, out)
    before = 1
    for s in u.shape[:axis]:
        before *= s
    m = idx.type.size
    after = u.type.size // max(before * m, 1) if before * m else 0
    if before * m * after == 0 or n == 0:
        return
    u_ptr, idx_ptr = ins
    with for_range(b, before, name="a") as i:
        with for_range(b, m, name="j") as j:
            k = load(b, b.gep(idx_ptr, [j]), idx.dtype)
            k = index(b, k, idx.dtype, i64)
            k = b.select(b.icmp_signed("<", k, const(0)), b.add(k, const(n)), k)
            k = b.select(b.icmp_signed("<", k, const(0)), const(0), k)
            k = b.select(b.icmp_signed(">=", k, const(n)), const(n - 1), k)
            src = b.add(b.mul(i, const(m * after)), b.mul(j, const(after)))
            dst = b.add(b.mul(i, const(n * after)), b.mul(k, const(after)))
            with for_range(b, after, name="c") as c:
                p = b.gep(out, [b.add(dst, c)])
                x = load(b, b.gep(u_ptr, [b.add(src, c)]), u.dtype)
                store(b, _add(b, load(b, p, v.dtype), x, v.dtype), p, v.dtype)


class _Windows:
    """Loops over every output window of a pool, with per-tap positions and bounds checks."""

    def __init__(self, v, x_shape):
        a = v.attrs
        (self.kh, self.kw), (self.sh, self.sw), (self.ph, self.pw) = \
            a["kernel"], a["stride"], a["padding"]
        self.planes = x_shape[0] * x_shape[1]
        self.h, self.w = x_shape[2:]
        # the pooled shape: of v itself, or of its dy input for the *_grad ops
        self.ho, self.wo = (v.shape if v.op == "max_pool2d_select" else
                            v.inputs[-1].shape)[2:]

    def loop(self, b, body) -> None:
        """body(plane_index, out_index, taps) with taps [(ok: i1, pos: i64 in the plane)]."""
        with for_range(b, self.planes, name="plane") as pl:
            with for_range(b, self.ho, name="oh") as oh:
                with for_range(b, self.wo, name="ow") as ow:
                    taps = []
                    for i in range(self.kh):
                        ih = b.add(b.mul(oh, const(self.sh)), const(i - self.ph))
                        for j in range(self.kw):
                            iw = b.add(b.mul(ow, const(self.sw)), const(j - self.pw))
                            # unsigned compares also reject negative positions
                            ok = b.and_(b.icmp_unsigned("<", ih, const(self.h)),
                                        b.icmp_unsigned("<", iw, const(self.w)))
                            # a rejected tap points at element 0 of the plane, which exists
                            pos = b.select(ok, b.add(b.mul(ih, const(self.w)), iw), const(0))
                            taps.append((ok, pos))
                    o = b.add(b.mul(pl, const(self.ho * self.wo)),
                              b.add(b.mul(oh, const(self.wo)), ow))
                    body(pl, o, taps)

    def plane(self, b, ptr, pl):
        return b.gep(ptr, [b.mul(pl, const(self.h * self.w))])


def _layout(win: _Windows) -> tuple[bool, bool]:
    """(direct, tiles). direct: the windows never overlap and lie inside x (no padding, stride
    >= kernel), so each input pixel gets at most one contribution, written without a
    read-modify-write; tiles: they also cover x exactly, so nothing needs zeroing first."""
    direct = (win.ph, win.pw) == (0, 0) and win.sh >= win.kh and win.sw >= win.kw
    tiles = direct and (win.sh, win.sw) == (win.kh, win.kw) and \
        (win.ho * win.sh, win.wo * win.sw) == (win.h, win.w)
    return direct, tiles


def _argmax(b, plane, taps, dt):
    """Position of the window's first maximum (or first NaN) among its valid taps."""
    t = llvm_type(dt)
    best = ir.Constant(t, float("-inf"))
    at = const(-1)
    for ok, pos in taps:
        x = b.load(b.gep(plane, [pos]))
        better = b.or_(b.fcmp_ordered(">", x, best),
                       b.and_(b.fcmp_unordered("uno", x, x), b.fcmp_ordered("ord", best, best)))
        take = b.and_(ok, b.or_(b.icmp_signed("<", at, const(0)), better))
        best = b.select(take, x, best)
        at = b.select(take, pos, at)
    return at


def emit_max_pool2d_grad(b, v, out, ins) -> None:
    x, dy = v.inputs
    win = _Windows(v, x.shape)
    direct, tiles = _layout(win)
    if not tiles:
        _fill_zero(b, v, out)
    if vector_max_pool_grad_fits(win, x.dtype):
        emit_vector_max_pool_grad(b, win, x.dtype, out, ins[0], ins[1])
        return
    t = llvm_type(x.dtype)

    def body(pl, o, taps):
        at = _argmax(b, win.plane(b, ins[0], pl), taps, x.dtype)
        g = b.load(b.gep(ins[1], [o]))
        dst = win.plane(b, out, pl)
        if direct:
            for _, pos in taps:  # all taps are inside x here
                b.store(b.select(b.icmp_signed("==", pos, at), g, ir.Constant(t, 0.0)),
                        b.gep(dst, [pos]))
        else:
            p = b.gep(dst, [at])
            b.store(b.fadd(b.load(p), g), p)
    win.loop(b, body)


def emit_max_pool2d_select(b, v, out, ins) -> None:
    x = v.inputs[0]
    win = _Windows(v, x.shape)

    def body(pl, o, taps):
        at = _argmax(b, win.plane(b, ins[0], pl), taps, x.dtype)
        b.store(b.load(b.gep(win.plane(b, ins[1], pl), [at])), b.gep(out, [o]))
    win.loop(b, body)


def emit_avg_pool2d_grad(b, v, out, ins) -> None:
    win = _Windows(v, v.shape)
    direct, tiles = _layout(win)  # as in emit_max_pool2d_grad
    if not tiles:
        _fill_zero(b, v, out)
    t = llvm_type(v.dtype)

    def body(pl, o, taps):
        count = const(0)
        for ok, _ in taps:
            count = b.add(count, b.zext(ok, i64))
        share = b.fdiv(b.load(b.gep(ins[0], [o])), b.sitofp(count, t))
        dst = win.plane(b, out, pl)
        for ok, pos in taps:
            p = b.gep(dst, [pos])
            if direct:
                b.store(share, p)
            else:
                b.store(b.fadd(b.load(p), b.select(ok, share, ir.Constant(t, 0.0))), p)
    win.loop(b, body)


BODIES = {
    "pad": emit_pad,
    "scatter_add": emit_scatter_add,
    "max_pool2d_grad": emit_max_pool2d_grad,
    "max_pool2d_select": emit_max_pool2d_select,
    "avg_pool2d_grad": emit_avg_pool2d_grad,
}
