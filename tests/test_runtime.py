"""The runtime: argument checks before native code, outputs, no leaks, repeated calls."""
import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from lepton.compile import CompileResult
from lepton.ir import Graph, TensorType, float32, int64


def _exe():
    g = Graph("f")
    x = g.input(TensorType(float32, (3, 4)))
    i = g.input(TensorType(int64, (2,)))
    y = g.add("take", [g.add("exp", [x]), i], axis=1)
    g.set_outputs([y, g.add("reshape", [y], shape=(6,))])
    return CompileResult(g, None, None).executable


def test_outputs_and_reshaped_output():
    exe = _exe()
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    y, z = exe(x, np.array([3, 0]))
    np.testing.assert_allclose(y, np.exp(x)[:, [3, 0]], rtol=1e-6)
    np.testing.assert_array_equal(z, y.reshape(6))


@pytest.mark.parametrize("args,exc,msg", [
    ((np.zeros((3, 4), np.float32),), TypeError, r"expected 2 arguments"),
    ((np.zeros((3, 4), np.float64), np.zeros(2, np.int64)), TypeError,
     r"argument 0: expected dtype f32\[3,4\], got float64\[3, 4\]"),
    ((np.zeros((4, 3), np.float32), np.zeros(2, np.int64)), ValueError,
     r"argument 0: expected shape f32\[3,4\]"),
    ((np.zeros((3, 4), np.float32), np.zeros(3, np.int64)), ValueError, r"argument 1"),
    ((np.zeros((3, 4), np.float32), "ab"), TypeError, r"argument 1"),
])
def test_bad_arguments_raise_before_native_code(args, exc, msg):
    with pytest.raises(exc, match=msg):
        _exe()(*args)


def test_non_contiguous_arguments_are_accepted():
    exe = _exe()
    x = (np.arange(32, dtype=np.float32) / 10).reshape(4, 8)[:3, ::2]
    assert not x.flags.c_contiguous
    y, _ = exe(x, np.array([1, 2]))
    np.testing.assert_allclose(y, np.exp(x)[:, [1, 2]], rtol=1e-6)


def test_out_of_range_take_indices_never_read_outside():
    y, _ = _exe()(np.ones((3, 4), np.float32), np.array([10 ** 12, -10 ** 12]))
    assert np.isfinite(y).all()


def test_no_leak_over_10000_calls():
    exe = _exe()
    x, i = np.ones((3, 4), np.float32), np.array([1, 2])
    tracemalloc.start()
    try:
        for _ in range(500):
            exe(x, i)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            exe(x, i)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"traced memory grew by {grown} bytes over 10,000 calls"


def test_held_outputs_are_never_overwritten():
    exe = _exe()
    x, i = np.ones((3, 4), np.float32), np.array([1, 2])
    y1, _ = exe(x, i)
    y2, _ = exe(x * 2, i)
    assert y1 is not y2 and not np.shares_memory(y1, y2)
    np.testing.assert_allclose(y1, np.e)           # still the first result
    view = y2[0]
    del y2
    y3, _ = exe(x * 3, i)
    assert not np.shares_memory(view, y3)           # a view keeps its base alive
    np.testing.assert_allclose(view, np.exp(2.0), rtol=1e-6)


@pytest.mark.parametrize("contiguous", [True, False])
def test_no_reference_to_inputs_or_outputs_survives_a_call(contiguous):
    import lepton as lp
    f = lp.compile(lambda x, w: [x @ w + 1.0, {"y": lp.exp(x)}, w])
    x = np.ones((64, 32), np.float32)
    w = np.ones((32, 16) if contiguous else (16, 32), np.float32)
    if not contiguous:
        w = w.T                  # the call makes a contiguous copy of it: not kept either
    gc.disable()                 # dead by reference counting alone, no cycle to collect
    try:
        f(x, w)                  # the call that compiles
        out = f(x, w)            # and one on the fast path
        refs = [weakref.ref(a) for a in (x, w, out[0], out[1]["y"], out[2])]
        del x, w, out
        assert [r() is None for r in refs] == [True] * len(refs)
    finally:
        gc.enable()


def test_one_caller_reuses_one_frame():
    exe = _exe()
    x, i = np.ones((3, 4), np.float32), np.array([1, 2])
    for _ in range(3):
        exe(x, i)
    assert len(exe._frames) == 1


def test_large_outputs_are_held_safely_and_their_memory_reused():
    g = Graph("big")
    x = g.input(TensorType(float32, (1024, 512)))     # 2 MiB: from the output pool
    g.set_outputs([g.add("exp", [x])])
    exe = CompileResult(g, None, None).executable
    ones = np.ones((1024, 512), np.float32)
    (y1,) = exe(ones)
    view, ref, addrs = y1[3:5], weakref.ref(y1), {y1.ctypes.data}
    del y1
    (y2,) = exe(ones * 2)
    assert not np.shares_memory(view, y2)           # a view keeps the memory held
    np.testing.assert_allclose(view, np.e, rtol=1e-6)
    assert ref() is not None                       # (the view's base)
    addrs.add(y2.ctypes.data)
    del view, y2
    assert ref() is None                            # no array of a dropped output survives
    (y3,) = exe(ones)
    assert y3.ctypes.data in addrs                  # written into memory already mapped
    np.testing.assert_allclose(y3, np.e, rtol=1e-6)


def test_pooled_outputs_start_on_a_cache_line():
    from lepton.runtime.outputs import ALIGN, OutputPool
    pool = OutputPool()
    for shape in [(1 << 18,), (1025, 1031), (3, 1 << 20)]:
        y = pool.empty(shape, np.float32)
        assert y.shape == shape and y.ctypes.data % ALIGN == 0
        y[...] = 1.0                                 # the whole block is writable
        del y
        again = pool.empty(shape, np.float32)        # recycled: still aligned
        assert again.ctypes.data % ALIGN == 0
