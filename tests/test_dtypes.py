"""The small dtypes in the core: int8/16, uint8/16/32/64, float16 and bfloat16 through every op,
compiled and compared with the reference interpreter and with NumPy (integers wrap around as
NumPy's do; 16-bit floats are computed in float32 and rounded once per op, lepton/ir/halfs.py).
"""
import numpy as np
import pytest

import lepton as lp
from lepton.compile import CompileResult
from lepton.ir import Graph, OpError, TensorType, interpret
from lepton.ir.types import (bfloat16, bool_, dtype, float16, float32, float64, int8, int16,
                             int32, int64, promote, uint8, uint16, uint32, uint64)

ml_dtypes = pytest.importorskip("ml_dtypes")   # bfloat16's NumPy type (optional for Lepton)

INTS = [int8, int16, uint8, uint16, uint32, uint64]
HALFS = [float16, bfloat16]
NEW = INTS + HALFS
ALL = NEW + [float32, float64, int32, int64, bool_]
rng = np.random.default_rng(7)


def sample(dt, shape, small=False):
    if dt == bool_:
        return rng.random(shape) < 0.5
    if dt.is_int:
        info = np.iinfo(dt.np)
        lo, hi = (0, 9) if small and dt.unsigned else (-9, 9) if small else (info.min, info.max)
        return rng.integers(lo, hi, shape, dtype=dt.np, endpoint=True)
    return (rng.standard_normal(shape) * (2 if small else 8)).astype(dt.np)


def compiled(op, types, attrs, args):
    g = Graph(op)
    g.set_outputs([g.add(op, [g.input(t) for t in types], **attrs)])
    (got,) = CompileResult(g, None, None).executable(*args)
    (want,) = interpret(g, *args)
    assert got.dtype == want.dtype and got.shape == want.shape
    return got, want


def same(got, want):
    """Equal, NaN where NaN (16-bit floats compared by value)."""
    g, w = np.asarray(got), np.asarray(want)
    if g.dtype.kind in "fV":
        g, w = g.astype(np.float64), w.astype(np.float64)
        assert np.array_equal(np.isnan(g), np.isnan(w))
        g, w = np.nan_to_num(g), np.nan_to_num(w)
    np.testing.assert_array_equal(g, w)


def ulps(dt):
    """A 16-bit float's relative spacing: 2**-10 (float16), 2**-7 (bfloat16)."""
    return 2.0 ** -10 if dt == float16 else 2.0 ** -7


# -- types -----------------------------------------------------------------------------------
def test_dtype_names_and_numpy_types():
    for d in NEW:
        assert dtype(d.name) is d and dtype(d.np) is d and TensorType.parse(f"{d.name}[2]").dtype is d
    assert dtype("bfloat16") is bfloat16 and dtype(ml_dtypes.bfloat16) is bfloat16
    assert lp.uint8 is uint8 and lp.bfloat16 is bfloat16 and lp.float16 is float16
    assert [d.itemsize for d in NEW] == [1, 2, 1, 2, 4, 8, 2, 2]
    assert uint32.unsigned and not int32.unsigned and float16.is_half and not float32.is_half
    with pytest.raises(TypeError, match="unsupported dtype"):
        dtype(np.complex64)


@pytest.mark.parametrize("a", [d for d in ALL if d != bfloat16], ids=str)
def test_promotion_is_numpys_but_never_float64_from_narrower_types(a):
    for b in ALL:
        if b == bfloat16:
            continue
        want = np.promote_types(a.np, b.np)
        got = promote(a, b)
        if want == np.float64 and float64 not in (a, b):
            assert got == float32, (a, b)     # JAX's and PyTorch's choice, as API.md says
        else:
            assert got.np == want, (a, b)


def test_bfloat16_promotes_as_float16_does_and_with_it_to_float32():
    assert promote(bfloat16, float16) == float32
    assert promote(bfloat16, int8) == promote(bfloat16, uint8) == promote(bfloat16, bool_) == bfloat16
    assert promote(bfloat16, int16) == promote(bfloat16, float32) == float32
    assert promote(bfloat16, float64) == float64


