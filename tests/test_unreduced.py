"""sin and cos in loop kernels: the fast pass (Cody-Waite only, flagging what it cannot reduce
through vmath.Unreduced) and the exact pass a flagged kernel share runs again (fused.py).

The flag's contract is tested on hand-built loops (scalar and vector values); compiled fused
chains, reductions and row passes with a few huge arguments are tested against NumPy; and the
kernel's IR is checked to keep the call of the Payne-Hanek reduction out of the fast loop."""
import re

import numpy as np
import pytest
from llvmlite import ir

import lepton as lp
from kernels import call_kernel
from lepton.compiler.codegen import vmath
from lepton.compiler.codegen.loops import for_range, new_function

LL = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}
DTS = [np.float32, np.float64]


def run_flagged(name, x, lanes=None):
    """y = name(x) emitted with an Unreduced, and whether it was seen, from one kernel
    `void k(T* y, T* x, i8* seen)` over x (as <lanes x T> vectors when lanes is given)."""
    mod = ir.Module()
    ty = LL[x.dtype.type] if lanes is None else ir.VectorType(LL[x.dtype.type], lanes)
    fn, b = new_function(mod, "k", [ty.as_pointer(), ty.as_pointer(), ir.IntType(8).as_pointer()])
    out, inp, seen = fn.args
    flags = vmath.Unreduced()
    align = x.itemsize
    with for_range(b, len(x) // (lanes or 1)) as i:
        y = vmath.FUNCTIONS[name](b, b.load(b.gep(inp, [i]), align=align), flags)
        b.store(y, b.gep(out, [i]), align=align)
    b.store(b.zext(flags.seen(b), ir.IntType(8)), seen)
    b.ret_void()
    y, flag = np.empty_like(x), np.zeros(1, np.uint8)
    call_kernel(mod, "k", y, x, flag)
    return y, bool(flag[0])


@pytest.mark.parametrize("lanes", [None, 4], ids=["scalar", "vector"])
@pytest.mark.parametrize("dt", DTS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_flag_is_seen_exactly_when_an_argument_is_beyond_the_cheap_reduction(name, dt, lanes):
    limit = vmath.SINCOS_MAX["f32" if dt == np.float32 else "f64"]
    x = np.random.default_rng(1).uniform(-limit, limit, 64).astype(dt)
    x[:3] = [limit, -limit, 0.0]
    y, seen = run_flagged(name, x, lanes)
    assert not seen
    want = getattr(np, name)(x.astype(np.float64))
    np.testing.assert_allclose(y, want, rtol=0, atol=16 * np.finfo(dt).eps)
    for odd in (np.nextafter(dt(limit), dt(np.inf)), -np.finfo(dt).max, np.inf, np.nan):
        x2 = x.copy()
        x2[37] = odd
        assert run_flagged(name, x2, lanes)[1], f"{odd!r} not flagged"


def _huge(x, dt, rows):
    """x with a few huge (finite) values in the given rows."""
    x = x.copy()
    big = np.finfo(dt).max / 3
    for r in rows:
        x[r, (7 * r) % x.shape[1]] = big if r % 2 else -1e30
    return x


MODELS = {
    # (every model returns a tuple) an elementwise chain of two inputs
    "chain": (lambda x, y: (lp.sin(x) * 2.0 + lp.cos(y) * y,),
              lambda x, y: (np.sin(x) * 2.0 + np.cos(y) * y,)),
    # sin feeding a reduction along the rows, and the full value stored too
    "reduce": (lambda x, y: (lp.sum(lp.sin(x * 0.5), axis=1), lp.cos(x) + y),
               lambda x, y: (np.sum(np.sin(x * 0.5), axis=1), np.cos(x) + y)),
    # two passes over each row (a reduction, then the stores) reading the same sin
    "rows": (lambda x, y: (lp.sin(x) / lp.sum(lp.cos(x) ** 2 + 1.0, axis=1, keepdims=True),),
             lambda x, y: (np.sin(x) / np.sum(np.cos(x) ** 2 + 1.0, axis=1, keepdims=True),)),
}


@pytest.mark.parametrize("dt", DTS, ids=["f32", "f64"])
@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("huge_rows", [(), (3,), (0, 5, 6)], ids=["none", "one", "three"])
def test_fused_kernels_hold_for_huge_arguments(model, dt, huge_rows):
    f, ref = MODELS[model]
    rng = np.random.default_rng(2)
    x = _huge(rng.uniform(-50, 50, (8, 300)).astype(dt), dt, huge_rows)
    y = rng.uniform(-2, 2, (8, 300)).astype(dt)
    got = lp.compile(f)(x, y)
    want = ref(x.astype(np.float64), y.astype(np.float64))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4 if dt == np.float32 else 1e-10,
                                   atol=1e-3 if dt == np.float32 else 1e-9)


def _functions(llvm_ir: str) -> dict[str, str]:
    """Each defined function's name and text."""
    parts = re.split(r"(?m)^define ", llvm_ir)[1:]
    return {re.search(r'@"?([\w.]+)"?\(', p)[1]: p for p in parts}


@pytest.mark.parametrize("op", [lp.sin, lp.cos])
def test_fast_loop_holds_no_call_of_the_exact_reduction(op):
    f = lp.compile(lambda x: op(x) * 2.0)
    x = np.linspace(-10, 10, 1000).astype(np.float32)
    np.testing.assert_allclose(f(x), getattr(np, op.__name__)(x) * 2.0, atol=1e-6)
    fns = _functions(f.llvm_ir())
    exact = [n for n in fns if n.endswith(".exact.body")]
    fast = [n for n in fns if n.endswith(".body") and n not in exact]
    assert len(exact) == 1 and len(fast) == 1, sorted(fns)
    assert "sincos_big" not in fns[fast[0]]
    assert f'@"{exact[0]}"' in fns[fast[0]] and "sincos_big" in fns[exact[0]]
