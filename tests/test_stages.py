"""The compile pipeline as named stages (compiler/stages.py) and the disk-cache entry keyed by
the traced graph (compiler/store.py): each stage returns a new artefact and leaves the one it
was given as it was; a warm compile runs no pass yet computes and reports the same."""
import copy
import gc

import numpy as np
import pytest

import lepton as lp
from lepton.compiler import stages, store
from lepton.ir import Graph, TensorType, Value, float32, interpret
from lepton.runtime.cache import DiskCache

rng = np.random.default_rng(11)


def model(x, w, b):
    return lp.softmax(lp.relu(x @ w + b) * 2.0, axis=-1)


ARGS = (rng.standard_normal((8, 16)).astype(np.float32),
        rng.standard_normal((16, 12)).astype(np.float32),
        rng.standard_normal(12).astype(np.float32))


def test_each_stage_returns_a_new_artefact_and_leaves_its_input_alone():
    traced = lp.trace(model, *ARGS)
    text = str(traced)
    kept, times = {}, {}
    native = stages.run(traced, stages.Options(), until="llvm", keep=kept, times=times)
    assert list(kept) == ["passes", "partition", "plan", "lower", "llvm"] == list(times)
    assert str(traced) == text
    planned = kept["plan"]
    before = copy.copy(vars(planned.plan))
    stages.run(planned, stages.Options())   # lowering again does not touch the plan
    assert vars(planned.plan) == before
    assert kept["lower"].layout.workspace_bytes >= planned.plan.intermediate_bytes
    assert isinstance(native, stages.Native) and native.object
    loaded = stages.run(native, stages.Options())
    assert isinstance(loaded, stages.Loaded) and loaded.lib.address(loaded.entry)


def test_run_names_a_wrong_stage_or_artefact():
    traced = lp.trace(model, *ARGS)
    with pytest.raises(ValueError, match="not a stage"):
        stages.run(traced, stages.Options(), until="optimise")
    with pytest.raises(TypeError, match="no stage takes a str"):
        stages.run("graph", stages.Options())
    optimised = stages.run(traced, stages.Options(), until="passes")
    with pytest.raises(ValueError, match="past stage 'passes'"):
        stages.run(stages.run(optimised, stages.Options(), until="plan"), stages.Options(),
                   until="passes")