# -- every op, compiled vs interpreter vs NumPy ----------------------------------------------
ELEMENTWISE_INT = ["neg", "abs", "square", "relu"]
BINARY_INT = ["add", "sub", "mul", "maximum", "minimum"]
COMPARE = ["lt", "le", "gt", "ge", "eq", "ne"]
NUMPY = {"neg": np.negative, "abs": np.abs, "square": np.square,
         "relu": lambda x: np.maximum(x, np.zeros((), x.dtype)), "add": np.add,
         "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum,
         "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
         "eq": np.equal, "ne": np.not_equal, "div": np.divide, "exp": np.exp, "log": np.log,
         "sqrt": np.sqrt, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
         "reciprocal": np.reciprocal}


@pytest.mark.parametrize("dt", INTS, ids=str)
@pytest.mark.parametrize("op", ELEMENTWISE_INT + BINARY_INT + COMPARE)
def test_integer_ops_wrap_around_as_numpy(dt, op):
    n = 1 if op in ELEMENTWISE_INT else 2
    shapes = [(7, 13), (13,)][:n]
    args = [sample(dt, s) for s in shapes]
    got, want = compiled(op, [TensorType(dt, s) for s in shapes], {}, args)
    same(got, want)
    with np.errstate(all="ignore"):
        same(got, NUMPY[op](*args))


@pytest.mark.parametrize("dt", HALFS, ids=str)
@pytest.mark.parametrize("op", ["neg", "abs", "square", "relu", "add", "sub", "mul", "div",
                                "maximum", "minimum", "sqrt", "reciprocal"] + COMPARE)
def test_half_arithmetic_is_float32_rounded_once(dt, op):
    """+ - * / sqrt of 16-bit floats computed in float32 and rounded once are correctly
    rounded, so compiled code, interpreter and NumPy (float64, rounded) agree to the bit."""
    n = 2 if op in BINARY_INT + COMPARE + ["div"] else 1
    shapes = [(7, 13), (13,)][:n]
    args = [sample(dt, s) for s in shapes]
    if op == "sqrt":
        args[0] = np.abs(args[0])
    got, want = compiled(op, [TensorType(dt, s) for s in shapes], {}, args)
    same(got, want)
    with np.errstate(all="ignore"):
        ref = np.asarray(NUMPY[op](*[a.astype(np.float64) for a in args]))
    same(got, ref if ref.dtype == np.bool_ else ref.astype(dt.np))


@pytest.mark.parametrize("dt", HALFS, ids=str)
@pytest.mark.parametrize("op", ["exp", "log", "tanh", "sin", "cos", "sigmoid", "erf"])
def test_half_math_within_an_ulp(dt, op):
    x = sample(dt, (7, 13), small=True)
    if op == "log":
        x = np.abs(x) + np.ones((), dt.np)
    got, want = compiled(op, [TensorType(dt, x.shape)], {}, [x])
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_allclose(g, w, rtol=ulps(dt), atol=ulps(dt) * 1e-2)


REDUCE = [("sum", {"axes": (1,), "keepdims": False}), ("prod", {"axes": (0,), "keepdims": True}),
          ("max", {"axes": (0, 1), "keepdims": False}), ("min", {"axes": (1,), "keepdims": True}),
          ("argmax", {"axis": 1, "keepdims": False})]


@pytest.mark.parametrize("dt", NEW, ids=str)
@pytest.mark.parametrize("op,attrs", REDUCE, ids=[r[0] for r in REDUCE])
def test_reductions(dt, op, attrs):
    x = sample(dt, (5, 9), small=op == "prod")
    got, want = compiled(op, [TensorType(dt, x.shape)], attrs, [x])
    if dt.is_half and op in ("sum", "prod"):   # float32 accumulators, summed in another order
        ref = getattr(np, op)(x.astype(np.float64), axis=attrs["axes"],
                              keepdims=attrs["keepdims"])
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=ulps(dt), atol=1e-3)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=ulps(dt))
        return
    same(got, want)
    if op == "argmax":
        same(got, np.argmax(x.astype(np.float64) if dt.is_half else x, axis=1))
    else:
        with np.errstate(all="ignore"):
            same(got, getattr(np, op)(x, axis=attrs["axes"], keepdims=attrs["keepdims"],
                                      **({"dtype": dt.np} if op in ("sum", "prod") else {})))


