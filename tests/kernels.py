"""Test helper: JIT one llvmlite function and call it on NumPy arrays (pointers in order)."""
import ctypes

import numpy as np
from llvmlite import ir

from lepton.compiler.codegen.loops import for_range, new_function

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


def scale_loop(n: int = 4096) -> ir.Module:
    """`k(out, in)`: out[i] = in[i] * 3 for n floats, a plain loop for LLVM to vectorise."""
    mod = ir.Module()
    ptr = ir.FloatType().as_pointer()
    fn, b = new_function(mod, "k", [ptr, ptr], ["out", "in"])
    with for_range(b, n) as i:
        b.store(b.fmul(b.load(b.gep(fn.args[1], [i])), ir.Constant(ir.FloatType(), 3.0)),
                b.gep(fn.args[0], [i]))
    b.ret_void()
    return mod
