"""Output arrays whose memory comes back for the next call once nobody uses them.

A large fresh array costs page faults on its first write (a 64 MiB output: ~6 ms, as much as
the kernel that fills it). `OutputPool.empty(shape, dtype)` returns a new NumPy array; when the
array and every view of it are gone, its memory returns to the pool (a caching allocator, as
PyTorch's), and the next call of the same executable writes into pages that are already
mapped. The pool never holds an array a caller could still see: the memory's owner is a small
object that only the returned array and its views reference, and it gives the memory back
from `__del__`. Small outputs are plain `np.empty` (their faults are cheap).

    pool = OutputPool()
    y = pool.empty((4096, 4096), np.float32)
    del y                       # the memory is back in the pool, no array of it survives
    pool.release()              # frees what the pool keeps
"""
from __future__ import annotations

import math

import numpy as np

MIN_BYTES = 1 << 20     # below this a fresh array is as cheap as a recycled one
KEEP = 2                # blocks kept per size: one in use and one being refilled
ALIGN = 64              # a pooled block starts on a cache line (malloc gives 16 past a page):
                        # a kernel streaming rows to it (codegen/stream.py) writes whole lines


def aligned_empty(nbytes: int) -> np.ndarray:
    """A fresh block of nbytes starting at a multiple of ALIGN (pooled outputs, workspaces)."""
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes]


class _Owner:
    """Owns one block for the arrays made from it; gives it back when they are all gone."""
    __slots__ = ("block", "pool", "__array_interface__")

    def __init__(self, block: np.ndarray, pool: "OutputPool", shape, dtype):
        self.block, self.pool = block, pool
        # ml_dtypes' types (bfloat16, float8...) have no type string of their own (float8_e5m2's
        # '<f1' is not even readable): bytes here, viewed as the type by OutputPool.empty
        typestr = f"|V{dtype.itemsize}" if dtype.isbuiltin == 2 else dtype.str
        self.__array_interface__ = {"shape": tuple(shape), "typestr": typestr,
                                    "data": (block.ctypes.data, False), "version": 3}

    def __del__(self):
        try:
            self.pool.give(self.block)
        except Exception:  # interpreter shutdown
            pass


class OutputPool:
    def __init__(self):
        self._free: dict[int, list[np.ndarray]] = {}

    def empty(self, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize  # (not np.prod: 10 µs on a hot path)
        if nbytes < MIN_BYTES:
            return np.empty(shape, dtype)
        free = self._free.get(nbytes)
        try:
            block = free.pop() if free else aligned_empty(nbytes)
        except IndexError:  # another thread took the last one
            block = aligned_empty(nbytes)
        out = np.asarray(_Owner(block, self, shape, dtype))
        return out if out.dtype == dtype else out.view(dtype)

    def give(self, block: np.ndarray) -> None:
        free = self._free.setdefault(block.nbytes, [])
        if len(free) < KEEP:
            free.append(block)

    def release(self) -> None:
        self._free.clear()
