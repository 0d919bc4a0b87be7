"""The on-disk cache: a second compile of the same structure loads object code instead of
running LLVM, gives the same results, and a changed structure or a broken entry misses."""
import os

import numpy as np

import lepton as lp
from lepton.runtime.cache import DiskCache, cache_key
from lepton.runtime.vector_width import FILE_NAME

rng = np.random.default_rng(4)


def model(x, w, b):
    return lp.softmax(lp.gelu(x @ w + b), axis=-1)


def test_warm_compile_loads_from_disk_and_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    args = (rng.standard_normal((8, 16)).astype(np.float32),
            rng.standard_normal((16, 12)).astype(np.float32),
            rng.standard_normal(12).astype(np.float32))
    cold = lp.compile(model, example_args=args)
    assert not cold.stats()["from_disk_cache"]
    # an object file and its metadata (beside them, on an AVX-512 host: the vector width
    # chosen, and the directories of the shared GEMM routines and of big kernels:
    # test_routines.py, test_kernel_cache.py)
    assert len(set(os.listdir(tmp_path)) - {FILE_NAME, "routines", "kernels"}) == 2
    warm = lp.compile(model, example_args=args)
    s = warm.stats()
    assert s["from_disk_cache"] and "llvm" not in s["compile_seconds"]
    assert warm.llvm_ir() == cold.llvm_ir() and s["kernels"] == cold.stats()["kernels"]
    np.testing.assert_array_equal(warm(*args), cold(*args))
    # another shape is another key
    other = lp.compile(model, example_args=(args[0][:4],) + args[1:])
    assert not other.stats()["from_disk_cache"]


def test_source_lines_do_not_change_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    x = np.ones(5, np.float32)
    lp.compile(lambda v: lp.exp(v) * 2.0, example_args=(x,))
    f = lp.compile(
        lambda v: lp.exp(v) * 2.0, example_args=(x,))  # the same ops on other lines
    assert f.stats()["from_disk_cache"]


def test_broken_entries_are_misses(tmp_path):
    cache = DiskCache(str(tmp_path))
    key = cache_key("graph @g() {\n  return\n}")
    assert cache.get(key) is None
    cache.put(key, b"\x7fELF", {"x": 1})
    (tmp_path / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None


def test_a_damaged_object_is_a_miss_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
    w = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    lp.compile(lambda x, w: lp.tanh(x @ w), example_args=(x, w))
    objects = list(tmp_path.rglob("*.o"))
    assert objects
    for o in objects:   # same size, other bytes (loading them would crash LLVM)
        o.write_bytes(b"\x7fELF" + b"\xff" * (o.stat().st_size - 4))
    f = lp.compile(lambda x, w: lp.tanh(x @ w), example_args=(x, w))
    assert not f.stats()["from_disk_cache"]
    np.testing.assert_allclose(f(x, w), np.tanh(x.astype(np.float64) @ w), rtol=1e-5,
                               atol=1e-6)


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LEPTON_CACHE", "0")
    lp.compile(lambda v: v + 1.0, example_args=(np.ones(3, np.float32),))
    assert not os.listdir(tmp_path)
