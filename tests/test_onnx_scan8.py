"""ONNX Scan before opset 9 (lepton/frontends/onnx/control.py): a batch axis 0 on every input,
the sequence on axis 1, `directions`, and sequence_lens known while loading; against
onnxruntime, which implements opset 8's Scan."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import lepton as lp  # noqa: E402

rng = np.random.default_rng(5)
F = TensorProto.FLOAT


def _body():
    """(h[3], a[3], b[2]) -> (h', out[3], tot[]): h' = tanh(h * 0.5 + a) + sum(b)."""
    nodes = [helper.make_node("Mul", ["h", "half"], ["hs"]),
             helper.make_node("Add", ["hs", "a"], ["t"]),
             helper.make_node("Tanh", ["t"], ["th"]),
             helper.make_node("ReduceSum", ["b"], ["sb"], keepdims=0),
             helper.make_node("Add", ["th", "sb"], ["h2"]),
             helper.make_node("Identity", ["h2"], ["out"]),
             helper.make_node("ReduceSum", ["h2"], ["tot"], keepdims=0)]
    return helper.make_graph(
        nodes, "body", [helper.make_tensor_value_info("h", F, [3]),
                        helper.make_tensor_value_info("a", F, [3]),
                        helper.make_tensor_value_info("b", F, [2])],
        [helper.make_tensor_value_info("h2", F, [3]), helper.make_tensor_value_info("out", F, [3]),
         helper.make_tensor_value_info("tot", F, [])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "half")])


def _model(lens, **attrs):
    inits = [] if lens is None else [numpy_helper.from_array(np.array(lens, np.int64), "lens")]
    node = helper.make_node("Scan", ["" if lens is None else "lens", "h0", "a", "b"],
                            ["h", "outs", "tots"], name="scan8", num_scan_inputs=2,
                            body=_body(), **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("h0", F, [2, 3]),
                      helper.make_tensor_value_info("a", F, [2, 4, 3]),
                      helper.make_tensor_value_info("b", F, [2, 4, 2])],
        [helper.make_tensor_value_info(o, F, None) for o in ("h", "outs", "tots")], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=8)


@pytest.mark.parametrize("lens,attrs", [
    (None, {}),
    (None, {"directions": [1, 0]}),
    ([4, 4], {"directions": [0, 1]}),
    ([3, 1], {}),                       # shorter rows: their states stop, outputs padded
    ([2, 4], {"directions": [1, 1]}),
])
def test_scan8_matches_onnxruntime(lens, attrs):
    h0 = rng.standard_normal((2, 3)).astype(np.float32)
    a = rng.standard_normal((2, 4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 4, 2)).astype(np.float32)
    model = _model(lens, **attrs)
    want = ort.InferenceSession(model.SerializeToString(), providers=[
        "CPUExecutionProvider"]).run(None, {"h0": h0, "a": a, "b": b})
    got = lp.from_onnx(model)(h0, a, b)
    for g, w, t in zip(got, want, lens or [4, 4]):
        assert g.shape == w.shape and g.dtype == w.dtype
        if g.ndim > 1 and g.shape[1] == 4:   # beyond a row's length the values are undefined
            g, w = [np.concatenate([v[i, :ti] for i, ti in enumerate(lens or [4, 4])])
                    for v in (g, w)]
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_scan8_pads_short_rows_with_zeros():
    h0, a, b = (np.ones((2, 3), np.float32), np.ones((2, 4, 3), np.float32),
                np.ones((2, 4, 2), np.float32))
    _, outs, tots = lp.from_onnx(_model([3, 1]))(h0, a, b)
    assert not outs[0, 3:].any() and not outs[1, 1:].any() and outs[1, 0].all()
    assert tots[0, 2] != 0 and not tots[0, 3]


@pytest.mark.parametrize("lens,attrs,match", [
    ([0, 4], {}, "sequence_lens"),
    ([5, 4], {}, "sequence_lens"),
    (None, {"directions": [2, 0]}, "directions"),
    (None, {"directions": [0]}, "directions"),
    (None, {"scan_input_axes": [0, 0]}, "scan_"),
])
def test_scan8_refuses_bad_attributes(lens, attrs, match):
    with pytest.raises(ValueError, match=f"scan8.*Scan.*{match}"):
        lp.from_onnx(_model(lens, **attrs))
