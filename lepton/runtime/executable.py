"""`Executable`: native code for one graph signature, callable on NumPy arrays.

    exe = Executable(lib, entry, input_types, output_types, output_sources, constants, ws_bytes,
                     errors={1: "index out of range [-5, 5) in op 'take' at model.py:3"})
    y, = exe(x, w)

Every argument is checked against the compiled signature before native code runs (a mismatch
raises TypeError for a dtype or arity, ValueError for a shape, naming the argument), so a
wrong call can never crash the process. One call is one foreign call to the entry with an
array of buffer pointers `[inputs..., outputs..., constants..., workspace]`; the entry returns
0 or the status of a check that failed in the compiled code, and the call raises IndexError
with `errors[status]` (its outputs are never returned).
"""
from __future__ import annotations

import ctypes
import sys
import threading
from typing import Sequence

import numpy as np

from ..ir.types import TensorType
from .jit import NativeLibrary

_ENTRY_T = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)


def _aligned_empty(nbytes: int, align: int = 64) -> np.ndarray:
    raw = np.empty(nbytes + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + nbytes]


class Executable:
    def __init__(self, lib: NativeLibrary, entry: str, input_types: Sequence[TensorType],
                 output_types: Sequence[TensorType], output_sources: Sequence[tuple],
                 constants: Sequence[np.ndarray], workspace_bytes: int,
                 input_names: Sequence[str] | None = None, errors: dict[int, str] | None = None):
        self.lib = lib
        self.input_types = list(input_types)
        self.output_types = list(output_types)
        self.input_names = list(input_names or [f"argument {i}" for i in range(len(input_types))])
        self._sources = [tuple(s) for s in output_sources]
        self._constants = [np.ascontiguousarray(c) for c in constants]
        self._workspace = _aligned_empty(workspace_bytes) if workspace_bytes else None
        self.workspace_bytes = workspace_bytes
        n_in, n_out = len(self.input_types), len(self.output_types)
        self._ptrs = (ctypes.c_void_p * (n_in + n_out + len(constants) + 1))()
        for j, c in enumerate(self._constants):
            self._ptrs[n_in + n_out + j] = c.ctypes.data
        if self._workspace is not None:
            self._ptrs[n_in + n_out + len(constants)] = self._workspace.ctypes.data
        self._fn = _ENTRY_T(lib.address(entry))
        self._expect = [(t.dtype.np, t.shape) for t in self.input_types]
        self._out = [(t.shape, t.dtype.np) for t in self.output_types]
        self._lock = threading.Lock()  # the pointer array and workspace are per executable
        self._recycle: list = [None] * len(self._out)
        self.errors = dict(errors or {})

    def check(self, args) -> list[np.ndarray]:
        """The arguments as dense arrays of the compiled types, or a clear exception."""
        if len(args) != len(self._expect):
            raise TypeError(f"expected {len(self._expect)} arguments "
                            f"({', '.join(map(str, self.input_types))}), got {len(args)}")
        out = []
        for i, (a, (dt, shape)) in enumerate(zip(args, self._expect)):
            if type(a) is not np.ndarray:
                a = np.asarray(a)
            if a.dtype != dt:
                raise TypeError(f"{self.input_names[i]}: expected dtype "
                                f"{self.input_types[i]}, got {a.dtype}{list(a.shape)}")
            if a.shape != shape:
                raise ValueError(f"{self.input_names[i]}: expected shape "
                                 f"{self.input_types[i]}, got {a.dtype}{list(a.shape)}")
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)
            out.append(a)
        return out

    def _output(self, k: int) -> np.ndarray:
        """A fresh array for output k, or the one returned last time if nobody holds it any
        more (no view, no reference): its pages are already mapped, which saves the page
        faults of a new large array (a caching allocator, as PyTorch's)."""
        last = self._recycle[k]
        if last is not None and sys.getrefcount(last) == 3:  # _recycle, `last`, the argument
            return last
        shape, dt = self._out[k]
        out = self._recycle[k] = np.empty(shape, dt)
        return out

    def __call__(self, *args) -> list[np.ndarray]:
        arrays = self.check(args)
        n_in = len(arrays)
        with self._lock:
            outs = [self._output(k) if src[0] == "kernel" else None
                    for k, src in enumerate(self._sources)]
            ptrs = self._ptrs
            for i, a in enumerate(arrays):
                ptrs[i] = a.ctypes.data
            for k, o in enumerate(outs):
                ptrs[n_in + k] = o.ctypes.data if o is not None else None
            status = self._fn(ptrs)
        if status:
            raise IndexError(self.errors.get(status, f"compiled code failed (status {status})"))
        for k, src in enumerate(self._sources):
            if src[0] != "kernel":
                base = {"input": arrays, "constant": self._constants, "output": outs}[src[0]]
                outs[k] = np.array(base[src[1]]).reshape(self._out[k][0])
        return outs
