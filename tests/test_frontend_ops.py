"""Every public op traced on awkward shapes, run by the reference interpreter and compared with
NumPy in float64; each graph also verifies and parses back to itself (see frontend_check)."""
import math

import numpy as np
import pytest

import lepton.frontends as lp
from frontend_check import check, ops_of, rand, run
from lepton.ir import OpError

SHAPES = [(), (1,), (7, 13), (2, 1, 3)]
_erf = np.vectorize(math.erf)

UNARY = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x),
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "erf": _erf, "sin": np.sin,
    "cos": np.cos, "reciprocal": lambda x: 1 / x, "negative": np.negative, "abs": np.abs,
    "square": np.square, "relu": lambda x: np.maximum(x, 0),
    "gelu": lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2))),
}
POSITIVE = {"log", "sqrt", "rsqrt"}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("shape", SHAPES)
def test_unary(name, shape):
    x = rand(*shape, low=0.1 if name in POSITIVE else -3.0, high=3.0)
    x = np.where(np.abs(x) < 0.05, 0.5, x).astype(np.float32)   # keep reciprocal tame
    check(getattr(lp, name), x, ref=UNARY[name])


@pytest.mark.parametrize("name", ["exp", "sqrt", "tanh", "reciprocal", "sigmoid"])
def test_unary_float_only_ops_turn_ints_into_f32(name):
    x = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    out, g = check(getattr(lp, name), x, ref=UNARY[name], dtype=np.float32)
    assert "cast" in ops_of(g)


@pytest.mark.parametrize("name", ["negative", "abs", "square", "relu"])
def test_unary_keeps_int_dtype(name):
    x = np.arange(-3, 3, dtype=np.int64).reshape(3, 2)
    check(getattr(lp, name), x, ref=UNARY[name], dtype=np.int64)


def test_f64_stays_f64():
    x = rand(4, 5, dtype=np.float64)
    check(lp.tanh, x, ref=np.tanh, dtype=np.float64, rtol=1e-12)


def test_gelu_tanh_form():
    x = rand(3, 50, low=-6, high=6)
    ref = lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    check(lambda x: lp.gelu(x, approximate=True), x, ref=ref)


BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "power": np.power, "maximum": np.maximum, "minimum": np.minimum,
}
PAIRS = [((7, 13), (13,)), ((13,), (7, 13)), ((7, 1), (1, 13)), ((), (3,)), ((3,), ()),
         ((1,), (5, 1)), ((2, 1, 3), (4, 1))]


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", PAIRS)
def test_binary_broadcasting(name, sa, sb):
    a = rand(*sa, low=0.5 if name == "power" else -2, high=2)
    b = rand(*sb, seed=1, low=0.5, high=2)
    check(getattr(lp, name), a, b, ref=BINARY[name], rtol=1e-5)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "maximum", "minimum"])
def test_binary_ints(name):
    a, b = rand(7, 13, dtype=np.int32), rand(13, dtype=np.int32, seed=3)
    check(getattr(lp, name), a, b, ref=BINARY[name], dtype=np.int32)


def test_divide_ints_gives_f32():
    a, b = np.arange(6).reshape(2, 3), np.array([1, 2, 4])
    check(lp.divide, a, b, ref=np.divide, dtype=np.float32)


def test_power_special_cases():
    x = rand(4, 3, low=0.5)
    _, g = check(lambda x: lp.power(x, 2), x, ref=np.square)
    assert ops_of(g) == ["square"]
    check(lambda x: x ** 0.5, x, ref=np.sqrt)
    check(lambda x: 2.0 ** x, x, ref=lambda x: 2.0 ** x)
    i = np.arange(-3, 3, dtype=np.int32)
    for n in range(6):
        check(lambda x: x ** n, i, ref=lambda x: x ** n, dtype=np.int32)
    with pytest.raises(ValueError, match="negative integer powers"):
        lp.trace(lambda x: x ** -1, i)
    with pytest.raises(TypeError, match="cast to float"):
        lp.trace(lambda x: x ** x, i)


