"""The traced Tensor: operators (and reflected forms with NumPy operands), metadata, dtype
promotion with weak scalars, untraceable conversions, and source locations in the IR."""
import operator
import sys

import numpy as np
import pytest

import lepton.frontends as lp
from frontend_check import check, ops_of, rand, run
from lepton.frontends.tensor import Tensor
from lepton.ir import OpError

OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
             "**": operator.pow, "<": operator.lt, "<=": operator.le, ">": operator.gt,
             ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


@pytest.mark.parametrize("sym", sorted(OPERATORS))
def test_operators_both_ways(sym):
    f = OPERATORS[sym]
    a, b = rand(7, 1, low=0.5), rand(13, seed=2, low=0.5)
    dt = np.bool_ if sym in "< <= > >= == !=".split() else np.float32
    check(lambda a, b: f(a, b), a, b, ref=f, dtype=dt)
    # NumPy array on either side: the Tensor handles it (__array_ufunc__ = None)
    check(lambda a: f(a, b), a, ref=lambda a: f(a, b.astype(np.float64)), dtype=dt)
    check(lambda b: f(a, b), b, ref=lambda b: f(a.astype(np.float64), b), dtype=dt)
    # Python and NumPy scalars on either side
    check(lambda a: f(a, 1.5), a, ref=lambda a: f(a, 1.5), dtype=dt)
    check(lambda a: f(np.float32(1.5), a), a, ref=lambda a: f(1.5, a), dtype=dt)


def test_unary_operators_and_matmul():
    a = rand(3, 4)
    check(lambda a: -a, a, ref=np.negative)
    check(lambda a: +a, a, ref=lambda a: a)
    check(lambda a: abs(a), a, ref=np.abs)
    w = rand(4, 2, seed=3)
    check(lambda w: a @ w, w, ref=lambda w: a.astype(np.float64) @ w)


def test_metadata():
    def f(x):
        assert isinstance(x, Tensor)
        assert x.shape == (2, 3, 4) and x.ndim == 3 and x.size == 24 and len(x) == 2
        assert x.dtype == lp.float32 and x.astype(np.int32).dtype == lp.int32
        assert x.T.shape == (4, 3, 2)
        assert [t.shape for t in x] == [(3, 4), (3, 4)]
        assert "f32[2,3,4]" in repr(x)
        return x.astype("f64")
    out, g = run(f, rand(2, 3, 4))
    assert out.dtype == np.float64 and ops_of(g)[-1] == "cast"


# -- dtype promotion ---------------------------------------------------------------------------
F32, F64, I32, I64, B = map(np.dtype, (np.float32, np.float64, np.int32, np.int64, np.bool_))
PROMOTION = [
    (F32, 2.0, F32), (F32, 2, F32), (F64, 2.0, F64), (I32, 2, I32), (I32, 2.5, F32),
    (I64, 2.5, F32), (B, 1, I64), (B, True, B), (F32, np.float64(2.0), F32),
    (I32, np.int64(3), I32), (F32, np.ones(3, F64), F64), (F32, np.ones(3, I64), F32),
    (I32, np.ones(3, I64), I64), (I32, np.ones(3, F32), F32), (F32, [1.0, 2.0, 3.0], F32),
    (I32, [1, 2, 3], I64), (F64, np.ones(3, F32), F64),
]


@pytest.mark.parametrize("xdt,other,expected", PROMOTION)
def test_promotion_with_weak_scalars(xdt, other, expected):
    x = (np.arange(3) % 2).astype(xdt)
    out, g = run(lambda x: (x + other, other * x), x)
    assert out[0].dtype == expected and out[1].dtype == expected
    np.testing.assert_array_equal(out[0], x.astype(expected) + np.asarray(other).astype(expected))
    # the IR sees equal dtypes: any widening is an explicit cast node
    for v in g.nodes:
        if v.op in ("add", "mul"):
            assert len({i.type.dtype for i in v.inputs}) == 1