def test_half_sums_accumulate_in_float32():
    """4096 ones: a float16 accumulator would stop at 2048 (2049 rounds back to 2048)."""
    for dt in HALFS:
        x = np.ones(4096, dt.np)
        f = lp.compile(lambda x: lp.sum(x))
        assert f(x).dtype == dt.np and float(f(x)) == 4096.0


@pytest.mark.parametrize("dt", NEW, ids=str)
def test_matmul(dt):
    a, b = sample(dt, (6, 7), small=True), sample(dt, (7, 5), small=True)
    got, want = compiled("matmul", [TensorType(dt, a.shape), TensorType(dt, b.shape)], {},
                         [a, b])
    if dt.is_half:
        ref = a.astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(got.astype(np.float64), ref, rtol=2 * ulps(dt), atol=0.02)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=ulps(dt), atol=1e-3)
    else:
        same(got, want)
        same(got, a @ b)     # wraps around as NumPy's does


def test_integer_matmul_wraps_around():
    a = np.full((2, 40), 100, np.int8)
    b = np.full((40, 3), 3, np.int8)
    f = lp.compile(lambda a, b: a @ b)
    same(f(a, b), a @ b)
    assert f(a, b).dtype == np.int8


MOVES = [("transpose", [(3, 4, 5)], {"perm": (2, 0, 1)}),
         ("slice", [(7, 9)], {"starts": (6, 1), "stops": (-1, 8), "steps": (-2, 3)}),
         ("broadcast_to", [(3, 1)], {"shape": (2, 3, 4)}),
         ("concatenate", [(2, 3), (2, 4)], {"axis": 1}),
         ("pad", [(3, 4)], {"lo": (1, 0), "hi": (2, 3), "interior": (0, 2)}),
         ("reshape", [(3, 4)], {"shape": (2, 6)})]


@pytest.mark.parametrize("dt", NEW, ids=str)
@pytest.mark.parametrize("op,shapes,attrs", MOVES, ids=[m[0] for m in MOVES])
def test_movement_copies_bits(dt, op, shapes, attrs):
    args = [sample(dt, s) for s in shapes]
    got, want = compiled(op, [TensorType(dt, s) for s in shapes], attrs, args)
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("dt", NEW, ids=str)
def test_take_and_scatter_add(dt):
    x = sample(dt, (7, 5), small=True)
    got, want = compiled("take", [TensorType(dt, x.shape), TensorType(int64, (4,))], {"axis": 0},
                         [x, np.array([6, 0, -1, 2])])
    assert got.tobytes() == want.tobytes() == x[[6, 0, -1, 2]].tobytes()
    u = sample(dt, (4, 5), small=True)
    got, want = compiled("scatter_add", [TensorType(dt, u.shape), TensorType(int64, (4,))],
                         {"axis": 0, "size": 3}, [u, np.array([0, 2, 0, 1])])
    same(got, want)


@pytest.mark.parametrize("idx_dt", [uint8, uint16, uint32, uint64, int8, int16], ids=str)
def test_unsigned_and_small_indices(idx_dt):
    x = np.arange(200, dtype=np.float32)
    idx = np.array([0, 5, 199 if idx_dt.unsigned else -1, 100], idx_dt.np)
    f = lp.compile(lambda x, i: lp.take(x, i))
    same(f(x, idx), x[idx])
    if idx_dt.unsigned:
        bad = np.array([0, 250], idx_dt.np)
        with pytest.raises(IndexError):
            f(x, bad)


