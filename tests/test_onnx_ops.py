"""ONNX ops added after the node-test table was last generated: ops expanded to their ONNX
function bodies (functions.py), AffineGrid, ... Each is checked on onnx's own backend node cases
(tests/onnx_node.py: same shape, dtype, rtol 1e-3) and, where a case leaves a form out, against
NumPy or onnxruntime."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import lepton as lp  # noqa: E402
import onnx_node  # noqa: E402

rng = np.random.default_rng(0)

# onnx's node cases that pass now; one or two of each op (the whole set: the table's tool)
NODE_CASES = [
    "test_swiglu_alpha",                                        # function body
    "test_linear_attention_gated_delta_gqa",                    # context-dependent body
    "test_linear_attention_prefill_with_past",
    "test_causal_conv_with_state_with_bias_and_past_state",
    "test_causal_conv_with_state_silu",
    "test_affine_grid_2d", "test_affine_grid_3d_align_corners",
    "test_scatter_elements_with_reduction_mul", "test_scatternd_max", "test_scatternd_min",
    "test_scatter_with_axis",                                   # the opset-9 name
    "test_lppool_2d_dilations", "test_lppool_3d_default",
    "test_dft_axis", "test_dft_irfft_opset19", "test_dft_rfft",
    "test_col2im_5d", "test_col2im_pads",
    "test_gridsample_bicubic_align_corners_0_additional_1", "test_gridsample_reflection_padding",
    "test_gridsample_volumetric_nearest_align_corners_1",
    "test_loop11", "test_range_int32_type_negative_delta_expanded",   # Loop
    "test_training_dropout_zero_ratio_mask",
    "test_bernoulli_double_expanded", "test_training_dropout_mask",   # shapes and dtypes only
    "test_reduce_max_empty_set", "test_reduce_max_empty_set_bool",
    "test_maxunpool_export_without_output_shape", "test_det_nd", "test_tensorscatter_circular",
    "test_stft_with_window", "test_deform_conv_with_multiple_offset_groups",
    "test_roialign_mode_max", "test_tfidfvectorizer_tf_batch_uniandbigrams_skip5",
    "test_resize_upsample_sizes_nearest_axes_3_2",     # Resize's sizes as a graph input
    "test_resize_downsample_scales_linear_align_corners",
    "test_batchnorm_epsilon_training_mode", "test_maxpool_with_argmax_2d_precomputed_strides", "test_upsample_nearest", "test_melweightmatrix",
    "test_resize_tf_crop_and_resize_axes_3_2", "test_resize_upsample_sizes_nearest_not_smaller", "test_resize_downsample_sizes_nearest_not_larger",
]
# the op table's ops these tests cover (tests/test_onnx.py checks every table op is tested)
TESTED_OPS = {"AffineGrid", "Scatter", "LpPool", "DFT", "Col2Im", "GridSample",
              "Loop", "RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike",
              "Bernoulli", "MaxUnpool", "Det", "TensorScatter", "STFT",
              "DeformConv", "RoiAlign", "TfIdfVectorizer", "Upsample", "MelWeightMatrix"}


@pytest.fixture(scope="module")
def root():
    return onnx_node.data_dir()


@pytest.mark.parametrize("name", NODE_CASES)
def test_node_case(root, name):
    if not (root / name / "model.onnx").exists():
        pytest.skip(f"onnx {onnx.__version__} has no case {name}")
    onnx_node.run(root / name)


def _model(nodes, inputs, outputs, opset):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, s) for k, s in inputs],
        [helper.make_empty_tensor_value_info(o) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_function_body_binds_attributes_and_defaults():
    """SwiGLU (a function op: Swish(A, alpha) * B) with and without its alpha attribute."""
    a, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal(
        (3, 5)).astype(np.float32)
    for attrs, alpha in (({}, 1.0), ({"alpha": 0.3}, 0.3)):
        m = _model([helper.make_node("SwiGLU", ["a", "b"], ["y"], **attrs)],
                   [("a", [3, 5]), ("b", [3, 5])], ["y"], 28)
        (y,) = lp.from_onnx(m)(a, b)
        want = a / (1 + np.exp(-alpha * a)) * b
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_op_without_converter_or_body_is_refused_at_load():
    m = _model([helper.make_node("ImageDecoder", ["a"], ["y"])], [("a", [3, 3])], ["y"], 20)
    with pytest.raises(NotImplementedError, match="ImageDecoder"):
        lp.from_onnx(m)


def test_bitcast_reads_the_bits_and_refuses_other_widths():
    x = np.array([[1.0, -0.0, np.inf], [np.nan, -2.5, 1e-45]], np.float32)
    for to, np_to in ((TensorProto.INT32, np.int32), (TensorProto.UINT32, np.uint32),
                      (TensorProto.FLOAT, np.float32)):
        m = _model([helper.make_node("BitCast", ["a"], ["y"], to=to)], [("a", [2, 3])], ["y"], 26)
        (y,) = lp.from_onnx(m)(x)
        assert y.dtype == np_to and np.array_equal(y.view(np.uint32), x.view(np.uint32))
    m = _model([helper.make_node("BitCast", ["a"], ["y"], to=TensorProto.FLOAT16, name="bc")],
               [("a", [2, 3])], ["y"], 26)
    with pytest.raises(ValueError,
                       match=r"'bc'.*bitcast from f32 \(32 bits\) to f16 \(16 bits\)"):
        lp.from_onnx(m)


@pytest.mark.parametrize("align_corners", [0, 1])
def test_affine_grid_matches_torch(align_corners):
    torch = pytest.importorskip("torch")
    theta = rng.standard_normal((2, 2, 3)).astype(np.float32)
    size = np.array([2, 3, 4, 5], np.int64)
    m = _model([helper.make_node("AffineGrid", ["theta", "size"], ["y"],
                                 align_corners=align_corners)],
               [("theta", [2, 2, 3])], ["y"], 20)
    m.graph.initializer.append(onnx.numpy_helper.from_array(size, "size"))
    (y,) = lp.from_onnx(m)(theta)
    want = torch.nn.functional.affine_grid(torch.from_numpy(theta), list(size),
                                           align_corners=bool(align_corners)).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def _scatter_ref(data, idx, upd, axis, red):
    """ScatterElements by its definition: each update in turn, combined with the output."""
    out = data.copy()
    f = {"mul": np.multiply, "max": np.maximum, "min": np.minimum}[red]
    for pos in np.ndindex(idx.shape):
        at = list(pos)
        at[axis] = idx[pos]
        out[tuple(at)] = f(out[tuple(at)], upd[pos])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("red", ["mul", "max", "min"])
def test_scatter_elements_reductions_with_duplicates(red, dtype):
    data = rng.integers(-5, 6, (3, 4)).astype(dtype)
    idx = np.array([[0, 3, 3], [1, 1, 1], [2, 0, 2]], np.int64)   # repeated columns
    upd = rng.integers(-5, 6, (3, 3)).astype(dtype)
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.INT64
    graph = helper.make_graph(
        [helper.make_node("ScatterElements", ["d", "i", "u"], ["y"], axis=1, reduction=red)],
        "g", [helper.make_tensor_value_info("d", elem, [3, 4]),
              helper.make_tensor_value_info("i", TensorProto.INT64, [3, 3]),
              helper.make_tensor_value_info("u", elem, [3, 3])],
        [helper.make_empty_tensor_value_info("y")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    (y,) = lp.from_onnx(m)(data, idx, upd)
    np.testing.assert_array_equal(y, _scatter_ref(data, idx, upd, 1, red))


@pytest.mark.parametrize("shape,attrs", [
    ((1, 2, 7, 6), dict(kernel_shape=[3, 2], p=3, strides=[2, 1], pads=[1, 0, 1, 1])),
    ((2, 3, 9), dict(kernel_shape=[4], p=1, strides=[2])),
    ((1, 1, 5, 5), dict(kernel_shape=[2, 2], p=2, ceil_mode=1, strides=[2, 2])),
])
def test_lp_pool_matches_onnxruntime(shape, attrs):
    ort = pytest.importorskip("onnxruntime")
    x = rng.standard_normal(shape).astype(np.float32)
    m = _model([helper.make_node("LpPool", ["x"], ["y"], **attrs)], [("x", list(shape))],
               ["y"], 18)
    want = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    (y,) = lp.from_onnx(m)(x)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inverse,onesided,length,complex_in", [
    (0, 0, None, True), (0, 1, 6, False), (1, 0, 9, True), (1, 1, None, True), (1, 1, 7, True),
])
def test_dft_matches_numpy_fft(inverse, onesided, length, complex_in):
    """Opset 20: axis as an input (here 1 of [2, 8, 3, c]), dft_length pads or truncates."""
    shape = (2, 8, 3, 2 if complex_in else 1)
    x = rng.standard_normal(shape).astype(np.float32)
    names = ["x", "n" if length else "", "axis"]
    m = _model([helper.make_node("DFT", names, ["y"], inverse=inverse, onesided=onesided)],
               [("x", list(shape))], ["y"], 20)
    inits = [onnx.numpy_helper.from_array(np.array(1, np.int64), "axis")]
    if length:
        inits.append(onnx.numpy_helper.from_array(np.array(length, np.int64), "n"))
    m.graph.initializer.extend(inits)
    (y,) = lp.from_onnx(m)(x)
    sig = x[..., 0] + (1j * x[..., 1] if complex_in else 0)
    if inverse and onesided:
        want = np.fft.irfft(sig, length or 2 * (shape[1] - 1), axis=1)[..., None]
    else:
        f = np.fft.ifft if inverse else np.fft.fft
        want = f(sig, length or shape[1], axis=1)
        if onesided:
            want = want[:, :(length or shape[1]) // 2 + 1]
        want = np.stack([want.real, want.imag], -1)
    assert y.shape == want.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(dilation=2, stride=(1, 2)),
                                dict(kernel_size=(3, 1), padding=(2, 0))])
def test_col2im_matches_torch_fold(kw):
    torch = pytest.importorskip("torch")
    kw = {"kernel_size": (2, 3), **kw}
    image = (7, 8)
    cols = torch.nn.functional.unfold(torch.randn(2, 3, *image), **kw)   # a valid L
    x = rng.standard_normal(tuple(cols.shape)).astype(np.float32)
    want = torch.nn.functional.fold(torch.from_numpy(x), image, **kw).numpy()
    pair = (lambda v: list(v) if isinstance(v, tuple) else [v, v])
    pads = pair(kw.get("padding", 0))
    m = _model([helper.make_node("Col2Im", ["x", "image", "block"], ["y"],
                                 strides=pair(kw.get("stride", 1)),
                                 dilations=pair(kw.get("dilation", 1)), pads=pads + pads)],
               [("x", list(x.shape))], ["y"], 18)
    m.graph.initializer.extend([
        onnx.numpy_helper.from_array(np.array(image, np.int64), "image"),
        onnx.numpy_helper.from_array(np.array(kw["kernel_size"], np.int64), "block")])
    (y,) = lp.from_onnx(m)(x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,padding,align_corners", [
    (m, p, (i + j) % 2) for i, m in enumerate(["bilinear", "nearest", "bicubic"])
    for j, p in enumerate(["zeros", "border", "reflection"])] + [("bicubic", "border", 0)])
def test_grid_sample_matches_torch(mode, padding, align_corners):
    """Points inside and outside [-1, 1]; opset 16's mode names (20 renamed them)."""
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    grid = rng.uniform(-1.4, 1.4, (2, 4, 7, 2)).astype(np.float32)
    m = _model([helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode,
                                 padding_mode=padding, align_corners=align_corners)],
               [("x", list(x.shape)), ("g", list(grid.shape))], ["y"], 16)
    (y,) = lp.from_onnx(m)(x, grid)
    want = torch.nn.functional.grid_sample(torch.from_numpy(x), torch.from_numpy(grid), mode=mode,
                                           padding_mode=padding,
                                           align_corners=bool(align_corners)).numpy()
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