def test_warm_compile_runs_no_pass_and_agrees(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    cold = lp.compile(model, example_args=ARGS)
    warm = lp.compile(model, example_args=ARGS)     # the code cold loaded: shared
    s, c = warm.stats(), cold.stats()
    assert s["from_disk_cache"] and not c["from_disk_cache"]
    assert set(s["compile_seconds"]) == {"trace", "key", "total"}
    assert {"passes", "partition", "plan", "lower", "llvm", "load"} <= set(c["compile_seconds"])
    assert warm._result().lib is cold._result().lib
    np.testing.assert_array_equal(warm(*ARGS), cold(*ARGS))
    # what a hit skipped is made again when asked for, and says the same
    assert warm.ir() == cold.ir() and warm.llvm_ir() == cold.llvm_ir()
    for k in ("kernel_ops", "fused_groups", "values", "workspace_bytes", "intermediate_bytes",
              "scratch_bytes", "constant_bytes"):
        assert s[k] == c[k], k


def test_constants_made_by_the_passes_are_stored_with_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    w = rng.standard_normal((12, 16)).astype(np.float32)

    def f(x):
        return x @ (w.T * 3.0)          # frozen: the passes fold w.T * 3 into a new constant
    x = ARGS[0]
    cold = lp.compile(f, example_args=(x,), freeze=True)
    warm = lp.compile(f, example_args=(x,), freeze=True)
    assert warm.stats()["from_disk_cache"]
    assert warm.stats()["constant_bytes"] == w.nbytes
    np.testing.assert_allclose(warm(x), x @ (w.T * 3.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(warm(x), cold(x))


def test_the_key_sees_constants_and_options_not_source_lines():
    def key(fn, *args, **opts):
        return store.traced_key(lp.trace(fn, *args), stages.Options(**opts))
    x = np.ones(4, np.float32)
    a = key(lambda v: v * np.full(4, 2.0, np.float32), x)
    assert a == key(
        lambda v: v * np.full(4, 2.0, np.float32), x)   # another line, the same structure
    assert a != key(lambda v: v * np.full(4, 3.0, np.float32), x)
    assert a != key(lambda v: v * np.full(4, 2.0, np.float32), x, threads=2)
    assert a != key(lambda v: v * np.full(4, 2.0, np.float32), x, profile=True)


def test_the_key_sees_every_attribute_region_and_constant_bit():
    def key(fn, *args):
        return store.traced_key(lp.trace(fn, *args), stages.Options())
    x = np.ones((3, 4), np.float32)
    keys = [key(lambda v: v.sum(axis=1), x), key(lambda v: v.sum(axis=0), x),
            key(lambda v: v.sum(axis=1, keepdims=True), x),
            key(lambda v: v.astype(np.float64), x), key(lambda v: v.astype(np.int32), x),
            key(lambda v: v + np.float32(0.0), x), key(lambda v: v + np.float32(-0.0), x),
            key(lambda v: v.reshape(4, 3), x), key(lambda v: v.reshape(2, 6), x),
            key(lambda v: lp.scan(lambda c, r: (c + r, c), v[0], v)[1], x),
            key(lambda v: lp.scan(lambda c, r: (c * r, c), v[0], v)[1], x),
            key(lambda v: lp.scan(lambda c, r: (c + r, c), v[0], v, reverse=True)[1], x)]
    assert len(set(keys)) == len(keys)
    # an attribute's Python type counts (True == 1 in Python), and so does a region's name
    def graph(index):
        g = Graph("g")
        v = g.input(TensorType(float32, (2,)))
        g.nodes.append(Value("get", (v,), {"index": index}, v.type))
        g.set_outputs([g.nodes[-1]])
        return g
    assert len({store.traced_key(graph(i), stages.Options()) for i in (1, True, 1.0)}) == 3


def test_a_damaged_entry_is_a_miss(tmp_path):
    traced = lp.trace(model, *ARGS)
    cache, opts = DiskCache(str(tmp_path)), stages.Options()
    key = store.traced_key(traced, opts)
    native = stages.run(traced, opts, until="llvm")
    store.store(cache, key, traced, native)
    got = store.fetch(cache, key, traced)
    assert got.object == native.object and got.layout.kernel_names == native.layout.kernel_names
    cache.put(key, native.object, {"object_bytes": 1})   # an entry missing its layout
    assert store.fetch(cache, key, traced) is None


def test_compiled_function_matches_the_interpreter_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    lp.compile(model, example_args=ARGS)
    warm = lp.compile(model, example_args=ARGS)
    want = interpret(lp.trace(model, *ARGS), *ARGS)[0]
    np.testing.assert_allclose(warm(*ARGS), want, rtol=1e-5, atol=1e-6)


def test_a_compile_after_the_others_are_gone_reads_the_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    cold = lp.compile(model, example_args=ARGS)
    want, lib, ir = cold(*ARGS), cold._result().lib, cold.llvm_ir()
    del cold, lib
    gc.collect()       # no compile of this key lives: its loaded code is gone
    warm = lp.compile(model, example_args=ARGS)
    assert set(warm.stats()["compile_seconds"]) == {"trace", "key", "cache_load", "load",
                                                     "total"}
    np.testing.assert_array_equal(warm(*ARGS), want)
    assert warm.llvm_ir() == ir     # (stored after the code and constants, read when asked)


def test_shared_code_names_each_programs_own_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    x, i = np.ones((5, 3), np.float32), np.array([0])
    first = lp.compile(lambda a, j: lp.take(a, j, axis=0), example_args=(x, i))
    second = lp.compile(
        lambda a, j: lp.take(a, j, axis=0), example_args=(x, i))   # another line
    assert second._result().lib is first._result().lib
    lines = []
    for f in (first, second):
        with pytest.raises(IndexError) as e:
            f(x, np.array([7]))
        lines.append(str(e.value).rsplit(":", 1)[-1])
    assert int(lines[1]) == int(lines[0]) + 2
