"""Test helper: JIT one llvmlite function and call it on NumPy arrays (pointers in order)."""
import ctypes

import numpy as np

from lepton.runtime.jit import jit_compile


def call_kernel(module, name, *arrays, opt_level=3, width=None):
    """Compiles `module` (preferring `width`-bit vectors; None: LLVM's choice for the host),
    calls `name(ptr0, ptr1, ...)`; returns the NativeLibrary (for its IR)."""
    lib = jit_compile(str(module), opt_level, width)
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * len(arrays))(lib.address(name))
    for a in arrays:
        assert isinstance(a, np.ndarray) and a.flags.c_contiguous
    fn(*[a.ctypes.data for a in arrays])
    return lib