def _loop_model(body_nodes, body_outs, n_scan, trip=True, cond_input=True, extra_inputs=()):
    """Loop(M, cond, y[3]) whose body (i, c, y) -> (c', y', scans...) is body_nodes."""
    f = TensorProto.FLOAT
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y", f, [3])],
        [helper.make_empty_tensor_value_info(o) for o in body_outs])
    ins = ["M" if trip else "", "cond" if cond_input else "", "y0"]
    outs = ["y_final"] + [f"scan{j}" for j in range(n_scan)]
    graph = helper.make_graph(
        [helper.make_node("Loop", ins, outs, body=body)], "g",
        ([helper.make_tensor_value_info("M", TensorProto.INT64, [])] if trip else [])
        + ([helper.make_tensor_value_info("cond", TensorProto.BOOL, [])] if cond_input else [])
        + [helper.make_tensor_value_info("y0", f, [3])] + list(extra_inputs),
        [helper.make_empty_tensor_value_info(o) for o in outs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _step_nodes():
    """y' = y * 0.5 + i (as float); the scan output is y'."""
    return [helper.make_node("Cast", ["i"], ["fi"], to=TensorProto.FLOAT),
            helper.make_node("Constant", [], ["half"], value_float=0.5),
            helper.make_node("Mul", ["y", "half"], ["yh"]),
            helper.make_node("Add", ["yh", "fi"], ["y2"]),
            helper.make_node("Identity", ["c"], ["c2"]),
            helper.make_node("Identity", ["y2"], ["s"])]


@pytest.mark.parametrize("trips", [5, 100])   # unrolled, and lp.scan past UNROLL
def test_loop_with_scan_outputs_matches_numpy(trips):
    m = _loop_model(_step_nodes(), ["c2", "y2", "s"], 1)
    y0 = rng.standard_normal(3).astype(np.float32)
    y, ys = y0.astype(np.float64), []
    for i in range(trips):
        y = y * 0.5 + i
        ys.append(y)
    f = lp.from_onnx(m)
    got_y, got_s = f(np.array(trips, np.int64), np.array(True), y0)
    np.testing.assert_allclose(got_y, y, rtol=1e-5)
    np.testing.assert_allclose(got_s, np.stack(ys), rtol=1e-5)


def test_loop_with_a_data_dependent_exit_runs_as_a_while_loop():
    """No trip count; the body stops once sum(y) >= limit (a graph input): lp.while_loop."""
    nodes = [helper.make_node("Constant", [], ["two"], value_float=2.0),
             helper.make_node("Mul", ["y", "two"], ["y2"]),
             helper.make_node("ReduceSum", ["y2"], ["tot"], keepdims=0),
             helper.make_node("Less", ["tot", "limit"], ["c2"])]
    m = _loop_model(nodes, ["c2", "y2"], 0, trip=False, extra_inputs=[
        helper.make_tensor_value_info("limit", TensorProto.FLOAT, [])])
    f = lp.from_onnx(m)
    y0 = np.array([0.5, 1.0, 0.25], np.float32)
    for limit in (1.0, 30.0, 1000.0):
        y = y0.copy()
        while True:
            y = y * 2
            if not y.sum() < limit:
                break
        (got,) = f(np.array(True), y0, np.array(limit, np.float32))
        np.testing.assert_allclose(got, y)
    (got,) = f(np.array(False), y0, np.array(1000.0, np.float32))   # no iteration
    np.testing.assert_allclose(got, y0)


def test_loop_scan_outputs_with_a_data_dependent_exit_are_refused():
    nodes = [helper.make_node("ReduceSum", ["y"], ["tot"], keepdims=0),
             helper.make_node("Constant", [], ["lim"], value_float=3.0),
             helper.make_node("Less", ["tot", "lim"], ["c2"]),
             helper.make_node("Identity", ["y"], ["y2"]),
             helper.make_node("Identity", ["y"], ["s"])]
    m = _loop_model(nodes, ["c2", "y2", "s"], 1)
    f = lp.from_onnx(m)
    with pytest.raises(NotImplementedError, match="Loop.*scan outputs"):
        f(np.array(4, np.int64), np.array(True), np.ones(3, np.float32))


def _random_model(node, inputs=()):
    return _model([node], inputs, ["y"] + list(node.output[1:]), 22)


def test_random_uniform_and_normal_draw_new_numbers_each_call():
    f = lp.from_onnx(_random_model(helper.make_node(
        "RandomUniform", [], ["y"], shape=[200, 50], low=-2.0, high=3.0)))
    (a,), (b,) = f(), f()
    assert a.shape == (200, 50) and a.dtype == np.float32 and not np.array_equal(a, b)
    assert a.min() >= -2 and a.max() <= 3 and abs(a.mean() - 0.5) < 0.05
    g = lp.from_onnx(_random_model(helper.make_node(
        "RandomNormalLike", ["x"], ["y"], mean=1.0, scale=2.0, dtype=TensorProto.DOUBLE),
        [("x", [100, 100])]))
    (z,) = g(np.zeros((100, 100), np.float32))
    assert z.dtype == np.float64 and abs(z.mean() - 1) < 0.06 and abs(z.std() - 2) < 0.06


def test_a_seed_gives_the_same_numbers_every_call():
    m = _random_model(helper.make_node("RandomNormal", [], ["y"], shape=[4, 3], seed=7.0))
    (a,), (b,) = lp.from_onnx(m)(), lp.from_onnx(m)()
    np.testing.assert_array_equal(a, b)


def test_bernoulli_frequencies_and_edges():
    p = np.concatenate([np.zeros(1000), np.ones(1000), np.full(20000, 0.3)]).astype(np.float32)
    f = lp.from_onnx(_random_model(helper.make_node("Bernoulli", ["p"], ["y"]),
                                   [("p", [p.size])]))
    (y,) = f(p)
    assert y.dtype == np.float32
    assert (y[:1000] == 0).all() and (y[1000:2000] == 1).all()
    assert abs(y[2000:].mean() - 0.3) < 0.02


def test_dropout_training_mode_scales_the_kept_values():
    x = rng.standard_normal((100, 100)).astype(np.float32)
    node = helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])
    m = _random_model(node, [("x", [100, 100])])
    m.graph.initializer.extend([onnx.numpy_helper.from_array(np.array(0.25, np.float32), "r"),
                                onnx.numpy_helper.from_array(np.array(True), "t")])
    f = lp.from_onnx(m)
    y, mask = f(x)
    assert mask.dtype == np.bool_ and abs(mask.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y, np.where(mask, x / 0.75, 0), rtol=1e-6)
    assert not np.array_equal(mask, f(x)[1])


