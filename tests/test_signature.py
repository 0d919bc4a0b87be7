"""Compiled signatures as jax.jit's: static_argnums/static_argnames, keyword arguments, Python
scalars traced as weak 0-d tensors, bool/str/None static; errors name the argument."""
import numpy as np
import pytest

import lepton as lp

rng = np.random.default_rng(3)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def scaled(x, n, mode="add", scale=1.0):
    return x * n * scale if mode == "add" else x - n


def test_static_argnames_keywords_and_defaults():
    f = lp.compile(scaled, static_argnames="mode")
    x = f32(4)
    np.testing.assert_allclose(f(x, 2, mode="sub"), x - 2, rtol=1e-6)
    np.testing.assert_allclose(f(x, 2, scale=3.0), x * 6, rtol=1e-6)
    np.testing.assert_allclose(f(x, 2), x * 2, rtol=1e-6)
    np.testing.assert_allclose(f(x, 5, scale=0.5), x * 2.5, rtol=1e-6)  # same signature
    assert len(f._cache) == 3


def test_static_argnums_as_jax_also_by_keyword():
    calls = []

    def g(x, k):
        calls.append(k)
        return x[:k]

    f = lp.compile(g, static_argnums=1)
    x = f32(6)
    np.testing.assert_allclose(f(x, 2), x[:2])
    np.testing.assert_allclose(f(x, k=4), x[:4])
    np.testing.assert_allclose(f(x, 2), x[:2])
    assert calls == [2, 4]
    with pytest.raises(TypeError, match="k.*hashable"):
        f(x, [1])


def test_bool_str_and_none_arguments_are_static():
    def g(x, flag, name, extra):
        assert isinstance(flag, bool) and isinstance(name, str) and extra is None
        return x + 1 if flag else x * 2

    f = lp.compile(g)
    x = f32(3)
    np.testing.assert_allclose(f(x, True, "a", None), x + 1)
    np.testing.assert_allclose(f(x, False, "a", None), x * 2)
    assert len(f._cache) == 2


def test_python_scalars_are_traced_weakly_typed():
    f = lp.compile(lambda x, a, n: x * a + n)
    x = f32(3)
    y = f(x, 0.5, 3)
    assert y.dtype == np.float32                     # an int or float does not widen f32
    np.testing.assert_allclose(y, x * 0.5 + 3, rtol=1e-6)
    np.testing.assert_allclose(f(x, 2.5, 7), x * 2.5 + 7, rtol=1e-6)
    assert len(f._cache) == 1                        # a new value is not a new signature
    x64 = x.astype(np.float64)
    assert f(x64, 0.5, 3).dtype == np.float64
    assert f(np.arange(3, dtype=np.int32), 2, 1).dtype == np.int32


def test_wrong_shape_names_the_arguments_involved_and_the_line():
    def model(x, params):
        h = x @ params["w1"]  # the failing line
        return h @ params["w2"]

    f = lp.compile(model)
    ok = {"w1": f32(4, 8), "w2": f32(8, 2)}
    f(f32(3, 4), ok)
    bad = {"w1": f32(4, 8), "w2": f32(7, 2)}
    with pytest.raises(ValueError) as e:
        f(f32(3, 4), bad)
    msg = str(e.value)
    assert "matmul" in msg and "test_signature.py:" in msg
    assert "params['w2']: f32[7,2]" in msg and "x: f32[3,4]" in msg
    involved = msg.split("arguments involved:")[1].splitlines()[0]
    assert "params['w2']" in involved and "params['w1']" in involved


def test_a_captured_array_is_named_when_it_breaks_a_trace():
    w = f32(3, 3)
    f = lp.compile(lambda x: x @ w)
    with pytest.raises(ValueError, match=r"captured w: f32\[3,3\]"):
        f(f32(2, 5))


def test_unsupported_dtype_and_arity_name_the_argument():
    f = lp.compile(lambda x, w: x * w)
    with pytest.raises(TypeError, match=r"argument w: dtype complex64"):
        f(f32(2), np.ones(2, np.complex64))
    with pytest.raises(TypeError, match="w"):
        f(f32(2))
    with pytest.raises(ValueError, match=r"argument x\['a'\]: the Python int"):
        lp.compile(lambda x: x["a"] + 1)({"a": 2 ** 70})