def test_where_and_clip():
    c, a, b = rand(7, 1, dtype=np.bool_), rand(13), rand(7, 13, seed=2)
    check(lp.where, c, a, b, ref=np.where, dtype=np.float32)
    # a non-bool condition means != 0, scalars are weak
    x = rand(3, 4, dtype=np.int64)
    check(lambda x: lp.where(x, x, 0.5), x, ref=lambda x: np.where(x != 0, x, 0.5),
          dtype=np.float32)
    y = rand(7, 13)
    check(lambda y: lp.clip(y, -0.5, 1.0), y, ref=lambda y: np.clip(y, -0.5, 1.0))
    check(lambda y: lp.clip(y, None, 0.25), y, ref=lambda y: np.minimum(y, 0.25))
    check(lambda y: y.clip(min=0), y, ref=lambda y: np.maximum(y, 0))
    check(lambda y, lo: lp.clip(y, lo, 1), y, np.full(13, -0.1, np.float32),
          ref=lambda y, lo: np.clip(y, lo, 1))


# -- reductions --------------------------------------------------------------------------------
AXES = [None, 0, -1, (0, 2), (-1, 0), ()]
REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod,
          "var": np.var}


@pytest.mark.parametrize("name", sorted(REDUCE))
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(name, axis, keepdims):
    x = rand(3, 1, 4, low=0.5 if name == "prod" else -2)
    out, _ = check(lambda x: getattr(lp, name)(x, axis, keepdims=keepdims), x,
                   ref=lambda x: REDUCE[name](x, axis=axis, keepdims=keepdims))
    if axis is None and not keepdims:
        assert out.shape == ()


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var"])
def test_tensor_reduction_methods(name):
    x = rand(7, 13)
    check(lambda x: getattr(x, name)(axis=-2, keepdims=True), x,
          ref=lambda x: getattr(x, name)(axis=-2, keepdims=True))
    check(lambda x: getattr(x, name)(), x, ref=lambda x: getattr(x, name)())


def test_reduction_dtypes_follow_numpy():
    i32, b = rand(4, 5, dtype=np.int32), rand(4, 5, dtype=np.bool_)
    check(lambda x: lp.sum(x, 1), i32, ref=lambda x: np.sum(x, 1), dtype=np.int64)
    check(lambda x: lp.prod(x, 0), i32, ref=lambda x: np.prod(x, 0), dtype=np.int64)
    check(lambda x: x.sum(), b, ref=np.sum, dtype=np.int64)
    check(lambda x: lp.max(x, 1), i32, ref=lambda x: np.max(x, 1), dtype=np.int32)
    check(lambda x: lp.mean(x, 0), i32, ref=lambda x: np.mean(x, 0), dtype=np.float32)
    check(lambda x: lp.var(x), i32, ref=np.var, dtype=np.float32)
    check(lambda x: lp.sum(x, dtype=lp.float64), i32, ref=np.sum, dtype=np.float64)


def test_var_ddof_and_std():
    x = rand(6, 5)
    check(lambda x: lp.var(x, 0, ddof=1), x, ref=lambda x: np.var(x, 0, ddof=1))
    check(lambda x: x.std(axis=1, keepdims=True), x, ref=lambda x: x.std(axis=1, keepdims=True))


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax(axis, keepdims):
    x = rand(7, 13)
    x[3, 4] = x[5, 6] = 9.0   # ties: the first wins
    out, _ = check(lambda x: lp.argmax(x, axis, keepdims=keepdims), x,
                   ref=lambda x: np.argmax(x, axis=axis, keepdims=keepdims), dtype=np.int64)
    check(lambda x: x.argmax(axis), rand(3, 1, dtype=np.int32),
          ref=lambda x: np.argmax(x, axis), dtype=np.int64)


def _lse(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


@pytest.mark.parametrize("axis", [None, 1, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp(axis, keepdims):
    x = rand(2, 3, 4) * 300  # exp would overflow without the shift
    check(lambda x: lp.logsumexp(x, axis, keepdims=keepdims), x,
          ref=lambda x: _lse(x, axis, keepdims))


def test_logsumexp_of_a_minus_inf_row_is_minus_inf():
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]], np.float32)
    out, _ = run(lambda x: lp.logsumexp(x, axis=1), x)
    assert out[0] == -np.inf and np.isclose(out[1], np.logaddexp(0, 1))


