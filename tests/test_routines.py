"""The shared GEMM routines as a per-host runtime library (lepton/runtime/routines.py): taken
out of each model's module, compiled once per process or loaded from the disk cache, linked
into every model that calls them, with right results whatever was cached or deleted."""
import os
import pathlib
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest

import lepton as lp
from lepton.runtime import routines
from lepton.runtime.routines import PREFIX, split_routines

ROOT = pathlib.Path(__file__).resolve().parent.parent
rng = np.random.default_rng(8)


def mlp(x, w1, w2):
    return lp.relu(x @ w1) @ w2


def args(m, k, n):
    return (rng.standard_normal((m, k)).astype(np.float32),
            rng.standard_normal((k, n)).astype(np.float32),
            rng.standard_normal((n, 8)).astype(np.float32))


def reference(x, w1, w2):
    x, w1, w2 = (a.astype(np.float64) for a in (x, w1, w2))
    return np.maximum(x @ w1, 0) @ w2


def test_split_declares_the_routines_and_names_them_by_content():
    a = lp.compile(mlp, example_args=args(64, 96, 80))
    b = lp.compile(lambda x, w1, w2: lp.tanh(mlp(x, w1, w2)), example_args=args(48, 40, 72))
    model_a, ra = split_routines(a.llvm_ir())
    model_b, rb = split_routines(b.llvm_ir())
    # the same routine lowered in two modules (other positions, other loop metadata numbers)
    # gets one symbol; a routine's callees come before it
    sa, sb = {r.name: r.symbol for r in ra}, {r.name: r.symbol for r in rb}
    common = sa.keys() & sb.keys()
    assert common
    assert all(sa[n] == sb[n] for n in common)
    order = [r.symbol for r in ra]
    assert all(order.index(c) < order.index(r.symbol) for r in ra for c in r.calls)
    for text, rs in ((model_a, ra), (model_b, rb)):
        assert "define" not in "".join(line for line in text.splitlines()
                                                 if f'@"{PREFIX}' in line)
        llvm.parse_assembly(text).verify()       # the model: declarations only
        for r in rs:
            llvm.parse_assembly(r.ir).verify()   # each routine: a module of its own
    # f.llvm_ir() still holds every routine's definition (for reading and lp.export)
    assert all(f'define internal void @"{r.name}"(' in a.llvm_ir() for r in ra)


def test_routines_compile_once_per_process_and_results_agree(monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE", "0")
    first = args(64, 96, 80)
    f = lp.compile(mlp, example_args=first)
    np.testing.assert_allclose(f(*first), reference(*first), rtol=2e-4, atol=2e-3)
    before = routines.compiled_count
    g = lp.compile(lambda x, w1, w2: mlp(x, w1, w2) * 2.0, example_args=first)
    assert routines.compiled_count == before      # another model, the same GEMMs: none compiled
    np.testing.assert_allclose(g(*first), 2 * reference(*first), rtol=2e-4, atol=4e-3)
    other = args(33, 50, 70)   # other shapes, edges included: only routines not seen yet
    h = lp.compile(lambda x, w1, w2: mlp(x, w1, w2) * 2.0, example_args=other)
    known = {r.name for r in split_routines(f.llvm_ir())[1]}
    new = {r.name for r in split_routines(h.llvm_ir())[1]} - known
    assert routines.compiled_count - before <= len(new)
    np.testing.assert_allclose(h(*other), 2 * reference(*other), rtol=2e-4, atol=4e-3)
    np.testing.assert_allclose(f(*first), reference(*first), rtol=2e-4, atol=2e-3)


CHILD = """
import sys, numpy as np, lepton as lp
from lepton.runtime import routines
m, k, n = map(int, sys.argv[1:4])
r = np.random.default_rng(m)
x, w1, w2 = (r.standard_normal(s).astype(np.float32) for s in ((m, k), (k, n), (n, 8)))
f = lp.compile(lambda x, w1, w2: lp.relu(x @ w1) @ w2, example_args=(x, w1, w2))
want = np.maximum(x.astype(np.float64) @ w1, 0) @ w2
assert np.allclose(f(x, w1, w2), want, rtol=2e-4, atol=2e-3), "wrong result"
print(routines.compiled_count, f.stats()["from_disk_cache"])
"""


def run_child(cache_dir, *shape) -> tuple[int, bool]:
    env = {**os.environ, "LEPTON_CACHE_DIR": str(cache_dir), "LEPTON_CACHE": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", CHILD, *map(str, shape)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    compiled, hit = p.stdout.split()
    return int(compiled), hit == "True"


def test_a_new_process_loads_the_routines_from_the_disk_cache(tmp_path):
    compiled, hit = run_child(tmp_path, 64, 96, 80)
    assert compiled > 0 and not hit
    assert list((tmp_path / "routines").glob("*.o"))
    # another model made of the same routines: its own kernels compiled, no routine
    assert run_child(tmp_path, 40, 72, 56) == (0, False)
    # the first model again: all from the cache
    assert run_child(tmp_path, 64, 96, 80) == (0, True)


def test_a_cached_model_whose_routines_are_gone_compiles_again(tmp_path):
    run_child(tmp_path, 64, 96, 80)
    for f in (tmp_path / "routines").iterdir():
        f.unlink()
    compiled, hit = run_child(tmp_path, 64, 96, 80)   # not a crash: a miss, right results
    assert compiled > 0 and not hit
    assert list((tmp_path / "routines").glob("*.o"))


def test_no_file_is_written_with_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LEPTON_CACHE", "0")
    a = args(20, 30, 40)
    np.testing.assert_allclose(lp.compile(mlp)(*a), reference(*a), rtol=2e-4, atol=2e-3)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("text", ["", 'define void @"f"()\n{\nentry:\n  ret void\n}\n'])
def test_a_module_without_routines_is_unchanged(text):
    assert split_routines(text) == (text, [])
