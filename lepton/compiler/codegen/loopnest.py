"""Affine views (compiler/views.py) and the loop-nest emitter every map-like kernel is built from.

A `View` says where element (i0, ..., in) of the iteration space lives in a dense buffer:
`offset + sum(ik * strides[k])` elements. Broadcasting is a zero stride, a transpose permutes
strides, a slice scales them and moves the offset, so elementwise ops, casts and data movement
all become one loop nest `out[view_o(i)] = body(in_k[view_k(i)])`.

    emit_map(b, (64, 256), [Access(x_ptr, contiguous((64, 256)), f32)],
             [Access(y_ptr, contiguous((64, 256)), f32)], lambda b, xs: [b.fneg(xs[0])])
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llvmlite import ir

from ...ir.types import DType
from ..views import View, broadcast_view, contiguous, row_major_strides  # noqa: F401 (re-exported)
from .loops import const, for_range
from .scalar import load, store


@dataclass(frozen=True)
class Access:
    """A typed pointer (element type of `dtype`'s memory form) read or written through a view."""
    ptr: ir.Value
    view: View
    dtype: DType


def collapse(shape, views):
    """Drops size-1 dims and merges neighbours that every view walks contiguously, so that
    W3's 16M-element map is one flat loop. Returns (shape, views)."""
    keep = [k for k, s in enumerate(shape) if s != 1]
    shape = [shape[k] for k in keep]
    strides = [[v.strides[k] for k in keep] for v in views]
    k = len(shape) - 1
    while k > 0:
        if all(st[k - 1] == st[k] * shape[k] for st in strides):
            shape[k - 1] *= shape[k]
            del shape[k]
            for st in strides:
                st[k - 1] = st[k]
                del st[k]
        k -= 1
    return tuple(shape), [View(v.offset, tuple(st)) for v, st in zip(views, strides)]


def emit_nest(b: ir.IRBuilder, shape, views: list[View], body, name="i", first=None,
              unroll: bool = True, interleave: int = 0) -> None:
    """Loops over `shape` (collapsed where every view allows), calling body(offsets) with each
    view's element offset (an i64 value) at the current iteration. `first=(lo, hi)` runs only
    those iterations of the outermost collapsed loop (a thread's share). unroll and interleave
    are for_range's, for the innermost loop."""
    shape, views = collapse(tuple(shape), views)

    def rec(depth, offsets):
        if depth == len(shape):
            body(offsets)
            return
        lo, hi = first if first is not None and depth == 0 else (0, shape[depth])
        innermost = depth == len(shape) - 1
        with for_range(b, hi, start=lo, name=f"{name}{depth}", unroll=unroll,
                       interleave=interleave if innermost else 0) as i:
            rec(depth + 1, [off if v.strides[depth] == 0 else
                            b.add(off, b.mul(i, const(v.strides[depth])))
                            for off, v in zip(offsets, views)])

    rec(0, [const(v.offset) for v in views])


def emit_map(b: ir.IRBuilder, shape, inputs: list[Access], outputs: list[Access],
             body: Callable[[ir.IRBuilder, list], list], unroll: bool = True) -> None:
    """Emits `for i in shape: outputs[k][i] = body(b, [inputs[j][i]])[k]` at b's position;
    unroll=False keeps LLVM from unrolling its loops (they are still vectorised)."""
    if any(s == 0 for s in shape):
        return
    accesses = inputs + outputs

    def at(offsets):
        ptrs = [b.gep(a.ptr, [off]) for a, off in zip(accesses, offsets)]
        vals = [load(b, p, a.dtype) for p, a in zip(ptrs[:len(inputs)], inputs)]
        for p, a, v in zip(ptrs[len(inputs):], outputs, body(b, vals)):
            store(b, v, p, a.dtype)

    emit_nest(b, shape, [a.view for a in accesses], at, unroll=unroll)