def test_max_unpool_matches_torch_with_overlapping_windows():
    """Kernel 3, stride 2: windows overlap, so an index can come twice (same value)."""
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 9, 8)
    pooled, idx = torch.nn.functional.max_pool2d(x, 3, 2, return_indices=True)
    want = torch.nn.functional.max_unpool2d(pooled, idx, 3, 2, output_size=(9, 8)).numpy()
    plane = (np.arange(2 * 3).reshape(2, 3, 1, 1) * 9 * 8)       # ONNX's flat indices
    m = _model([helper.make_node("MaxUnpool", ["x", "i", "shape"], ["y"], kernel_shape=[3, 3],
                                 strides=[2, 2])],
               [("x", list(pooled.shape))], ["y"], 22)
    m.graph.input.append(helper.make_tensor_value_info("i", TensorProto.INT64,
                                                       list(pooled.shape)))
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array([2, 3, 9, 8], np.int64),
                                                            "shape"))
    (y,) = lp.from_onnx(m)(pooled.numpy(), idx.numpy() + plane)
    np.testing.assert_allclose(y, want)


def test_det_matches_numpy():
    a = rng.standard_normal((4, 5, 5)).astype(np.float64)
    a[1, 0, 0] = 0.0                                 # needs a row swap
    a[2, 3] = a[2, 1] * 2                            # singular
    a[3] = np.eye(5)[[1, 0, 2, 4, 3]]                # a permutation: +1
    m = _model([helper.make_node("Det", ["a"], ["y"])], [("a", [4, 5, 5])], ["y"], 22)
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    (y,) = lp.from_onnx(m)(a)
    np.testing.assert_allclose(y, np.linalg.det(a), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode,axis,writes", [
    ("linear", 2, [0, 3, 5]), ("circular", 2, [6, 2, 13]), ("circular", 1, [-1, 7, 0]),
    ("linear", -2, None)])
