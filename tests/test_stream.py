"""Rows kernels streaming large arrays (codegen/stream.py): the non-temporal copy of a staged row
at every alignment and length, and layer_norm / softmax big enough to stream and prefetch,
against float64 NumPy, with odd row lengths, several threads and an output written in place."""
import math

import numpy as np
import pytest
from llvmlite import ir

import lepton as lp
from lepton.compiler.codegen import stream
from lepton.compiler.codegen.loops import loop_metadata, new_function
from lepton.ir.types import dtype as lp_dtype

from kernels import call_kernel

rng = np.random.default_rng(11)


class Text:
    """A module given as IR text: call_kernel compiles str(module)."""
    def __init__(self, text: str):
        self.text = text

    def __str__(self):
        return self.text


def copy_module(n: int, dtype: str) -> Text:
    """`k(dst, src)`: emit_stream_copy of n elements, then the fence."""
    mod = ir.Module()
    dt = lp_dtype(dtype)
    ptr = stream.mem_type(dt).as_pointer()
    fn, b = new_function(mod, "k", [ptr, ptr], ["dst", "src"])
    stream.emit_stream_copy(b, fn.args[0], fn.args[1], n, dt)
    stream.emit_store_fence(b)
    b.ret_void()
    return Text(loop_metadata(str(mod)))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int8", "uint16"])
