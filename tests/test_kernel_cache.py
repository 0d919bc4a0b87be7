"""Big kernels cached on disk one by one (lepton/runtime/kernel_cache.py): a new model made of
kernels compiled before, in another process, loads them instead of running LLVM on them, and
its results stay right; a cached model whose kernel objects are gone compiles again."""
import os
import pathlib
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np

import lepton as lp
from lepton.runtime.kernel_cache import split_kernels

ROOT = pathlib.Path(__file__).resolve().parent.parent

CHILD = """
import sys, numpy as np, lepton as lp
from lepton.runtime import kernel_cache
blocks = int(sys.argv[1])
r = np.random.default_rng(0)
x = r.standard_normal((32, 64)).astype(np.float32)
ps = [(r.standard_normal((64, 128)).astype(np.float32) * .1,
       r.standard_normal((128, 64)).astype(np.float32) * .1) for _ in range(blocks)]

def model(x, ps):
    for w1, w2 in ps:
        x = lp.layer_norm(x + lp.tanh(x @ w1) @ w2)
    return lp.softmax(x, axis=-1)

def ref(x, ps):
    x = x.astype(np.float64)
    for w1, w2 in ps:
        y = x + np.tanh(x @ w1) @ w2
        x = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)

f = lp.compile(model)
assert np.allclose(f(x, ps), ref(x, ps), rtol=1e-3, atol=1e-5), "wrong result"
print(kernel_cache.compiled, f.stats()["from_disk_cache"])
"""


def run_child(cache_dir, blocks: int) -> tuple[int, bool]:
    env = {**os.environ, "LEPTON_CACHE_DIR": str(cache_dir), "LEPTON_CACHE": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", CHILD, str(blocks)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    compiled, hit = p.stdout.split()
    return int(compiled), hit == "True"


def test_a_deeper_model_of_known_kernels_compiles_none_of_them(tmp_path):
    compiled, hit = run_child(tmp_path, 2)
    assert compiled > 0 and not hit
    kernels = set((tmp_path / "kernels").glob("*.o"))
    assert kernels
    # 5 blocks of the same structure: its big kernels come from the cache (none compiled)
    assert run_child(tmp_path, 5) == (0, False)
    assert set((tmp_path / "kernels").glob("*.o")) == kernels
    assert run_child(tmp_path, 5) == (0, True)


def test_a_cached_model_whose_kernels_are_gone_compiles_again(tmp_path):
    run_child(tmp_path, 2)
    for f in (tmp_path / "kernels").iterdir():
        f.unlink()
    compiled, hit = run_child(tmp_path, 2)    # a miss, not a crash; right results
    assert compiled > 0 and not hit


def test_split_module_parts_parse_and_only_big_kernels_move():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 48)).astype(np.float32)
    w = rng.standard_normal((48, 32)).astype(np.float32)
    f = lp.compile(lambda x, w: lp.softmax(lp.gelu(x @ w), axis=-1), example_args=(x, w))
    names = f.stats()["kernel_ops"]
    text = f.llvm_ir()
    model, chunks = split_kernels(text, names, "test")
    assert chunks and all(c.name in names for c in chunks)
    llvm.parse_assembly(model).verify()
    for c in chunks:
        assert f'declare void @"{c.name}"(' in model
        llvm.parse_assembly(c.ir).verify()
    # everything small stays; with a threshold above every kernel nothing moves
    assert split_kernels(text, names, "test", big=10 ** 9) == (text, [])


def test_nothing_is_split_with_the_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("LEPTON_CACHE", "0")
    x = np.linspace(-2, 2, 96, dtype=np.float32).reshape(8, 12)
    f = lp.compile(lambda x: lp.softmax(lp.tanh(x), axis=-1))
    e = np.exp(np.tanh(x.astype(np.float64)))
    np.testing.assert_allclose(f(x), e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)
    assert not os.listdir(tmp_path)