def test_tensor_scatter_matches_onnx_reference(mode, axis, writes):
    from onnx.reference import ReferenceEvaluator
    cache = rng.standard_normal((3, 4, 8, 5)).astype(np.float32)
    upd_shape = list(cache.shape)
    upd_shape[axis] = 3
    upd = rng.standard_normal(upd_shape).astype(np.float32)
    names = ["c", "u"] + (["w"] if writes is not None else [])
    m = _model([helper.make_node("TensorScatter", names, ["y"], mode=mode, axis=axis)],
               [("c", list(cache.shape)), ("u", upd_shape)], ["y"], 24)
    feeds = {"c": cache, "u": upd}
    if writes is not None:
        m.graph.input.append(helper.make_tensor_value_info("w", TensorProto.INT64, [3]))
        feeds["w"] = np.array(writes, np.int64)
    want = ReferenceEvaluator(m).run(None, feeds)[0]
    (y,) = lp.from_onnx(m)(*feeds.values())
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("with_window", [False, True])
def test_stft_matches_torch(with_window):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 40)).astype(np.float32)
    w = np.hanning(16).astype(np.float32)
    names = ["x", "step", "w" if with_window else "", "" if with_window else "len"]
    m = _model([helper.make_node("STFT", names, ["y"])], [("x", [2, 40, 1])], ["y"], 17)
    inits = [onnx.numpy_helper.from_array(np.array(6, np.int64), "step")]
    inits.append(onnx.numpy_helper.from_array(w, "w") if with_window else
                 onnx.numpy_helper.from_array(np.array(16, np.int64), "len"))
    m.graph.initializer.extend(inits)
    (y,) = lp.from_onnx(m)(x[..., None])
    want = torch.stft(torch.from_numpy(x), 16, 6, 16,
                      torch.from_numpy(w) if with_window else torch.ones(16), center=False,
                      onesided=True, return_complex=True).transpose(1, 2).numpy()
    np.testing.assert_allclose(y, np.stack([want.real, want.imag], -1), rtol=1e-4, atol=1e-4)


