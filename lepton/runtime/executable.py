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

Calls are independent: each takes a frame (that pointer array and a workspace) from the
executable's free list and gives it back, so calls from several threads run at the same time
(ctypes releases the GIL during the foreign call) while a single caller reuses one frame and
allocates nothing but its outputs. Nothing of a call's inputs or outputs is kept after it; the
memory of a large output comes back for later calls once the caller drops it (outputs.py).
"""
from __future__ import annotations

import ctypes
from typing import Sequence

import numpy as np

from ..ir.types import TensorType
from .jit import NativeLibrary
from .outputs import OutputPool, aligned_empty

_ENTRY_T = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p)


_addressof, _c_char = ctypes.addressof, ctypes.c_char


def _address(a: np.ndarray) -> int:
    """The address of a's data (a dense array): through the buffer protocol, ~0.4 µs, where
    `a.ctypes.data` costs ~1.4 µs (W1 passes 7 arrays a call); a read-only or empty array has no
    writable buffer to export, nor has an array of ml_dtypes' types (bfloat16, float8...): those
    go through a.ctypes."""
    if a.flags.writeable and a.size and a.dtype.isbuiltin == 1:
        return _addressof(_c_char.from_buffer(a))
    return a.ctypes.data


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
        self.workspace_bytes = workspace_bytes
        self._fn = _ENTRY_T(lib.address(entry))
        self._expect = [(t.dtype.np, t.shape) for t in self.input_types]
        self._out = [(t.shape, t.dtype.np) for t in self.output_types]
        self._frames: list[_Frame] = []     # free frames; list.pop and append are atomic
        self._pool = OutputPool()           # memory of large outputs nobody holds any more
        self.errors = dict(errors or {})

    def _new_frame(self) -> "_Frame":
        n_in, n_out = len(self.input_types), len(self.output_types)
        frame = _Frame(self.workspace_bytes, n_in + n_out + len(self._constants) + 1)
        for j, c in enumerate(self._constants):
            frame.ptrs[n_in + n_out + j] = c.ctypes.data
        if frame.workspace is not None:
            frame.ptrs[n_in + n_out + len(self._constants)] = frame.workspace.ctypes.data
        return frame

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

    def __call__(self, *args) -> list[np.ndarray]:
        arrays = self.check(args)
        n_in = len(arrays)
        outs = [self._pool.empty(*self._out[k]) if src[0] == "kernel" else None
                for k, src in enumerate(self._sources)]
        try:
            frame = self._frames.pop()
        except IndexError:  # (not a check first: another thread may pop in between)
            frame = self._new_frame()
        try:
            ptrs = frame.ptrs
            for i, a in enumerate(arrays):
                ptrs[i] = _address(a)
            for k, o in enumerate(outs):
                ptrs[n_in + k] = _address(o) if o is not None else None
            status = self._fn(ptrs)
        finally:
            self._frames.append(frame)
        if status:
            raise IndexError(self.errors.get(status, f"compiled code failed (status {status})"))
        for k, src in enumerate(self._sources):
            if src[0] != "kernel":
                base = {"input": arrays, "constant": self._constants, "output": outs}[src[0]]
                outs[k] = np.array(base[src[1]]).reshape(self._out[k][0])
        return outs


class _Frame:
    """What one call needs of its own: the entry's pointer array (constants and workspace
    filled in once) and the workspace (intermediates and kernel scratch)."""
    __slots__ = ("ptrs", "workspace")

    def __init__(self, workspace_bytes: int, n_ptrs: int):
        self.workspace = aligned_empty(workspace_bytes) if workspace_bytes else None
        self.ptrs = (ctypes.c_void_p * n_ptrs)()