def test_reduction_errors_name_the_op_and_line():
    x = rand(2, 3)
    with pytest.raises(OpError, match=r"axis 2 is out of bounds.*'sum' at test_frontend_ops.py:"):
        lp.trace(lambda x: lp.sum(x, 2), x)
    with pytest.raises(ValueError, match="duplicate"):
        lp.trace(lambda x: lp.sum(x, (0, -2)), x)
    with pytest.raises(OpError, match="'max'"):
        lp.trace(lambda x: lp.max(x, 0), np.zeros((0, 3), np.float32))


# -- linear algebra ----------------------------------------------------------------------------
MATMUL = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
          ((4,), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 1), (1, 1)), ((2, 3, 4), (4,))]


@pytest.mark.parametrize("sa,sb", MATMUL)
def test_matmul(sa, sb):
    a, b = rand(*sa), rand(*sb, seed=5)
    check(lp.matmul, a, b, ref=np.matmul, rtol=1e-5)
    check(lambda a, b: a @ b, a, b, ref=np.matmul, rtol=1e-5)


DOT = MATMUL + [((), (3,)), ((3, 4), ()), ((2, 3, 4), (5, 4, 6)), ((3, 4), (2, 4, 5))]


@pytest.mark.parametrize("sa,sb", DOT)
def test_dot(sa, sb):
    a, b = rand(*sa), rand(*sb, seed=5)
    check(lp.dot, a, b, ref=np.dot, rtol=1e-5)


def test_matmul_with_numpy_operands_and_promotion():
    x = rand(3, 4)
    w = rand(4, 2, dtype=np.float64)
    check(lambda x: x @ w, x, ref=lambda x: x @ w, dtype=np.float64, rtol=1e-12)
    check(lambda x: w.T @ x.T, x, ref=lambda x: w.T @ x.T, dtype=np.float64, rtol=1e-12)
    i = rand(4, 2, dtype=np.int32)
    check(lambda x, i: x @ i, x, i, ref=lambda x, i: x @ i, dtype=np.float32)


def test_matmul_errors():
    with pytest.raises(OpError, match=r"contracted dims.*'matmul' at test_frontend_ops.py:\d+"):
        lp.trace(lambda a, b: a @ b, rand(3, 4), rand(5, 2))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        lp.trace(lp.matmul, np.float32(2), rand(3))


# -- creation ----------------------------------------------------------------------------------
def test_zeros_ones_full_are_broadcast_scalars():
    x = rand(2, 3)
    out, g = run(lambda x: x + lp.zeros((2, 3)), x)
    np.testing.assert_array_equal(out, x)
    const = next(v for v in g.nodes if v.op == "constant")
    assert const.type.shape == () and "broadcast_to" in ops_of(g)
    out, _ = run(lambda x: (lp.ones(3, lp.int32), lp.full((2, 2), 7), lp.full((2,), 0.5),
                            lp.zeros(()), lp.full((2, 3), x[0, 0])), x)
    assert out[0].dtype == np.int32 and out[0].tolist() == [1, 1, 1]
    assert out[1].dtype == np.int64 and (out[1] == 7).all()
    assert out[2].dtype == np.float32 and out[3].shape == () and out[3].dtype == np.float32
    np.testing.assert_array_equal(out[4], np.full((2, 3), x[0, 0]))


@pytest.mark.parametrize("args,kw", [((5,), {}), ((2, 9, 3), {}), ((0, 1, 0.25), {}),
                                     ((5, 0, -2), {}), ((3,), {"dtype": lp.float64}),
                                     ((1.5,), {"dtype": np.int32})])
def test_arange(args, kw):
    out, _ = run(lambda: lp.arange(*args, **kw))
    ints = all(isinstance(a, int) for a in args)
    np_dtype = (kw.get("dtype").np if hasattr(kw.get("dtype"), "np") else kw.get("dtype")) or \
        (np.int64 if ints else np.float32)
    expected = np.arange(*args, dtype=np_dtype)
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected)


def test_constant_dtypes():
    out, _ = run(lambda: (lp.constant([1.0, 2.0]), lp.constant(np.arange(3.0)),
                          lp.constant([1, 2]), lp.constant(3, dtype=lp.float64),
                          lp.constant(np.ones(2, np.float32), "f64")))
    assert [o.dtype for o in out] == [np.float32, np.float64, np.int64, np.float64, np.float64]


def test_ops_need_a_trace():
    with pytest.raises(RuntimeError, match="inside lp.trace"):
        lp.zeros((2, 2))