def test_deform_conv_with_groups_strides_dilations_matches_onnx_reference():
    from onnx.reference import ReferenceEvaluator
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 2, 3)).astype(np.float32)          # group 2
    oh, ow = 4, 1                     # (7 + 2 - 2) // 2 + 1, (6 + 0 - 5) // 2 + 1 (dilation 2)
    off = (2 * rng.standard_normal((2, 2 * 2 * 6, oh, ow))).astype(np.float32)
    mask = rng.uniform(0, 1, (2, 2 * 6, oh, ow)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    m = _model([helper.make_node("DeformConv", ["x", "w", "o", "b", "m"], ["y"], group=2,
                                 offset_group=2, strides=[2, 2], dilations=[1, 2],
                                 pads=[1, 0, 1, 0])],
               [("x", list(x.shape)), ("w", list(w.shape)), ("o", list(off.shape)),
                ("b", [6]), ("m", list(mask.shape))], ["y"], 22)
    want = ReferenceEvaluator(m).run(None, {"x": x, "w": w, "o": off, "b": b, "m": mask})[0]
    (y,) = lp.from_onnx(m)(x, w, off, b, mask)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode,ctm", [("avg", "half_pixel"), ("max", "output_half_pixel"),
                                      ("avg", "output_half_pixel")])
