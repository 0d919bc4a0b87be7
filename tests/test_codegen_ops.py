"""Every op of the IR compiled to native code and compared with the reference interpreter and
with a float64 NumPy reference, on awkward shapes (0-d, size-1 dims, broadcasting both ways,
odd sizes like 7x13)."""
import numpy as np
import pytest

from lepton.compile import CompileResult, tolerance
from lepton.compiler.codegen.control import CONTROL_KERNELS
from lepton.compiler.codegen.lower import GROUPS, SINGLE
from lepton.compiler.codegen.scalar import SCALAR
from lepton.ir import OPS, Graph, TensorType, interpret
from lepton.ir.types import bool_, dtype, float32, float64, int32, int64

F, D = float32, float64
rng = np.random.default_rng(0)

UNARY = ["neg", "abs", "square", "relu", "exp", "log", "sqrt", "rsqrt", "reciprocal", "tanh",
         "sigmoid", "erf", "sin", "cos"]
BINARY = ["add", "sub", "mul", "div", "pow", "maximum", "minimum"]
COMPARE = ["lt", "le", "gt", "ge", "eq", "ne"]
POSITIVE = {"log", "sqrt", "rsqrt", "pow"}


def case(op, shapes, dtypes=None, **attrs):
    dts = dtypes or [F] * len(shapes)
    return pytest.param(op, [TensorType(d, s) for d, s in zip(dts, shapes)], attrs,
                        id=f"{op}-{'-'.join(f'{d}{list(s)}' for d, s in zip(dts, shapes))}"
                           + "".join(f"-{k}{v}" for k, v in attrs.items()))


