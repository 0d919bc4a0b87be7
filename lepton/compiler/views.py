"""Affine views of dense row-major buffers: where element (i0, ..., in) of an iteration space
lives, `offset + sum(ik * strides[k])` elements in. Pure arithmetic, shared by fusion (can an
epilogue read an operand per column vector?) and codegen's loop nests (loopnest.py).

    broadcast_view((1, 6), (4, 6))       # View(offset=0, strides=(0, 1))
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class View:
    offset: int
    strides: tuple[int, ...]


def row_major_strides(shape) -> tuple[int, ...]:
    strides, n = [], 1
    for s in reversed(shape):
        strides.append(n)
        n *= s
    return tuple(reversed(strides))


def contiguous(shape) -> View:
    return View(0, row_major_strides(shape))


def broadcast_view(src_shape, out_shape, base: View | None = None) -> View:
    """A view reading a (row-major or `base`) buffer of src_shape broadcast to out_shape."""
    base = base or contiguous(src_shape)
    pad = len(out_shape) - len(src_shape)
    strides = [0] * pad + [0 if s == 1 and o != 1 else st
                           for s, o, st in zip(src_shape, out_shape[pad:], base.strides)]
    return View(base.offset, tuple(strides))
