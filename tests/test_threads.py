"""Kernels split across threads give the single-thread results (LEPTON_NUM_THREADS)."""
import numpy as np
import pytest

import lepton as lp
from lepton.ir import interpret
from lepton.runtime.jit import openmp_available

rng = np.random.default_rng(5)
pytestmark = pytest.mark.skipif(not openmp_available(), reason="no libgomp on this system")


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


CASES = [
    ("chain", lambda x: lp.gelu(x * 1.5 + 0.25, approximate=True) * 0.5 + x, [((1 << 16) + 3,)]),
    ("softmax rows", lambda x: lp.softmax(x), [(3, 40000)]),
    ("layer_norm", lambda x, w, b: lp.layer_norm(x, w, b), [(1001, 64), (64,), (64,)]),
    ("row sums", lambda x: lp.sum(lp.exp(x), axis=-1), [(513, 129)]),
    ("odd outer", lambda x, y: lp.maximum(x, y) * 2.0, [(7, 5, 1031), (5, 1031)]),
    ("matmul epilogue", lambda x, w, b, r: lp.relu(x @ w + b) + r,
     [(333, 100), (100, 70), (70,), (333, 70)]),
    ("matmul a^T", lambda x, y: x.T @ y, [(100, 301), (100, 90)]),
    ("matmul b^T", lambda x, w, b: x @ w.T + b, [(257, 64), (96, 64), (96,)]),
    ("batched", lambda q, k: lp.softmax(q @ k.transpose(0, 2, 1)), [(3, 100, 64), (3, 90, 64)]),
    ("conv", lambda x, w, b: lp.relu(lp.conv2d(x, w, b, padding=1)),
     [(8, 8, 24, 24), (16, 8, 3, 3), (16,)]),
]


@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
def test_threads_agree_with_one_thread_and_the_interpreter(name, fn, shapes, monkeypatch):
    args = [f32(*s) for s in shapes]
    want = interpret(lp.trace(fn, *args), *args)[0]
    got = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("LEPTON_NUM_THREADS", threads)
        f = lp.compile(fn)
        got[threads] = f(*args)
        assert f.stats()["threads"] == int(threads)
        assert ("GOMP_parallel" in f.llvm_ir()) == (threads != "1")  # really split
        np.testing.assert_allclose(got[threads], want, rtol=2e-5, atol=2e-5)
    if "matmul" not in name and name not in ("batched", "conv"):
        np.testing.assert_array_equal(got["1"], got["2"])  # the same arithmetic per element


def test_bad_thread_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEPTON_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="LEPTON_NUM_THREADS"):
        lp.compile(lambda x: x + 1.0)(np.ones(3, np.float32))