CASES = (
    [case(op, [s]) for op in UNARY for s in [(7, 13), (), (2, 1, 5)]]
    + [case(op, s) for op in BINARY for s in [[(7, 1), (1, 13)], [(13,), (7, 13)],
                                              [(), (7, 13)], [(3, 5), (3, 5)]]]
    + [case(op, [(7, 13), (13,)]) for op in COMPARE]
    + [case(op, [(4, 5), (4, 5)], [int64, int64]) for op in ["add", "sub", "mul", "maximum",
                                                              "lt", "eq"]]
    + [case("abs", [(9,)], [int32]), case("neg", [(9,)], [int64])]
    + [case(op, [(4, 5), (5,)], [t, t]) for op in ["floordiv", "mod", "bitwise_and", "bitwise_or",
                                                   "bitwise_xor", "shl", "shr"]
       for t in (int32, int64)]
    + [case("where", [(7, 1), (1, 13), ()], [bool_, F, F])]
    + [case("stop_gradient", [(7, 13)])]
    + [case("cast", [(7, 13)], [F], dtype=t) for t in (int32, int64, F, D, bool_)]
    + [case("cast", [(5,)], [t], dtype=F) for t in (int32, int64, bool_)]
    + [case("bitcast", [(7, 13)], [F], dtype=int32), case("bitcast", [(5,)], [int64], dtype=D),
       case("bitcast", [()], [bool_], dtype=dtype("u8"))]
    + [case(op, [(2, 3, 5)], axes=a, keepdims=k) for op in ["sum", "max", "min", "prod"]
       for a in [(0,), (1,), (2,), (0, 2), (0, 1, 2)] for k in [False, True]]
    + [case("sum", [(7, 13)], [int64], axes=(1,), keepdims=False),
       case("sum", [(1, 1)], axes=(0, 1), keepdims=False),
       case("sum", [(4096,)], axes=(0,), keepdims=False)]
    + [case("argmax", [(2, 3, 5)], axis=a, keepdims=k) for a in range(3) for k in [False, True]]
    + [case("argmax", [(7, 13)], [int32], axis=1, keepdims=False)]
    + [case("reshape", [(2, 3, 5)], shape=(5, 6)), case("reshape", [()], shape=(1, 1))]
    + [case("transpose", [(2, 3, 5)], perm=(2, 0, 1)), case("transpose", [(7, 13)], perm=(1, 0))]
    + [case("broadcast_to", [(3, 1)], shape=(2, 3, 4)), case("broadcast_to", [()], shape=(5,))]
    + [case("slice", [(7, 13)], starts=(6, 1), stops=(-1, 12), steps=(-2, 3)),
       case("slice", [(2, 3, 5)], starts=(1, 0, 4), stops=(2, 3, 5), steps=(1, 1, 1))]
    + [case("concatenate", [(2, 3), (2, 1), (2, 4)], axis=1),
       case("concatenate", [(1, 3), (4, 3)], axis=0)]
    + [case("take", [(7, 13), (4,)], [F, int64], axis=1),
       case("take", [(7, 13), (2, 3)], [F, int32], axis=0),
       case("take", [(5,), ()], [F, int64], axis=0)]
    + [case("check_index", [(7, 13)], [t], bound=3, wrap=True, what="take") for t in (int32, int64)]
    + [case("check_index", [(0,)], [int64], bound=0, wrap=False, what="take")]
    + [case("matmul", s) for s in [[(7, 5), (5, 13)], [(1, 784), (784, 10)], [(1, 1), (1, 1)],
                                   [(2, 1, 3, 4), (5, 4, 6)], [(3, 8, 16), (16, 33)]]]
    + [case("matmul", [(4, 3), (3, 5)], [int64, int64]), case("matmul", [(6, 7), (7, 9)], [D, D])]
    + [case("conv2d", [(2, 3, 9, 8), (4, 3, 3, 3)], stride=(1, 1), padding=(1, 1),
            dilation=(1, 1), groups=1),
       case("conv2d", [(1, 4, 10, 11), (6, 2, 3, 2)], stride=(2, 1), padding=(0, 1),
            dilation=(2, 1), groups=2),
       case("conv2d", [(2, 1, 7, 7), (3, 1, 1, 1)], stride=(1, 1), padding=(0, 0),
            dilation=(1, 1), groups=1)]
    + [case("conv2d_weight_grad", [(2, 3, 9, 8), (2, 4, 9, 8)], kernel=(3, 3), stride=(1, 1),
            padding=(1, 1), dilation=(1, 1), groups=1),
       case("conv2d_weight_grad", [(1, 4, 10, 11), (1, 6, 3, 9)], kernel=(3, 2), stride=(2, 1),
            padding=(0, 1), dilation=(2, 1), groups=2),
       case("conv2d_weight_grad", [(2, 3, 8, 8), (2, 2, 3, 4)], kernel=(3, 3), stride=(2, 2),
            padding=(1, 1), dilation=(1, 1), groups=1)]     # dy short of the 4x4 output
    + [case("conv_transpose2d", [(2, 4, 5, 6), (4, 3, 3, 2)], stride=(2, 1), padding=(1, 0),
            output_padding=(1, 0), dilation=(1, 2), groups=1),
       case("conv_transpose2d", [(1, 4, 4, 4), (4, 1, 3, 3)], stride=(3, 3), padding=(4, 2),
            output_padding=(2, 0), dilation=(1, 1), groups=2)]
    + [case(op, [(2, 3, 9, 8)], kernel=(2, 2), stride=(2, 2), padding=(0, 0))
       for op in ["max_pool2d", "avg_pool2d"]]
    + [case(op, [(1, 2, 7, 6)], kernel=(3, 3), stride=(2, 1), padding=(1, 1))
       for op in ["max_pool2d", "avg_pool2d"]]
    # the ops gradients introduce (lepton/ir/ops: pad, scatter_add, pool gradients)
    + [case("pad", [(3, 4)], lo=(1, 0), hi=(2, 3), interior=(0, 2)),
       case("scatter_add", [(2, 4, 3), (4,)], [F, int64], axis=1, size=5)]
    + [case(op, ts, kernel=(3, 3), stride=(2, 1), padding=(1, 1)) for op, ts in
       [("max_pool2d_grad", [(2, 3, 7, 6), (2, 3, 4, 6)]),
        ("max_pool2d_select", [(2, 3, 7, 6), (2, 3, 7, 6)])]]
    + [case("avg_pool2d_grad", [(2, 3, 4, 6)], kernel=(3, 3), stride=(2, 1), padding=(1, 1),
            size=(7, 6))]
    + [case("philox", [(2,)], [int32], shape=s, dtype=t) for t in (int32, F, D)
       for s in [(7, 13), ()]]
)