def test_roi_align_matches_onnxruntime(mode, ctm):
    ort = pytest.importorskip("onnxruntime")
    x = rng.standard_normal((2, 3, 12, 10)).astype(np.float32)
    rois = np.array([[1, 2, 15, 18], [0, 0, 19, 23], [-3, 4, 9, 7], [5.5, 1.2, 6.0, 3.3]],
                    np.float32)
    bidx = np.array([0, 1, 1, 0], np.int64)
    m = _model([helper.make_node("RoiAlign", ["x", "r", "b"], ["y"], mode=mode,
                                 coordinate_transformation_mode=ctm, output_height=3,
                                 output_width=4, sampling_ratio=2, spatial_scale=0.5)],
               [("x", list(x.shape)), ("r", [4, 4])], ["y"], 16)
    m.graph.input.append(helper.make_tensor_value_info("b", TensorProto.INT64, [4]))
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x, "r": rois, "b": bidx})[0]
    (y,) = lp.from_onnx(m)(x, rois, bidx)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["TF", "IDF", "TFIDF"])
def test_tfidf_vectorizer_matches_onnxruntime(mode):
    ort = pytest.importorskip("onnxruntime")
    x = rng.integers(0, 5, (3, 14)).astype(np.int64)
    pool = [1, 2, 3,  0, 1, 2, 2, 4, 4,  1, 2, 3, 0, 0, 0]    # 3 unigrams, 3 bigrams, 2 trigrams
    attrs = dict(mode=mode, min_gram_length=1, max_gram_length=3, max_skip_count=2,
                 ngram_counts=[0, 3, 9], ngram_indexes=[7, 0, 1, 2, 3, 4, 5, 6],
                 pool_int64s=pool, weights=[0.5, 1, 2, 3, 0.25, 1.5, 2, 0.1])
    m = _model([helper.make_node("TfIdfVectorizer", ["x"], ["y"], **attrs)], [], ["y"], 9)
    m.graph.input.append(helper.make_tensor_value_info("x", TensorProto.INT64, [3, 14]))
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    (y,) = lp.from_onnx(m)(x)
    np.testing.assert_allclose(y, want, rtol=1e-6)