@pytest.mark.parametrize("src", ALL, ids=str)
def test_casts_between_all_dtypes(src):
    """Every pair, on values every dtype holds (small integers, halves), equal to NumPy's
    astype; bool from NaN is True, as NumPy has it."""
    x = np.array([0, 1, -1, 3, -7, 100, 2.5, -0.5, 65, 127], np.float64)
    if src.is_int:
        x = np.trunc(x)
        if src.unsigned:
            x = np.abs(x)
    x = x.astype(src.np)
    for out in ALL:
        if out.is_int and src.is_float:
            xs = np.abs(x) if out.unsigned else x
        else:
            xs = x
        got, want = compiled("cast", [TensorType(src, xs.shape)], {"dtype": out}, [xs])
        same(got, want)
        with np.errstate(all="ignore"):
            same(got, xs.astype(out.np))


# -- rounding to 16-bit floats ---------------------------------------------------------------
def _cast(x, dt):
    f = lp.compile(lambda x: x.astype(dt))
    return f(x)


@pytest.mark.parametrize("dt", HALFS, ids=str)
@pytest.mark.parametrize("src", [float32, float64], ids=str)
def test_rounding_to_half_is_to_nearest_even(dt, src):
    """Random bits around every exponent, exact ties, overflow to inf, subnormals, NaN and
    signed zero: the same bits as NumPy's (ml_dtypes') conversion, and from float64 rounded
    once (no double rounding through float32)."""
    bits = rng.integers(0, 2 ** 32, 20000, dtype=np.uint64).astype(np.uint32)
    x = bits.view(np.float32).astype(src.np)
    h = np.sort(np.arange(2 ** 16, dtype=np.uint16).view(dt.np).astype(np.float64))
    h = h[np.isfinite(h)]
    ties = (h[:-1] + h[1:]) / 2            # halfway between neighbours
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 65504, 65520, 1e-8, -6e-8, 3e38,
                         -3.4e38], src.np)
    xs = [x, ties.astype(src.np), specials]
    if src == float64:   # past a tie by less than float32 resolves: away from it, rounded once
        xs.append(ties * (1 + 2.0 ** -40))
    for v in xs:
        v = np.asarray(v, src.np)
        got = _cast(v, dt)
        with np.errstate(all="ignore"):
            want = v.astype(dt.np)
        assert got.dtype == dt.np
        g, w = got.view(np.uint16), want.view(np.uint16)
        nan = np.isnan(want.astype(np.float32))
        assert np.array_equal(np.isnan(got.astype(np.float32)), nan)
        assert np.array_equal(g[~nan], w[~nan])


@pytest.mark.parametrize("dt", HALFS, ids=str)
def test_every_half_widens_exactly(dt):
    h = np.arange(2 ** 16, dtype=np.uint16).view(dt.np)
    for out in (float32, float64):
        got = _cast(h, out)
        want = h.astype(out.np)
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan], want[~nan])


# -- the frontend ----------------------------------------------------------------------------
def test_frontend_promotion_and_weak_scalars():
    def f(a, b, c):
        return a + b, a * 2, a + 0.5, c * 1.5, c + a, a / b, lp.sum(a), lp.mean(c)
    a = np.array([250, 3, 7], np.uint8)
    b = np.array([10, 2, 7], np.uint8)
    c = np.array([1.5, -2, 3], np.float16)
    out = lp.compile(f)(a, b, c)
    assert [o.dtype for o in out] == [np.uint8, np.uint8, np.float32, np.float16, np.float16,
                                      np.float32, np.uint64, np.float16]
    same(out[0], a + b)                       # 250 + 10 wraps to 4
    same(out[1], a * np.uint8(2))
    same(out[3], c * np.float16(1.5))
    same(out[4], c + a)
    assert int(out[6]) == 260