@pytest.mark.parametrize("n", [0, 1, 7, 16, 17, 63, 64, 129, 1031])
def test_stream_copy_writes_exactly_the_row_at_every_alignment(dtype, n):
    size = np.dtype(dtype).itemsize
    module = copy_module(n, dtype)
    if n >= 2 * 64 // size:
        assert "!nontemporal" in str(module)
    for shift in range(64 // size + 2):         # every position of dst in a line, and past
        src = rng.integers(1, 100, n).astype(dtype)
        room = np.zeros(n + 2 * 64 // size + 8, dtype)
        dst = room[shift:shift + n]
        call_kernel(module, "k", dst, src)
        np.testing.assert_array_equal(dst, src)
        assert not room[:shift].any() and not room[shift + n:].any()   # nothing outside


def test_stream_copy_to_a_destination_not_aligned_to_its_elements():
    n = 100
    src = rng.standard_normal(n).astype(np.float32)
    raw = np.zeros(4 * n + 8, np.uint8)
    dst = raw[1:1 + 4 * n]                       # a float row starting at an odd byte
    call_kernel(copy_module(n, "float32"), "k", dst, src)
    np.testing.assert_array_equal(np.frombuffer(dst.tobytes(), np.float32), src)
    assert raw[0] == 0 and not raw[1 + 4 * n:].any()


def rows_for(row: int, itemsize: int = 4) -> int:
    """Enough rows of `row` elements that the output streams."""
    return math.ceil(stream.STREAM_MIN_BYTES / (row * itemsize)) + 3


def layer_norm64(x, w, b, eps=1e-5):
    x, w, b = (np.asarray(a, np.float64) for a in (x, w, b))
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def softmax64(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("row", [64, 1031, 1024, 2047])
def test_layer_norm_streams_and_matches_float64(row):
    x = (rng.standard_normal((rows_for(row), row)) * 3 + 100).astype(np.float32)
    w, b = rng.standard_normal(row).astype(np.float32), rng.standard_normal(row).astype(np.float32)
    f = lp.compile(lambda x, w, b: lp.layer_norm(x, w, b))
    y = f(x, w, b)
    assert "!nontemporal" in f.llvm_ir() and "llvm.prefetch" in f.llvm_ir()
    np.testing.assert_allclose(y, layer_norm64(x, w, b), rtol=1e-4, atol=1e-4)


def test_softmax_float64_streams_and_matches():
    row = 1000                                       # 8000 bytes a row: still staged
    x = rng.standard_normal((rows_for(row, 8), row)) * 10
    f = lp.compile(lambda x: lp.softmax(x))
    y = f(x)
    assert "!nontemporal" in f.llvm_ir()
    np.testing.assert_allclose(y, softmax64(x), rtol=1e-12, atol=1e-15)


def test_small_outputs_and_long_rows_do_not_stream():
    x = rng.standard_normal((64, 1024)).astype(np.float32)
    f = lp.compile(lambda x: lp.softmax(x))
    np.testing.assert_allclose(f(x), softmax64(x), rtol=1e-5, atol=1e-7)
    assert "!nontemporal" not in f.llvm_ir() and "llvm.prefetch" not in f.llvm_ir()
    long = rng.standard_normal((2, stream.STREAM_MIN_BYTES // 4)).astype(np.float32)
    g = lp.compile(lambda x: lp.softmax(x))
    np.testing.assert_allclose(g(long), softmax64(long), rtol=1e-4, atol=1e-12)
    assert "!nontemporal" not in g.llvm_ir()


@pytest.mark.parametrize("threads", ["2", "3"])
def test_streamed_rows_split_across_threads_match_one_thread(threads, monkeypatch):
    row = 333
    x = rng.standard_normal((rows_for(row), row)).astype(np.float32)
    w, b = np.ones(row, np.float32), np.zeros(row, np.float32)
    monkeypatch.setenv("LEPTON_NUM_THREADS", "1")
    one = lp.compile(lambda x, w, b: lp.layer_norm(x, w, b))(x, w, b)
    monkeypatch.setenv("LEPTON_NUM_THREADS", threads)
    f = lp.compile(lambda x, w, b: lp.layer_norm(x, w, b))
    many = f(x, w, b)
    assert "!nontemporal" in f.llvm_ir()
    np.testing.assert_array_equal(one, many)
    np.testing.assert_allclose(many, layer_norm64(x, w, b), rtol=1e-4, atol=1e-4)


def test_streamed_output_over_its_input_in_place():
    # the matmul's output dies in the layer_norm, whose output the memory plan puts in its
    # place (the rows kernel reads each row through the output's pointer before streaming it)
    row = 1031
    x = rng.standard_normal((rows_for(row), 64)).astype(np.float32)
    w = rng.standard_normal((64, row)).astype(np.float32)
    v = rng.standard_normal((row, 8)).astype(np.float32)
    f = lp.compile(lambda x, w, v: lp.layer_norm(x @ w) @ v)
    y = f(x, w, v)
    assert "!nontemporal" in f.llvm_ir()
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    want = layer_norm64(x64 @ w64, np.ones(row), np.zeros(row)) @ v.astype(np.float64)
    np.testing.assert_allclose(y, want, rtol=1e-3, atol=1e-3)


def test_rows_over_two_trailing_axes_and_two_outer_axes_stream():
    x = rng.standard_normal((rows_for(2000) + 1, 20, 100)).astype(np.float32)
    f = lp.compile(lambda x: x - lp.mean(x, axis=(1, 2), keepdims=True))
    y = f(x)
    assert "!nontemporal" in f.llvm_ir()
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, x64 - x64.mean(axis=(1, 2), keepdims=True), atol=1e-5)
    z = rng.standard_normal((3, rows_for(1031 * 3), 1031)).astype(np.float32)
    g = lp.compile(lambda z: lp.layer_norm(z))
    out = g(z)
    assert "!nontemporal" in g.llvm_ir()
    np.testing.assert_allclose(out, layer_norm64(z, 1.0, 0.0), rtol=1e-4, atol=1e-4)


def test_streamed_rows_of_halves_and_bools():
    row = 1000
    x = rng.standard_normal((rows_for(row, 2), row)).astype(np.float16)
    f = lp.compile(lambda x: lp.softmax(x))
    y = f(x)
    assert y.dtype == np.float16 and "!nontemporal" in f.llvm_ir()
    np.testing.assert_allclose(y.astype(np.float64), softmax64(x), rtol=2e-2, atol=1e-4)
    b = rng.standard_normal((rows_for(row, 1), row)).astype(np.float32)
    g = lp.compile(lambda b: b > lp.mean(b, axis=-1, keepdims=True))
    got = g(b)
    assert got.dtype == np.bool_ and "!nontemporal" in g.llvm_ir()
    mean = b.mean(-1, keepdims=True, dtype=np.float64)
    clear = np.abs(b - mean) > 1e-5                 # float32's mean may round either way
    np.testing.assert_array_equal(got[clear], (b > mean)[clear])
