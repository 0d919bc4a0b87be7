"""ONNX FlexAttention (domain ai.onnx.preview; lepton/frontends/onnx/flex_attention.py) against
onnx's reference evaluator: default and explicit scale, grouped-query heads, a V head size of
its own, score_mod / prob_mod subgraphs (one reading a value of the outer graph), the softmax
precisions, float16 and float64 inputs; and the attribute values it refuses."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("ml_dtypes")   # onnx's FlexAttention reference imports it
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import lepton as lp  # noqa: E402

rng = np.random.default_rng(3)
PREVIEW = "ai.onnx.preview"


def _causal_graph(elem=TensorProto.FLOAT):
    """score_mod: scores where k <= q, else -inf (the mask from Shape/Range over the scores)."""
    nodes = [helper.make_node("Shape", ["s"], ["shape"]),
             helper.make_node("Gather", ["shape", "i2"], ["L"], axis=0),
             helper.make_node("Gather", ["shape", "i3"], ["S"], axis=0),
             helper.make_node("Range", ["zero", "L", "one"], ["qr"]),
             helper.make_node("Unsqueeze", ["qr", "ax1"], ["qi"]),
             helper.make_node("Range", ["zero", "S", "one"], ["ki"]),
             helper.make_node("GreaterOrEqual", ["qi", "ki"], ["keep"]),
             helper.make_node("Where", ["keep", "s", "ninf"], ["out"])]
    inits = [numpy_helper.from_array(np.array(v, np.int64), name) for name, v in
             (("i2", 2), ("i3", 3), ("zero", 0), ("one", 1), ("ax1", [1]))]
    inits.append(numpy_helper.from_array(
        np.array(-np.inf, helper.tensor_dtype_to_np_dtype(elem)), "ninf"))
    return helper.make_graph(nodes, "causal", [helper.make_tensor_value_info("s", elem, None)],
                             [helper.make_tensor_value_info("out", elem, None)], inits)


def _unary_graph(op, name, value, elem=TensorProto.FLOAT):
    """x op value, value a constant of the subgraph (or, value None, the outer graph's 'outer')."""
    other = "outer" if value is None else "c"
    inits = [] if value is None else [numpy_helper.from_array(
        np.array(value, helper.tensor_dtype_to_np_dtype(elem)), "c")]
    return helper.make_graph([helper.make_node(op, ["x", other], ["out"])], name,
                             [helper.make_tensor_value_info("x", elem, None)],
                             [helper.make_tensor_value_info("out", elem, None)], inits)


def _model(q, k, v, node_domain=PREVIEW, outer=None, **attrs):
    node = helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], name="flex",
                            domain=node_domain, **attrs)
    elem = helper.np_dtype_to_tensor_dtype(q.dtype)
    inits = [] if outer is None else [numpy_helper.from_array(outer, "outer")]
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(n, elem, a.shape)
                      for n, a in (("q", q), ("k", k), ("v", v))],
        [helper.make_tensor_value_info("y", elem, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26),
                                                   helper.make_opsetid(PREVIEW, 1)])


def _qkv(dtype, hq=4, hkv=4, ev=8, l=5, s=6, e=8):
    return (rng.standard_normal((2, hq, l, e)).astype(dtype),
            rng.standard_normal((2, hkv, s, e)).astype(dtype),
            rng.standard_normal((2, hkv, s, ev)).astype(dtype))


@pytest.mark.parametrize("shape,attrs", [
    ({}, {}),
    ({}, {"scale": 0.3}),
    ({"hq": 6, "hkv": 2}, {}),                                   # grouped-query heads
    ({"ev": 3}, {}),                                             # V's own head size
    ({"l": 6}, {"score_mod": _causal_graph()}),
    ({"hq": 4, "hkv": 1}, {"score_mod": _unary_graph("Mul", "cap", 0.5),
                           "prob_mod": _unary_graph("Add", "bias", 0.25)}),
    ({}, {"softmax_precision": 11,
          "score_mod": _unary_graph("Sub", "shift", 1.5, TensorProto.DOUBLE)}),
    ({}, {"softmax_precision": 1}),
])
def test_flex_attention_matches_the_reference(shape, attrs):
    q, k, v = _qkv(np.float32, **shape)
    model = _model(q, k, v, **attrs)
    (want,) = ReferenceEvaluator(model).run(None, {"q": q, "k": k, "v": v})
    (got,) = lp.from_onnx(model)(q, k, v)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_subgraph_reads_the_outer_graph():
    """As any ONNX subgraph, score_mod may read the enclosing graph's values."""
    q, k, v = _qkv(np.float32)
    bias = rng.standard_normal((5, 6)).astype(np.float32)   # a relative bias, (L, S)
    model = _model(q, k, v, outer=bias, score_mod=_unary_graph("Add", "bias", None))
    inner = _model(q, k, v, score_mod=_unary_graph("Add", "bias", bias))   # the reference
    (want,) = ReferenceEvaluator(inner).run(None, {"q": q, "k": k, "v": v})  # reads no outer
    (got,) = lp.from_onnx(model)(q, k, v)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float16, 2e-3)])
def test_flex_attention_in_float16_and_float64(dtype, tol):
    """float16 scores go to a float32 softmax and back; float64 stays float64."""
    q, k, v = _qkv(dtype)
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    model = _model(q, k, v, score_mod=_causal_graph(elem))
    (want,) = ReferenceEvaluator(model).run(None, {"q": q, "k": k, "v": v})
    (got,) = lp.from_onnx(model)(q, k, v)
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol,
                               atol=tol)


def test_refuses_an_unknown_softmax_precision():
    q, k, v = _qkv(np.float32)
    with pytest.raises(NotImplementedError, match="flex.*FlexAttention.*softmax_precision"):
        lp.from_onnx(_model(q, k, v, softmax_precision=7))


def test_refuses_a_subgraph_that_changes_the_shape():
    q, k, v = _qkv(np.float32)
    g = helper.make_graph([helper.make_node("ReduceSum", ["x"], ["out"], keepdims=0)], "sum",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)])
    with pytest.raises(ValueError, match="flex.*FlexAttention.*score_mod"):
        lp.from_onnx(_model(q, k, v, score_mod=g))


@pytest.mark.parametrize("shapes,match", [
    (((2, 4, 5, 8), (1, 4, 6, 8), (1, 4, 6, 8)), "batch"),
    (((2, 4, 5, 8), (2, 3, 6, 8), (2, 3, 6, 8)), "heads"),
    (((2, 4, 5, 8), (2, 4, 6, 7), (2, 4, 6, 8)), "head size"),
    (((2, 4, 5), (2, 4, 6), (2, 4, 6)), "rank 4"),
])
def test_refuses_inputs_that_do_not_fit(shapes, match):
    q, k, v = (np.ones(s, np.float32) for s in shapes)
    with pytest.raises(ValueError, match=f"flex.*FlexAttention.*{match}"):
        lp.from_onnx(_model(q, k, v))


def test_the_op_needs_its_domain():
    q, k, v = _qkv(np.float32)
    with pytest.raises(NotImplementedError, match="op type FlexAttention is not supported"):
        lp.from_onnx(_model(q, k, v, node_domain=""))