def test_unsigned_comparisons_and_division():
    a = np.array([0, 1, 2 ** 31, 2 ** 32 - 1, 7], np.uint32)
    b = np.array([2 ** 31 - 1, 0, 1, 2 ** 31, 7], np.uint32)
    f = lp.compile(lambda a, b: (a < b, a >= b, lp.maximum(a, b), lp.minimum(a, b), a / b,
                                 lp.max(a), lp.argmax(a)))
    lt, ge, mx, mn, q, m, k = f(a, b)
    same(lt, a < b)
    same(ge, a >= b)
    same(mx, np.maximum(a, b))
    same(mn, np.minimum(a, b))
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(q, (a / b).astype(np.float32), rtol=1e-6)
    assert int(m) == 2 ** 32 - 1 and int(k) == 3
    big = np.array([2 ** 64 - 1, 2 ** 63, 1], np.uint64)
    g = lp.compile(lambda x: (lp.max(x), x > np.uint64(2 ** 63 - 1), x.astype(lp.float64)))
    mx, gt, fl = g(big)
    assert int(mx) == 2 ** 64 - 1
    same(gt, big > np.uint64(2 ** 63 - 1))
    same(fl, big.astype(np.float64))


def test_small_int_overflow_wraps_as_numpy():
    x = np.array([127, -128, 100], np.int8)
    y = np.array([255, 0, 128], np.uint8)
    f = lp.compile(lambda x, y: (x + 1, -x, x * 3, lp.abs(x), y + 1, y - 1, y * 2, -y))
    with np.errstate(all="ignore"):
        want = (x + np.int8(1), -x, x * np.int8(3), np.abs(x), y + np.uint8(1), y - np.uint8(1),
                y * np.uint8(2), -y)
    for g, w in zip(f(x, y), want):
        assert g.dtype == w.dtype
        same(g, w)


def test_python_int_out_of_range_is_an_error():
    f = lp.compile(lambda x: x + 300)
    with pytest.raises(OverflowError):
        f(np.zeros(3, np.uint8))


def test_half_gradients():
    def loss(w, x):
        return lp.sum(lp.tanh(x * w))
    w = np.array([0.5, -1.0, 2.0], np.float16)
    x = np.array([1.0, 0.25, -0.5], np.float16)
    g = lp.compile(lp.grad(loss))(w, x)
    assert g.dtype == np.float16
    ref = x.astype(np.float64) * (1 - np.tanh(x.astype(np.float64) * w) ** 2)
    np.testing.assert_allclose(g.astype(np.float64), ref, rtol=3e-3)


def test_half_conv_pool_and_softmax():
    x = sample(float16, (1, 2, 6, 6), small=True)
    w = sample(float16, (3, 2, 3, 3), small=True)

    def f(x, w):
        y = lp.conv2d(x, w, padding=1)
        return lp.softmax(lp.max_pool2d(y, 2), axis=1)
    got = lp.compile(f, check=True)(x, w)
    assert got.dtype == np.float16
    ref = lp.compile(f)(x.astype(np.float32), w.astype(np.float32))
    np.testing.assert_allclose(got.astype(np.float32), ref, rtol=1e-2, atol=1e-3)


def test_entry_checks_the_dtype():
    f = lp.compile(lambda x: x + 1)
    assert f(np.zeros(3, np.int8)).dtype == np.int8
    out = f(np.zeros(3, np.uint16))      # a new dtype: a new signature, compiled again
    assert out.dtype == np.uint16
    g = CompileResult(_graph(int8), None, None).executable
    with pytest.raises(TypeError, match="expected dtype i8"):
        g(np.zeros(3, np.uint8))


def _graph(dt):
    g = Graph("f")
    x = g.input(TensorType(dt, (3,)))
    g.set_outputs([g.add("neg", [x])])
    return g


def test_ops_that_make_no_sense_name_op_and_dtype():
    with pytest.raises(OpError, match="exp needs a float input, got i8"):
        _ir_op("exp", int8)
    with pytest.raises(OpError, match="conv2d.*u8|u8.*conv2d"):
        _ir_op("conv2d", uint8)
    with pytest.raises(OpError, match="philox.*dtype must be one of .*got f16|got f16.*philox"):
        lp.compile(lambda: lp.random.uniform(lp.random.key(0), (3,), dtype=lp.float16))()


