"""ONNX ConvTranspose and Resize against onnxruntime (antialiased Resize against onnx's reference
evaluator), and the attribute values Lepton refuses."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import lepton as lp  # noqa: E402

rng = np.random.default_rng(0)


def _model(op, x, consts, attrs, opset=19):
    """One node reading graph input x and constant inputs (None: omitted)."""
    names, inits = ["x"], []
    for i, c in enumerate(consts):
        if c is None:
            names.append("")
        else:
            names.append(f"c{i}")
            inits.append(numpy_helper.from_array(np.asarray(c), f"c{i}"))
    node = helper.make_node(op, names, ["y"], name=f"the_{op.lower()}", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, list(x.shape))], [helper.make_empty_tensor_value_info("y")],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _check(model, x, rtol=1e-5, atol=1e-5):
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    (got,) = lp.from_onnx(model)(x)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("xshape,wshape,attrs", [
    ((2, 3, 4, 5), (3, 4, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    ((1, 4, 5, 4), (4, 3, 3, 2), dict(strides=[1, 2], pads=[0, 2, 1, 0], group=2,
                                      dilations=[2, 1])),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(strides=[2, 2], output_shape=[8, 9])),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(strides=[2, 2], auto_pad="SAME_LOWER")),
    ((2, 3, 6), (3, 2, 4), dict(strides=[3], pads=[1, 2])),
    # 3-d: depth folded into the batch
    ((2, 2, 3, 4, 5), (2, 3, 2, 3, 3), dict()),
    ((1, 4, 3, 3, 4), (4, 2, 3, 2, 3), dict(strides=[2, 1, 3], pads=[1, 0, 2, 0, 1, 1],
                                           group=2, dilations=[2, 1, 1],
                                           output_padding=[1, 0, 2])),
    ((1, 2, 3, 3, 2), (2, 2, 3, 3, 3), dict(strides=[2, 2, 2], auto_pad="SAME_UPPER")),
    ((1, 2, 3, 3, 2), (2, 2, 3, 3, 3), dict(strides=[2, 3, 1], output_shape=[7, 8, 4])),
    # output_shape beyond the full output: zeros (then the bias) at the end
    ((1, 2, 3, 3), (2, 3, 3, 3), dict(strides=[3, 2], output_shape=[10, 8])),
    ((1, 2, 3, 3), (2, 3, 3, 3), dict(strides=[3, 2], output_shape=[11, 6])),
    ((1, 2, 3, 3), (2, 3, 3, 3), dict(strides=[3, 2], output_shape=[10, 8],
                                      auto_pad="SAME_LOWER")),
    ((2, 3, 6), (3, 2, 4), dict(strides=[3], output_shape=[20])),
])
def test_conv_transpose_matches_onnxruntime(xshape, wshape, attrs):
    x = rng.standard_normal(xshape).astype(np.float32)
    w = rng.standard_normal(wshape).astype(np.float32)
    b = rng.standard_normal(wshape[1] * attrs.get("group", 1)).astype(np.float32)
    _check(_model("ConvTranspose", x, [w, b], attrs), x)


def test_conv_transpose_4d_matches_the_reference():
    """4 spatial axes (onnxruntime stops at 3): the depth folding applied twice."""
    from onnx.reference import ReferenceEvaluator
    x = rng.standard_normal((1, 2, 2, 3, 2, 3)).astype(np.float32)
    w = rng.standard_normal((2, 3, 2, 2, 3, 2)).astype(np.float32)
    model = _model("ConvTranspose", x, [w], dict(strides=[2, 1, 2, 1],
                                                 pads=[1, 0, 0, 1, 0, 1, 1, 0]))
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = lp.from_onnx(model)(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


SCALES = np.array([1, 1, 2, 1.5], np.float32)
SIZES = np.array([2, 3, 7, 9], np.int64)


@pytest.mark.parametrize("attrs,scales,sizes", [
    (dict(), SCALES, None),
    (dict(mode="nearest", nearest_mode="floor", coordinate_transformation_mode="asymmetric"),
     SCALES, None),
    (dict(nearest_mode="round_prefer_ceil"), None, SIZES),
    (dict(nearest_mode="ceil", coordinate_transformation_mode="align_corners"), None, SIZES),
    (dict(mode="linear"), SCALES, None),
    (dict(mode="linear"), np.array([1, 1, 0.6, 0.5], np.float32), None),
    (dict(mode="linear", coordinate_transformation_mode="align_corners"), None, SIZES),
    (dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), None,
     np.array([2, 3, 1, 9], np.int64)),
    (dict(mode="linear", coordinate_transformation_mode="asymmetric"), SCALES, None),
    (dict(mode="linear", coordinate_transformation_mode="half_pixel_symmetric"), None, SIZES),
    (dict(mode="linear", coordinate_transformation_mode="tf_half_pixel_for_nn"), SCALES, None),
    (dict(mode="linear", axes=[2, 3]), np.array([2, 1.5], np.float32), None),
])
def test_resize_matches_onnxruntime(attrs, scales, sizes):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    consts = [None, scales] if sizes is None else [None, None, sizes]
    _check(_model("Resize", x, consts, attrs), x)


def test_resize_matches_torch_interpolate_export():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    for kw in [dict(scale_factor=2, mode="nearest"),
               dict(size=(7, 8), mode="bilinear", align_corners=False),
               dict(size=(7, 8), mode="bilinear", align_corners=True),
               dict(size=(9, 3), mode="bicubic", align_corners=False),
               dict(size=(7, 11), mode="bicubic", align_corners=True)]:
        want = torch.nn.functional.interpolate(torch.from_numpy(x), **kw).numpy()
        tf = "align_corners" if kw.get("align_corners") else (
            "pytorch_half_pixel" if kw["mode"] != "nearest" else "asymmetric")
        attrs = dict(mode={"bilinear": "linear", "bicubic": "cubic"}.get(kw["mode"], "nearest"),
                     coordinate_transformation_mode=tf, nearest_mode="floor")
        sizes = np.array((1, 2) + (kw.get("size") or (8, 10)), np.int64)
        (got,) = lp.from_onnx(_model("Resize", x, [None, None, sizes], attrs))(x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attrs,scales,sizes", [
    (dict(mode="linear"), np.array([1, 1, 0.6, 0.5], np.float32), None),
    (dict(mode="linear"), np.array([1, 1, 0.3, 1.5], np.float32), None),   # down and up
    (dict(mode="cubic"), np.array([1, 1, 0.6, 0.45], np.float32), None),
    (dict(mode="cubic", cubic_coeff_a=-0.5, exclude_outside=1), None,
     np.array([2, 3, 3, 2], np.int64)),
    (dict(mode="linear", exclude_outside=1, coordinate_transformation_mode="align_corners"),
     None, np.array([2, 3, 5, 3], np.int64)),
    (dict(mode="linear", coordinate_transformation_mode="asymmetric"),
     np.array([1, 1, 0.5, 0.25], np.float32), None),      # integer source coordinates
    (dict(mode="cubic", axes=[3, 2], coordinate_transformation_mode="pytorch_half_pixel"),
     np.array([0.4, 0.7], np.float32), None),
])
def test_resize_antialias_matches_the_reference(attrs, scales, sizes):
    """antialias=1 widens the linear/cubic filter by 1/scale when downsampling (onnx's
    reference evaluator is the oracle here)."""
    from onnx.reference import ReferenceEvaluator
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    model = _model("Resize", x, [None, scales] if sizes is None else [None, None, sizes],
                   dict(antialias=1, **attrs))
    (want,) = ReferenceEvaluator(model).run(None, {"x": x})
    (got,) = lp.from_onnx(model)(x)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attrs,what", [
    (dict(mode="linear", antialias=2), "antialias"),
    (dict(mode="area"), "mode"),
])
def test_resize_refuses_naming_the_attribute(attrs, what):
    x = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match=f"the_resize.*Resize.*{what}"):
        lp.from_onnx(_model("Resize", x, [None, SCALES], attrs))(x)


@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
def test_tf_crop_and_resize_matches_onnxruntime(mode):
    """A roi reaching outside the input: those points take extrapolation_value."""
    x = rng.standard_normal((1, 2, 6, 7)).astype(np.float32)
    roi = np.array([0, 0, -0.2, 0.3, 1, 1, 0.7, 1.25], np.float32)
    _check(_model("Resize", x, [roi, None, np.array([1, 2, 5, 4], np.int64)],
                  dict(mode=mode, coordinate_transformation_mode="tf_crop_and_resize",
                       extrapolation_value=-3.0)), x)