def sample(op, t: TensorType, k: int) -> np.ndarray:
    if t.dtype == bool_:
        return rng.random(t.shape) < 0.5
    if t.dtype.is_int:
        if op in ("take", "scatter_add") and k == 1 or op == "check_index":
            return rng.integers(-3, 3, t.shape).astype(t.dtype.np)
        return rng.integers(-9, 9, t.shape).astype(t.dtype.np)
    x = rng.standard_normal(t.shape) * (3 if op in ("exp", "tanh", "erf", "sigmoid") else 1)
    if op in POSITIVE and k == 0:
        x = np.abs(x) + 0.1
    return np.asarray(x, t.dtype.np)


def build(op, types, attrs) -> Graph:
    g = Graph(op)
    g.set_outputs([g.add(op, [g.input(t) for t in types], **attrs)])
    return g


def widen(t: TensorType) -> TensorType:
    return TensorType(float64, t.shape) if t.dtype == float32 else t


def test_every_op_is_covered_and_lowered():
    lowered = {n for n, d in OPS.items() if d.lowered}
    assert lowered <= set(SCALAR) | set(SINGLE) | set(CONTROL_KERNELS) | {"matmul", "conv2d"}
    assert set(GROUPS) == {"rows", "matmul", "conv2d", "single", "control"}
    covered = {p.values[0] for p in CASES}
    # ops with regions and `get`: tests/test_control_flow.py compiles them
    assert covered == set(OPS) - {"input", "constant", "get"} - set(CONTROL_KERNELS)


@pytest.mark.parametrize("op,types,attrs", CASES)
def test_op_matches_interpreter_and_float64(op, types, attrs):
    args = [sample(op, t, k) for k, t in enumerate(types)]
    g = build(op, types, attrs)
    (got,) = CompileResult(g, None, None).executable(*args)
    (want,) = interpret(g, *args)
    assert got.shape == want.shape and got.dtype == want.dtype
    rtol, atol = tolerance(want.dtype)
    if op in ("sum", "prod", "matmul", "conv2d", "conv_transpose2d", "conv2d_weight_grad",
              "avg_pool2d", "scatter_add", "avg_pool2d_grad"):
        rtol, atol = rtol * 10, atol * 10
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    if any(t.dtype == float32 for t in types) and "dtype" not in attrs:
        wide = build(op, [widen(t) for t in types], attrs)
        (ref,) = interpret(wide, *[a.astype(np.float64) if a.dtype == np.float32 else a
                                   for a in args])
        np.testing.assert_allclose(got, ref, rtol=rtol * 5, atol=atol * 5)


def test_constants_and_immediates():
    g = Graph()
    x = g.input(TensorType(F, (3, 4)))
    two = g.add("constant", [], value=np.float32(2.0))
    row = g.add("constant", [], value=np.arange(4, dtype=np.float32))
    g.set_outputs([g.add("add", [g.add("mul", [x, two]), row]), row, x])
    a = rng.standard_normal((3, 4)).astype(np.float32)
    got = CompileResult(g, None, None).executable(a)
    for o, w in zip(got, [a * 2 + np.arange(4), np.arange(4), a]):
        np.testing.assert_allclose(o, w, rtol=1e-6)
    assert got[2] is not a  # an input returned as an output is a copy


def test_special_values_propagate():
    g = Graph()
    x = g.input(TensorType(F, (6,)))
    y = g.input(TensorType(F, (6,)))
    outs = [g.add(op, [x, y]) for op in ("maximum", "minimum", "ne", "lt")]
    outs += [g.add("max", [x], axes=(0,), keepdims=False), g.add("argmax", [x], axis=0,
                                                                   keepdims=False)]
    g.set_outputs(outs)
    a = np.array([1, np.nan, -np.inf, 0, 2, np.inf], np.float32)
    b = np.array([np.nan, 1, 0, -0.0, 3, 1], np.float32)
    got = CompileResult(g, None, None).executable(a, b)
    for o, w in zip(got, interpret(g, a, b)):
        np.testing.assert_array_equal(o, w)