def test_tensor_tensor_promotion_inserts_casts():
    out, g = run(lambda a, b: a * b, np.ones(3, np.int32), np.ones(3, np.float64))
    assert out.dtype == np.float64 and ops_of(g) == ["cast", "mul"]
    out, g = run(lambda a, b: a - b, np.ones(3, np.int64), np.ones(3, np.float32))
    assert out.dtype == np.float32


def test_int_scalar_that_does_not_fit_raises():
    with pytest.raises(OverflowError):
        lp.trace(lambda x: x + 2 ** 40, np.ones(2, np.int32))


def test_bool_arithmetic_rules():
    b = np.array([True, False])
    with pytest.raises(TypeError, match="bool"):
        lp.trace(lambda x: -x, b)
    with pytest.raises(TypeError, match="bool"):
        lp.trace(lambda x: x - x, b)
    check(lambda x: x + x, b, ref=lambda x: x + x, dtype=np.bool_)


def test_logical_operators_on_masks():
    a, b = rand(7, 1, dtype=np.bool_), rand(13, dtype=np.bool_, seed=1)
    for f in (lambda a, b: a & b, lambda a, b: a | b, lambda a, b: a ^ b,
              lambda a, b: ~a & b, lambda a, b: a | True):
        check(f, a, b, ref=f, dtype=np.bool_)
    x = rand(3, 4)
    check(lambda x: (x > 0) & (x < 1), x, ref=lambda x: (x > 0) & (x < 1), dtype=np.bool_)
    with pytest.raises(TypeError, match="needs integer or bool tensors"):
        lp.trace(lambda x: x & x, np.ones(2, np.float32))


# -- what cannot be traced ---------------------------------------------------------------------
@pytest.mark.parametrize("what", [bool, np.asarray, int, float, lambda t: [1, 2][t],
                                  lambda t: 1 if t > 0 else 0, len, lambda t: list(iter(t))])
def test_data_dependent_python_raises_type_error(what):
    with pytest.raises(TypeError, match="cannot be traced|0-d"):
        lp.trace(lambda x: what(x.sum()), rand(3))


def test_numpy_ufunc_on_a_tensor_is_refused():
    with pytest.raises(TypeError, match="does not support ufuncs"):
        lp.trace(lambda x: np.exp(x), rand(3))


def test_leaked_tracer_is_refused():
    leaked = []
    lp.trace(lambda x: leaked.append(x) or x, rand(3))
    with pytest.raises(RuntimeError, match="leaked"):
        leaked[0] + 1
    with pytest.raises(RuntimeError, match="another trace"):
        lp.trace(lambda y: y + leaked[0], rand(3))


def test_unsupported_operands_fall_back_to_python():
    with pytest.raises(TypeError):
        lp.trace(lambda x: x + "a", rand(3))
    out, _ = run(lambda x: (x == None, x != None), rand(3))  # noqa: E711 - identity semantics
    assert [o.dtype for o in out] == [np.bool_, np.bool_]   # Python bools became constants
    assert [o.item() for o in out] == [False, True]


# -- source locations --------------------------------------------------------------------------
def test_every_op_records_the_user_line():
    lines = []

    def f(x):
        lines.append(sys._getframe().f_lineno + 1)
        y = lp.softmax(x * 2.0, axis=0)
        return y[1:].sum()
    _, g = run(f, rand(4, 3))
    here = __file__.rsplit("/", 1)[-1]
    locs = {v.loc for v in g.nodes if v.op != "input"}
    assert locs == {f"{here}:{lines[0]}", f"{here}:{lines[0] + 1}"}
    assert f"# {here}:{lines[0]}" in str(g)


def test_ir_errors_name_op_and_line():
    line = sys._getframe().f_lineno + 2
    with pytest.raises(OpError) as e:
        lp.trace(lambda a, b: a + b, rand(2, 3), rand(4))
    assert e.value.op == "add" and e.value.loc == f"test_frontend_tensor.py:{line}"
    assert "do not broadcast" in str(e.value) and f"test_frontend_tensor.py:{line}" in str(e.value)
