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