def test_batch_norm_training_mode_uses_batch_statistics():
    x = rng.standard_normal((4, 3, 5, 2)).astype(np.float32)
    sc, b, mu, var = (rng.standard_normal(3).astype(np.float32) for _ in range(4))
    var = np.abs(var) + 0.5
    m = _model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"],
                                 ["y", "rm", "rv"], training_mode=1, momentum=0.8,
                                 epsilon=1e-3)],
               [("x", list(x.shape)), ("s", [3]), ("b", [3]), ("m", [3]), ("v", [3])],
               ["y", "rm", "rv"], 15)
    y, rm, rv = lp.from_onnx(m)(x, sc, b, mu, var)
    bm, bv = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    want = (x - bm[:, None, None]) / np.sqrt(bv[:, None, None] + 1e-3) * sc[:, None, None] \
        + b[:, None, None]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rm, mu * 0.8 + bm * 0.2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, var * 0.8 + bv * 0.2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_opset9_matches_onnxruntime(mode):
    ort = pytest.importorskip("onnxruntime")
    x = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    m = _model([helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)],
               [("x", list(x.shape))], ["y"], 9)
    m.graph.initializer.append(onnx.numpy_helper.from_array(
        np.array([1, 1, 2, 1.5], np.float32), "s"))
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    (y,) = lp.from_onnx(m)(x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_mel_weight_matrix_matches_onnx_reference():
    from onnx.reference import ReferenceEvaluator
    vals = [np.array(10, np.int64), np.array(64, np.int64), np.array(16000, np.int64),
            np.array(20.0, np.float32), np.array(7000.0, np.float32)]
    names = ["bins", "n", "rate", "lo", "hi"]
    m = _model([helper.make_node("MelWeightMatrix", names, ["y"])], [], ["y"], 17)
    m.graph.initializer.extend(onnx.numpy_helper.from_array(v, k) for k, v in zip(names, vals))
    want = ReferenceEvaluator(m).run(None, {})[0]
    (y,) = lp.from_onnx(m)()
    assert y.shape == want.shape == (33, 10)
    np.testing.assert_allclose(y, want, rtol=1e-6)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
                                dict(kernel_size=2, stride=2, ceil_mode=True)])
def test_max_pool_indices_match_torch(kw):
    torch = pytest.importorskip("torch")
    x = torch.randn(2, 3, 7, 8)
    want_y, want_i = torch.nn.functional.max_pool2d(x, return_indices=True, **kw)
    pair = (lambda v: list(v) if isinstance(v, tuple) else [v, v])
    pads = pair(kw.get("padding", 0))
    m = _model([helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=pair(kw["kernel_size"]),
                                 strides=pair(kw["stride"]), pads=pads + pads,
                                 dilations=pair(kw.get("dilation", 1)),
                                 ceil_mode=int(kw.get("ceil_mode", False)))],
               [("x", [2, 3, 7, 8])], ["y", "i"], 12)
    y, i = lp.from_onnx(m)(x.numpy())
    planes = (np.arange(6) * 7 * 8).reshape(2, 3, 1, 1)      # ONNX's indices span N and C
    np.testing.assert_allclose(y, want_y.numpy())
    np.testing.assert_array_equal(i, want_i.numpy() + planes)
