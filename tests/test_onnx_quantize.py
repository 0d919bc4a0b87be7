"""ONNX QuantizeLinear / DequantizeLinear (lepton/frontends/onnx/quantize.py) against onnx's
reference evaluator: per tensor, per axis and blocked, to and from the 8/16-bit integers,
int4/uint4/int2/uint2 and the 8- and 4-bit floats, saturating or not."""
import numpy as np
import pytest

import lepton as lp

pytest.importorskip("ml_dtypes")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.helper import np_dtype_to_tensor_dtype  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

rng = np.random.default_rng(11)
OUTS = ["UINT8", "INT8", "UINT16", "INT16", "INT4", "UINT4", "INT2", "UINT2", "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "FLOAT4E2M1"]


def _model(op, inputs, out_elem, **attrs):
    names = [name for name, _ in inputs]
    node = helper.make_node(op, names, ["y"], **attrs)
    ins = [helper.make_tensor_value_info(name, np_dtype_to_tensor_dtype(a.dtype), a.shape)
           for name, a in inputs]
    graph = helper.make_graph([node], "g", ins,
                              [helper.make_tensor_value_info("y", out_elem, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])


def _same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint8) if got.itemsize == 1 else got,
                          want.view(np.uint8) if want.itemsize == 1 else want)


def _zero(out, shape):
    dt = lp.ir.dtype(helper.tensor_dtype_to_np_dtype(getattr(TensorProto, out)))
    if dt.is_float:
        return np.zeros(shape, dt.np)
    lo, hi = (0, 2 ** dt.bits - 1) if dt.unsigned else (-2 ** (dt.bits - 1), 2 ** (dt.bits - 1) - 1)
    return rng.integers(lo, hi + 1, shape).astype(dt.np)


@pytest.mark.parametrize("out", OUTS)
@pytest.mark.parametrize("mode", ["tensor", "axis", "blocked"])
def test_quantize_and_dequantize_as_the_reference(out, mode):
    x = (rng.standard_normal((2, 6, 5)) * 40).astype(np.float32)
    x[0, 0, :3] = [1e6, -1e6, 1e4]
    if out.startswith("FLOAT"):   # (the reference casts inf to int32: INT_MIN, clipped to lo)
        x[0, 1, :2] = [np.inf, -np.inf]
    if mode == "tensor":
        scale, attrs = np.array(0.7, np.float32), {}
    elif mode == "axis":
        scale, attrs = rng.uniform(0.2, 2, 6).astype(np.float32), {"axis": 1}
    else:
        scale, attrs = rng.uniform(0.2, 2, (2, 2, 5)).astype(np.float32), {"axis": 1,
                                                                          "block_size": 4}
    zero = _zero(out, scale.shape)
    for saturate in ([0, 1] if out.startswith("FLOAT8") else [1]):
        extra = {"saturate": saturate} if out.startswith("FLOAT8") else {}
        m = _model("QuantizeLinear", [("x", x), ("s", scale), ("z", zero)],
                   getattr(TensorProto, out), **attrs, **extra)
        with np.errstate(all="ignore"):
            (want,) = ReferenceEvaluator(m).run(None, {"x": x, "s": scale, "z": zero})
        (got,) = lp.from_onnx(m)(x, scale, zero)
        _same(got, want)
    m = _model("DequantizeLinear", [("q", want), ("s", scale), ("z", zero)],
               TensorProto.FLOAT, **attrs)
    (back,) = ReferenceEvaluator(m).run(None, {"q": want, "s": scale, "z": zero})
    (got,) = lp.from_onnx(m)(want, scale, zero)
    np.testing.assert_array_equal(got, back)


def _ints(dtype, shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


def _run_both(op, inputs, out_elem, opset=21, **attrs):
    m = _model(op, inputs, out_elem, **attrs)
    m.opset_import[0].version = opset
    feeds = {name: a for name, a in inputs}
    (want,) = ReferenceEvaluator(m).run(None, feeds)
    (got,) = lp.from_onnx(m)(*[a for _, a in inputs])
    _same(got, want)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_integer_matmuls_as_the_reference(dt):
    """MatMulInteger and QLinearMatMul: batched, per-column zero points of B, requantized to
    another integer type, scales whose product rounds in float32 first."""
    a, b = _ints(dt, (2, 5, 7)), _ints(dt, (7, 6))
    az, bz = _ints(dt, ()), _ints(dt, (6,))
    _run_both("MatMulInteger", [("a", a), ("b", b), ("az", az), ("bz", bz)], TensorProto.INT32)
    ys, yz = np.array(37.3, np.float32), _ints(np.uint8, ())
    _run_both("QLinearMatMul", [("a", a), ("as", np.array(0.11, np.float32)), ("az", az),
                                ("b", b), ("bs", np.array(0.07, np.float32)), ("bz", bz),
                                ("ys", ys), ("yz", yz)], TensorProto.UINT8)


@pytest.mark.parametrize("dt", [np.uint8, np.int8])
def test_integer_convolutions_as_the_reference(dt):
    """ConvInteger and QLinearConv: padding and strides, per-channel weight zero points and
    scales, an int32 bias, output zero point of another type."""
    x, w = _ints(dt, (2, 3, 7, 6)), _ints(dt, (4, 3, 3, 2))
    xz, wz = _ints(dt, ()), _ints(dt, (4,))
    window = {"pads": [1, 0, 1, 1], "strides": [2, 1]}
    _run_both("ConvInteger", [("x", x), ("w", w), ("xz", xz), ("wz", wz)], TensorProto.INT32,
              **window)
    ws = rng.uniform(0.01, 0.05, 4).astype(np.float32)
    bias = rng.integers(-500, 500, 4).astype(np.int32)
    yz = _ints(np.int8, ())
    _run_both("QLinearConv", [("x", x), ("xs", np.array(0.2, np.float32)), ("xz", xz),
                              ("w", w), ("ws", ws), ("wz", wz), ("ys", np.array(9.0, np.float32)),
                              ("yz", yz), ("b", bias)], TensorProto.INT8, **window)
