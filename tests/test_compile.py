"""lp.compile end to end: pytrees, per-signature cache, errors, inspection, check=True, dumps."""
import os

import numpy as np
import pytest

import lepton as lp
from lepton.compile import CheckError, _check_against_interpreter

rng = np.random.default_rng(2)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def mlp(x, p):
    h = lp.relu(x @ p["w1"] + p["b1"])
    return {"logits": h @ p["w2"], "hidden": [h, h.sum()]}


def test_pytrees_in_and_out():
    p = {"w1": f32(8, 16), "b1": f32(16), "w2": f32(16, 3)}
    x = f32(5, 8)
    out = lp.compile(mlp)(x, p)
    h = np.maximum(x @ p["w1"] + p["b1"], 0)
    assert set(out) == {"logits", "hidden"} and isinstance(out["hidden"], list)
    np.testing.assert_allclose(out["logits"], h @ p["w2"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["hidden"][1], h.sum(), rtol=1e-5)
    assert out["hidden"][1].shape == ()


def test_new_signature_compiles_again_and_stays_right():
    f = lp.compile(lambda x, y: lp.tanh(x) * y)
    for shape, dt in [((3, 4), np.float32), ((7, 13), np.float32), ((3, 4), np.float64),
                      ((3, 4), np.float32)]:
        x, y = rng.standard_normal(shape).astype(dt), rng.standard_normal(shape).astype(dt)
        got = f(x, y)
        assert got.dtype == dt
        np.testing.assert_allclose(got, np.tanh(x) * y, rtol=1e-5, atol=1e-6)
    assert len(f._cache) == 3


def test_python_scalars_and_example_args():
    f = lp.compile(lambda x, a: x * a + 1.0, example_args=(f32(4), 2.0))
    assert "f32[4]" in f.ir()
    np.testing.assert_allclose(f(np.ones(4, np.float32), 2.0), np.full(4, 3.0))


def test_wrong_arity_names_the_argument():
    f = lp.compile(lambda x, w: x @ w)
    with pytest.raises(TypeError, match="w"):
        f(f32(2, 3))


def test_shape_error_names_the_op_and_the_user_line():
    f = lp.compile(lambda x, w: x @ w)
    with pytest.raises(ValueError, match=r"matmul.*test_compile.py:\d+"):
        f(f32(2, 3), f32(4, 5))


def test_ir_llvm_ir_and_stats():
    f = lp.compile(lambda x, b: lp.softmax(x + b), example_args=(f32(6, 10), f32(10)))
    assert "= exp" in f.ir() and "graph @" in f.ir()
    assert "define i32 @\"lepton_main\"(" in f.llvm_ir()
    s = f.stats()
    assert s["kernels"] == 1 and s["fused_groups"]
    assert set(s["compile_seconds"]) >= {"trace", "passes", "lower", "llvm", "total"}
    assert all({"name", "seconds", "change"} <= set(p) for p in s["passes"])
    with pytest.raises(RuntimeError, match="not been compiled"):
        lp.compile(lambda x: x).ir()


def test_check_mode_passes_and_names_a_differing_node():
    f = lp.compile(lambda x: lp.exp(x) * 2.0 + lp.sin(x), check=True)
    x = f32(9)
    np.testing.assert_allclose(f(x), np.exp(x) * 2 + np.sin(x), rtol=1e-5)
    res = f._last
    wrong = [o + 1.0 for o in res.executable(x)]
    with pytest.raises(CheckError, match="output 0"):
        _check_against_interpreter(res, [x], wrong)


def test_dump_writes_ir_per_pass_and_llvm(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_DUMP", str(tmp_path))
    lp.compile(lambda x: lp.exp(x) + 1.0, example_args=(f32(3),))
    names = sorted(os.listdir(tmp_path))
    assert any(n.endswith("00-input.ir") for n in names)
    assert any(n.endswith(".llvm.ll") for n in names)
    assert any(n.endswith(".llvm-opt.ll") for n in names)
    text = (tmp_path / [n for n in names if n.endswith("00-input.ir")][0]).read_text()
    assert "= exp" in text


def test_identity_and_constant_outputs():
    f = lp.compile(lambda x: (x, lp.reshape(x, (4,)), np.arange(3.0).astype(np.float32)))
    x = f32(2, 2)
    a, b, c = f(x)
    np.testing.assert_array_equal(a, x)
    np.testing.assert_array_equal(b, x.reshape(4))
    np.testing.assert_array_equal(c, np.arange(3.0))
    assert a is not x


def test_tracing_data_dependent_control_flow_is_a_clear_error():
    def f(x):
        return x if x.sum() > 0 else -x
    with pytest.raises(TypeError, match="control flow"):
        lp.compile(f)(f32(3))


def test_profile_gives_each_kernel_a_time():
    f = lp.compile(lambda x, w: lp.softmax(lp.relu(x @ w)) * 2.0)
    x, w = f32(64, 32), f32(32, 48)
    prof = f.profile(x, w, repeat=20)
    assert [k.name for k in prof] == f.stats()["kernel_ops"]
    assert all(k.us >= 0 for k in prof) and abs(sum(k.share for k in prof) - 1) < 1e-6
    assert max(prof, key=lambda k: k.us).us > 0
