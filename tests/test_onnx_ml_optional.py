"""ONNX ops outside the default domain's tensors: ai.onnx.ml's Binarizer (against onnx's
reference evaluator), OptionalGetElement / OptionalHasElement on tensors and omitted inputs, and
how a node's domain is matched with the op table's."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import lepton as lp  # noqa: E402

rng = np.random.default_rng(7)
ML = "ai.onnx.ml"


def _model(op, x, domain, outputs=("y",), inputs=("x",), **attrs):
    node = helper.make_node(op, list(inputs), list(outputs), name="the_node", domain=domain,
                            **attrs)
    ins = [] if x is None else [helper.make_tensor_value_info(
        "x", helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)]
    graph = helper.make_graph([node], "g", ins,
                              [helper.make_tensor_value_info(o, 0, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                   helper.make_opsetid(ML, 3)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("threshold", [None, 0.3, -1.5, 2.0, 1e30, -1e30])
def test_binarizer_matches_the_reference(dtype, threshold):
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(dtype)
    x.flat[:3] = [2, -1, -2]
    attrs = {} if threshold is None else {"threshold": threshold}
    model = _model("Binarizer", x, ML, **attrs)
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = lp.from_onnx(model)(x)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)


def test_binarizer_refuses_other_dtypes():
    x = np.ones((2, 2), np.int8)
    with pytest.raises(TypeError, match="the_node.*Binarizer.*int32"):
        lp.from_onnx(_model("Binarizer", x, ML))


def test_domains_are_matched():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(NotImplementedError, match="op type Binarizer is not supported"):
        lp.from_onnx(_model("Binarizer", x, ""))                 # not a default-domain op
    with pytest.raises(NotImplementedError, match="Relu of domain 'ai.onnx.ml'"):
        lp.from_onnx(_model("Relu", x, ML))                      # not an ai.onnx.ml op
    with pytest.raises(NotImplementedError, match="Normalizer of domain 'ai.onnx.ml'"):
        lp.from_onnx(_model("Normalizer", x, ML))
    (y,) = lp.from_onnx(_model("Relu", x, "ai.onnx"))(x)           # the default, spelt out
    np.testing.assert_array_equal(y, x)


def test_optional_get_element_of_a_tensor_is_the_tensor():
    x = rng.standard_normal((4, 2)).astype(np.float32)
    (y,) = lp.from_onnx(_model("OptionalGetElement", x, ""))(x)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("inputs,want", [(("x",), True), ((), False), (("",), False)])
def test_optional_has_element(inputs, want):
    x = np.ones((3,), np.float32) if inputs == ("x",) else None
    model = _model("OptionalHasElement", x, "", inputs=inputs)
    (got,) = lp.from_onnx(model)(*([] if x is None else [x]))
    assert got.dtype == np.bool_ and got.shape == () and bool(got) is want


def test_optional_inputs_are_refused():
    opt = helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    graph = helper.make_graph([helper.make_node("OptionalGetElement", ["x"], ["y"])], "g",
                              [helper.make_value_info("x", opt)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    with pytest.raises(NotImplementedError, match="'x' is not a tensor"):
        lp.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