def _ir_op(op, dt):
    g = Graph("f")
    if op == "conv2d":
        ins = [g.input(TensorType(dt, (1, 1, 3, 3))), g.input(TensorType(dt, (1, 1, 1, 1)))]
        return g.add(op, ins, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    return g.add(op, [g.input(TensorType(dt, (3,)))])


@pytest.fixture
def software_halves(monkeypatch, tmp_path):
    """float16 converted by integer arithmetic, as on x86 hosts without F16C (a cache of its
    own: the on-disk cache's key holds the host's features, not this switch)."""
    from lepton.compiler.codegen import scalar
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    was = scalar.HARDWARE_HALVES
    scalar.set_hardware_halves(False)
    yield
    scalar.set_hardware_halves(was)


def test_float16_without_conversion_instructions(software_halves):
    from lepton.compiler.codegen import scalar
    assert not scalar.HARDWARE_HALVES
    h = np.arange(2 ** 16, dtype=np.uint16).view(np.float16)
    got = _cast(h, float32)
    want = h.astype(np.float32)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan], want[~nan])
    bits = rng.integers(0, 2 ** 32, 50000, dtype=np.uint64).astype(np.uint32)
    for src in (float32, float64):
        for x in (bits.view(np.float32), got[np.isfinite(got)] * np.float32(1 + 2 ** -11),
                  np.array([65504, 65519.99, 65520, 6e-8, 2.9e-8, 3e-8, -0.0, np.inf, np.nan],
                           np.float32)):
            x = x.astype(src.np)
            g = _cast(x, float16)
            with np.errstate(all="ignore"):
                w = x.astype(np.float16)
            nan = np.isnan(w)
            assert np.array_equal(np.isnan(g), nan)
            assert np.array_equal(g[~nan].view(np.uint16), w[~nan].view(np.uint16))
    a, b = sample(float16, (7, 13)), sample(float16, (13,))
    f = lp.compile(lambda a, b: (a * b + a, lp.maximum(a, b), lp.sum(a, axis=0), a[::2]))
    for o, r in zip(f(a, b), (a * b + a, np.maximum(a, b), None, a[::2])):
        assert o.dtype == np.float16
        if r is not None:
            same(o, r)


def test_onnx_small_dtypes_match_onnxruntime():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]),                 # uint8, wraps
             helper.make_node("Cast", ["s"], ["h"], to=TensorProto.FLOAT16),
             helper.make_node("MatMul", ["h", "w"], ["m"]),              # float16
             helper.make_node("Relu", ["m"], ["y"]),
             helper.make_node("Greater", ["a", "b"], ["gt"]),           # unsigned compare
             helper.make_node("Cast", ["y"], ["i"], to=TensorProto.INT8)]
    g = helper.make_graph(nodes, "g", [
        helper.make_tensor_value_info("a", TensorProto.UINT8, [3, 4]),
        helper.make_tensor_value_info("b", TensorProto.UINT8, [3, 4]),
        helper.make_tensor_value_info("w", TensorProto.FLOAT16, [4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [3, 2]),
         helper.make_tensor_value_info("gt", TensorProto.BOOL, [3, 4]),
         helper.make_tensor_value_info("i", TensorProto.INT8, [3, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    a = np.array([[250, 1, 2, 3], [4, 200, 6, 7], [8, 9, 100, 128]], np.uint8)
    b = np.array([[10, 1, 0, 255], [4, 100, 6, 7], [8, 9, 200, 1]], np.uint8)
    w = (sample(float16, (4, 2), small=True) / np.float16(64)).astype(np.float16)
    want = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"a": a, "b": b, "w": w})
    got = lp.from_onnx(m)(a, b, w)
    for g_, w_ in zip(got, want):
        assert g_.dtype == w_.dtype and g_.shape == w_.shape
    np.testing.assert_allclose(got[0].astype(np.float32), want[0].astype(np.float32), rtol=2e-3)
    same(got[1], want[1])
    same(got[2], want[2])


def test_everything_but_the_ml_dtypes_types_works_without_it():
    """bfloat16, the 8- and 4-bit floats and int4/uint4/int2/uint2 need ml_dtypes; nothing
    else does (one subprocess with ml_dtypes blocked)."""
    import subprocess
    import sys
    code = """if True:
        import sys; sys.modules["ml_dtypes"] = None          # as if it were not installed
        import numpy as np, lepton as lp
        f = lp.compile(lambda x: (x * 2).astype(lp.float16) + lp.sum(x))
        assert f(np.ones(3, np.int8)).tolist() == [5.0, 5.0, 5.0]
        try:
            lp.compile(lambda x: x.astype(lp.bfloat16))(np.ones(3, np.float32))
        except TypeError as e:
            assert "ml_dtypes" in str(e)
        else:
            raise AssertionError("bfloat16 without ml_dtypes")
        from lepton.frontends.onnx.node import ONNX_DTYPES
        assert lp.float8_e5m2.np is None and 19 not in ONNX_DTYPES and 1 in ONNX_DTYPES
        f = lp.compile(lambda x: (x * 2).astype(lp.float16))
        assert f(np.ones(3, np.int8)).tolist() == [2.0, 2.0, 2.0]
        try:
            lp.compile(lambda x: x.astype(lp.float8_e4m3fn))(np.ones(3, np.float32))
        except TypeError as e:
            assert "ml_dtypes" in str(e) and "float8_e4m3fn" in str(e), e
        else:
            raise AssertionError("float8 without ml_dtypes")
        print("ok")
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


INTEGER_OPS = {"floordiv": np.floor_divide, "mod": np.remainder, "bitwise_and": np.bitwise_and,
               "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor}


@pytest.mark.parametrize("dt", INTS + [int32, int64], ids=str)
@pytest.mark.parametrize("op", list(INTEGER_OPS) + ["shl", "shr"])
def test_integer_division_bitwise_and_shifts(dt, op):
    """Over the whole range, with zero divisors, the most negative value // -1 and shifts by
    the width or more (or negative amounts): no trap, NumPy's results."""
    x, y = sample(dt, (9, 16)), sample(dt, (16,))
    info = np.iinfo(dt.np)
    x[0, :4] = [info.min, info.max, 0, 1]
    if op in ("shl", "shr"):
        y = rng.integers(0 if dt.unsigned else -3, dt.bits + 3, 16).astype(dt.np)
    else:
        y[:4] = [0, 0 if dt.unsigned else -1, 1, info.max]
    got, want = compiled(op, [TensorType(dt, x.shape), TensorType(dt, y.shape)], {}, [x, y])
    same(got, want)
    if op in INTEGER_OPS:
        with np.errstate(all="ignore"):
            ref = INTEGER_OPS[op](x, y)
        if op in ("floordiv", "mod"):     # x // 0 and x % 0: 0 (NumPy's, with a warning)
            ok = y != 0
            assert not np.any(got[:, ~ok])
            got, ref = np.where(ok, got, 0), np.where(ok, ref, 0)
        same(got, ref)
    else:
        for i in range(16):
            s = int(y[i])
            for v, g in zip(x[:, i], got[:, i]):
                v = int(v)
                if op == "shl":
                    w = 0 if not 0 <= s < dt.bits else (v << s) % (1 << dt.bits)
                else:
                    w = (v >> s) if 0 <= s < dt.bits else (-1 if v < 0 else 0)
                w = np.array(w % (1 << dt.bits) if dt.unsigned else w).astype(np.int64)
                assert int(np.array(w).astype(dt.np)) == int(g), (v, s)


def test_integer_operators_in_the_frontend():
    a = np.array([-7, 7, 100, -128], np.int8)
    b = np.array([2, -2, 0, -1], np.int8)
    f = lp.compile(lambda a, b: (a // b, a % b, a & b, a | b, a ^ b, ~a, a << 1, a >> 1, a // 3,
                                 -9 % b))
    with np.errstate(all="ignore"):
        want = (a // b, a % b, a & b, a | b, a ^ b, ~a, a << 1, a >> 1, a // 3, -9 % b)
    for g, w in zip(f(a, b), want):
        assert g.dtype == w.dtype
        same(g, w)
    m = np.array([True, False])
    same(lp.compile(lambda m: (~m, m & True))(m)[0], ~m)
    with pytest.raises(TypeError, match="left_shift needs integer"):
        lp.compile(lambda x: x << 2)(np.ones(2, np.float32))


@pytest.mark.parametrize("dt", [float16, bfloat16, float32, float64], ids=str)
def test_float_floor_divide_and_remainder_are_numpys(dt):
    """NumPy's algorithm (exact fmod, the remainder with the divisor's sign, the quotient
    snapped to an integer): the same bits and signs, x // 0 = x / 0, x % 0 = NaN."""
    x = (rng.standard_normal(3000) * 10).astype(dt.np)
    y = (rng.standard_normal(3000) * 3).astype(dt.np)
    x[:10] = np.array([0, -0.0, np.inf, -np.inf, np.nan, 5, -5, 1, 7, -7]).astype(dt.np)
    y[:10] = np.array([0, 3, 2, -2, 1, 0, 0, 0.1, -0.0, np.inf]).astype(dt.np)
    f = lp.compile(lambda x, y: (x // y, x % y, lp.floor_divide(x, 0.5), lp.mod(x, -3)),
                   check=True)
    wide = x.astype(np.float32) if dt.is_half else x
    wy = y.astype(np.float32) if dt.is_half else y
    with np.errstate(all="ignore"):
        wants = [w.astype(dt.np) for w in (wide // wy, wide % wy, wide // np.float32(0.5),
                                          wide % np.float32(-3))]
    for got, want in zip(f(x, y), wants):
        assert got.dtype == dt.np
        g, w = got.astype(np.float64), want.astype(np.float64)
        nan = np.isnan(w)
        assert np.array_equal(np.isnan(g), nan)
        assert np.array_equal(g[~nan], w[~nan])
        assert np.array_equal(np.signbit(g[~nan]), np.signbit(w[~nan]))


def test_control_flow_carries_small_dtypes():
    def f(x):
        return lp.fori_loop(0, 5, lambda i, c: c * 1.5 + lp.exp(c) * 0.1, x)
    x = np.linspace(-1, 1, 7).astype(np.float16)
    got = lp.compile(f, check=True)(x)
    ref = x.copy()
    with np.errstate(all="ignore"):
        for _ in range(5):
            e = np.exp(ref.astype(np.float32)).astype(np.float16)
            ref = ref * np.float16(1.5) + e * np.float16(0.1)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32), rtol=4e-3)
    g = lp.compile(lambda p, x: lp.cond(p, lambda x: x + 1, lambda x: x * 2, x), check=True)
    u = np.array([0, 1, 255], np.uint8)
    same(g(np.array(True), u), u + np.uint8(1))
    same(g(np.array(False), u), u * np.uint8(2))


def test_save_and_load_small_dtypes(tmp_path):
    w16 = np.linspace(-1, 1, 12).astype(np.float16).reshape(4, 3)
    wb = np.linspace(-1, 1, 3).astype(ml_dtypes.bfloat16)       # .npy keeps it as 2-byte voids

    def f(x):
        return ((x.astype(lp.float16) @ w16) * 2, (x // 3).astype(lp.int8),
                x[:, :3].astype(lp.bfloat16) * wb)
    x = np.arange(8, dtype=np.uint8).reshape(2, 4)
    path = str(tmp_path / "small.lepton")
    lp.save(f, path, (x,), batch_axis=0)
    m = lp.load_model(path)
    for got, want in zip(m.predict(x), lp.compile(f)(x)):
        assert got.dtype == want.dtype
        same(got, want)


def test_gradient_of_float_remainder_and_floor_division():
    torch = pytest.importorskip("torch")
    x = np.array([5.5, -7.25, 3.0, 0.7], np.float64)
    y = np.array([2.0, 2.5, -1.5, 0.3], np.float64)
    gx, gy = lp.compile(lp.grad(lambda x, y: lp.sum(lp.mod(x, y) * 3 + x // y), argnums=(0, 1)))(
        x, y)
    tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    (torch.remainder(tx, ty) * 3).sum().backward()
    np.testing.assert_allclose(gx, tx.grad.numpy())
    np.testing.assert_allclose(gy, ty.grad.numpy())
