"""The ONNX frontend: every mapped op alone against a NumPy reference (and onnxruntime when it is
installed), small whole models (MLP, convnet, transformer block, a torch-export-style shape
chain), symbolic dims, and the errors (unsupported op/attribute, wrong inputs)."""
import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import lepton as lp  # noqa: E402
from lepton.compile import from_onnx as load  # noqa: E402

try:
    import onnxruntime as ort
except ImportError:  # onnxruntime is an optional second reference
    ort = None

ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
        np.dtype(np.int32): TensorProto.INT32, np.dtype(np.int64): TensorProto.INT64,
        np.dtype(np.bool_): TensorProto.BOOL}


# -- building models ---------------------------------------------------------------------------
class C:
    """An argument that becomes an initializer (a constant) instead of a graph input."""
    def __init__(self, value):
        self.value = np.asarray(value)


def make_model(nodes, inputs, outputs, inits=(), opset=20):
    """inputs: [(name, array or (dtype, dims))]; inits: [(name, array)]; outputs: names."""
    def info(name, a):
        dtype, dims = (a.dtype, list(a.shape)) if isinstance(a, np.ndarray) else a
        return helper.make_tensor_value_info(name, ELEM[np.dtype(dtype)], dims)
    graph = helper.make_graph(nodes, "test_graph", [info(n, a) for n, a in inputs],
                              [helper.make_empty_tensor_value_info(o) for o in outputs],
                              [numpy_helper.from_array(np.asarray(a), n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def single_op(op, args, attrs=None, opset=20, n_out=1):
    """A one-node model; args are arrays (graph inputs), C(array) (initializers) or None
    (omitted optional inputs). Returns (model, the graph inputs' arrays)."""
    names, inputs, inits = [], [], []
    for i, a in enumerate(args):
        if a is None:
            names.append("")
            continue
        names.append(f"in{i}")
        (inits if isinstance(a, C) else inputs).append(
            (f"in{i}", a.value if isinstance(a, C) else a))
    outs = [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, name=f"the_{op.lower()}", **(attrs or {}))
    return make_model([node], inputs, outs, inits, opset), [a for _, a in inputs]


def ort_run(model, arrays):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, arrays)))


def assert_same(got, want, rtol, atol, what):
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, \
        f"{what}: got {got.dtype}{got.shape}, expected {want.dtype}{want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def run_and_compare(model, arrays, expected, rtol=1e-5, atol=1e-6, use_ort=True):
    got = lp.from_onnx(model)(*arrays)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected)):
        assert_same(g, e, rtol, atol, f"output {k} vs NumPy")
    if ort is not None and use_ort:
        for k, (g, e) in enumerate(zip(got, ort_run(model, arrays))):
            assert_same(g, e, rtol, atol, f"output {k} vs onnxruntime")
    return got


# -- data --------------------------------------------------------------------------------------
rng = np.random.default_rng(0)


def r(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def pos(*shape):
    return rng.uniform(0.5, 2.0, shape).astype(np.float32)


def ints(*shape, lo=-5, hi=6, dtype=np.int64):
    return rng.integers(lo, hi, shape).astype(dtype)


def bools(*shape):
    return rng.random(shape) < 0.5


def i64(*v):
    return C(np.array(v, np.int64))


def f32(v):
    return C(np.array(v, np.float32))


def erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def window_ref(x, k, s, lo, hi, fill, reduce):
    """Pooling reference over (N, C, H, W) with explicit per-side pads."""
    xp = np.pad(x, ((0, 0), (0, 0), (lo[0], hi[0]), (lo[1], hi[1])), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    return reduce(v, axis=(4, 5))


def conv_ref(x, w, b=None, stride=(1, 1), lo=(0, 0), hi=(0, 0), dil=(1, 1), group=1):
    xp = np.pad(x, ((0, 0), (0, 0), (lo[0], hi[0]), (lo[1], hi[1])))
    o, cg, kh, kw = w.shape
    ext = ((kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1)
    v = np.lib.stride_tricks.sliding_window_view(xp, ext, axis=(2, 3))
    v = v[:, :, ::stride[0], ::stride[1], ::dil[0], ::dil[1]]
    n, c, ho, wo = v.shape[:4]
    v = v.reshape(n, group, c // group, ho, wo, kh, kw)
    y = np.einsum("ngchwij,gocij->ngohw", v, w.reshape(group, o // group, cg, kh, kw))
    y = y.reshape(n, o, ho, wo)
    return (y if b is None else y + b.reshape(1, -1, 1, 1)).astype(np.float32)


def conv_transpose_ref(x, w, stride, padding, output_padding):
    from lepton.ir.ops import OPS
    return OPS["conv_transpose2d"].ref([x, w], dict(
        stride=stride, padding=padding, output_padding=output_padding, dilation=(1, 1),
        groups=1))


def softmax_ref(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layer_norm_ref(x, axes, scale, bias, eps=1e-5):
    mu = x.mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(((x - mu) ** 2).mean(axis=axes, keepdims=True) + eps)
    y = (x - mu) * inv * scale
    return (y if bias is None else y + bias), mu, inv


# -- every op alone ----------------------------------------------------------------------------
# (id, op, args, attrs, reference(*all args as arrays), options)
X, Y, P = r(3, 4), r(3, 4), pos(3, 4)
IMG, W33, B4 = r(2, 3, 7, 8), r(4, 3, 3, 3), r(4)
A3 = r(2, 3, 5)
CASES = [
    ("Add", "Add", [X, r(4)], {}, np.add),
    ("Add-f64", "Add", [r(3, 4, dtype=np.float64), r(4, dtype=np.float64)], {}, np.add),
    ("Sub", "Sub", [X, Y], {}, np.subtract),
    ("Mul", "Mul", [X, C(r(3, 1))], {}, np.multiply),
    ("Div", "Div", [X, P], {}, np.divide),
    ("Div-int", "Div", [ints(3, 4, lo=0, hi=50), ints(3, 4, lo=1, hi=7)], {},
     lambda a, b: a // b),
    ("Mod-int", "Mod", [ints(3, 4, lo=-20, hi=20), C(np.array([3, -3, 4, -7], np.int64))], {},
     np.mod),
    ("Mod-fmod", "Mod", [X * 10, P], {"fmod": 1}, np.fmod),
    ("Pow", "Pow", [P, r(3, 4)], {}, np.power),
    ("Pow-const-2", "Pow", [X, f32(2.0)], {}, lambda a, b: a * a),
    ("Pow-broadcasting-const", "Pow", [X, f32([[[3.0]]])], {}, np.power),
    ("Pow-int-exp", "Pow", [P, C(np.array(3, np.int64))], {},
     lambda a, b: (a ** 3).astype(np.float32)),
    ("Neg", "Neg", [X], {}, np.negative),
    ("Abs", "Abs", [ints(3, 4)], {}, np.abs),
    ("Exp", "Exp", [X], {}, np.exp),
    ("Log", "Log", [P], {}, np.log),
    ("Sqrt", "Sqrt", [P], {}, np.sqrt),
    ("Reciprocal", "Reciprocal", [P], {}, lambda a: 1 / a),
    ("Tanh", "Tanh", [X], {}, np.tanh),
    ("Sigmoid", "Sigmoid", [X], {}, lambda a: 1 / (1 + np.exp(-a))),
    ("Relu", "Relu", [X], {}, lambda a: np.maximum(a, 0)),
    ("LeakyRelu", "LeakyRelu", [X], {"alpha": 0.2}, lambda a: np.where(a < 0, 0.2 * a, a)),
    ("Erf", "Erf", [X], {}, lambda a: erf(a).astype(np.float32)),
    ("Sin", "Sin", [X], {}, np.sin),
    ("Cos", "Cos", [X], {}, np.cos),
    ("Elu", "Elu", [X], {"alpha": 0.5}, lambda a: np.where(a > 0, a, 0.5 * (np.exp(a) - 1))),
    ("Softplus", "Softplus", [X * 10], {}, lambda a: np.logaddexp(a, 0).astype(np.float32)),
    ("HardSigmoid", "HardSigmoid", [X * 4], {"alpha": 0.3, "beta": 0.4},
     lambda a: np.clip(0.3 * a + 0.4, 0, 1)),
    ("HardSwish", "HardSwish", [X * 4], {}, lambda a: a * np.clip(a / 6 + 0.5, 0, 1)),
    ("Max", "Max", [X, Y, r(4)], {}, lambda a, b, c: np.maximum(np.maximum(a, b), c)),
    ("Min", "Min", [X, Y], {}, np.minimum),
    ("Sum", "Sum", [X, Y, C(r(3, 4))], {}, lambda a, b, c: a + b + c),
    ("Mean", "Mean", [X, Y], {}, lambda a, b: (a + b) / 2),
    ("Where", "Where", [bools(3, 4), X, r(4)], {}, np.where),
    ("Clip-inputs", "Clip", [X, f32(-0.5), f32(0.7)], {}, lambda a, lo, hi: np.clip(a, lo, hi)),
    ("Clip-max-only", "Clip", [X, None, f32(0.3)], {}, lambda a, hi: np.minimum(a, hi)),
    ("Clip-attrs-opset6", "Clip", [X], {"min": -0.2, "max": 0.4},
     lambda a: np.clip(a, -0.2, 0.4), {"opset": 6}),
    ("Equal", "Equal", [ints(3, 4, lo=0, hi=3), ints(4, lo=0, hi=3)], {}, np.equal),
    ("Less", "Less", [X, Y], {}, np.less),
    ("Greater", "Greater", [X, C(r(3, 4))], {}, np.greater),
    ("LessOrEqual", "LessOrEqual", [X, np.round(Y)], {}, np.less_equal),
    ("GreaterOrEqual", "GreaterOrEqual", [X, np.round(Y)], {}, np.greater_equal),
    ("Not", "Not", [bools(3, 4)], {}, np.logical_not),
    ("And", "And", [bools(3, 4), bools(3, 4)], {}, np.logical_and),
    ("Or", "Or", [bools(3, 4), bools(4)], {}, np.logical_or),
    ("Xor", "Xor", [bools(3, 4), bools(3, 4)], {}, np.logical_xor),
    ("Cast-f32-i32", "Cast", [X * 5], {"to": TensorProto.INT32}, lambda a: a.astype(np.int32)),
    ("Cast-i64-f64", "Cast", [ints(3, 4)], {"to": TensorProto.DOUBLE},
     lambda a: a.astype(np.float64)),
    ("Cast-f32-bool", "Cast", [np.round(X)], {"to": TensorProto.BOOL},
     lambda a: a.astype(bool)),
    ("CastLike", "CastLike", [ints(3, 4), C(np.zeros(1, np.float32))], {},
     lambda a, b: a.astype(np.float32)),
    ("MatMul", "MatMul", [r(3, 5), C(r(5, 4))], {}, np.matmul),
    ("MatMul-batched", "MatMul", [r(2, 3, 5), r(5, 4)], {}, np.matmul),
    ("MatMul-vector", "MatMul", [r(2, 3, 5), r(5)], {}, np.matmul),
    ("Gemm", "Gemm", [r(5, 3), C(r(4, 5)), C(r(4))],
     {"alpha": 0.5, "beta": 2.0, "transA": 1, "transB": 1},
     lambda a, b, c: 0.5 * a.T @ b.T + 2.0 * c),
    ("Gemm-no-C", "Gemm", [r(3, 5), r(5, 4)], {}, np.matmul),
    ("Conv", "Conv", [IMG, C(W33), C(B4)], {"pads": [1, 1, 1, 1]},
     lambda x, w, b: conv_ref(x, w, b, lo=(1, 1), hi=(1, 1)), {"rtol": 1e-4, "atol": 1e-5}),
    ("Conv-strided-dilated", "Conv", [IMG, C(W33)],
     {"strides": [2, 1], "dilations": [1, 2], "kernel_shape": [3, 3]},
     lambda x, w: conv_ref(x, w, stride=(2, 1), dil=(1, 2)), {"rtol": 1e-4, "atol": 1e-5}),
    ("ConvTranspose", "ConvTranspose", [IMG, C(r(3, 2, 3, 3)), C(r(2))],
     {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
     lambda x, w, b: conv_transpose_ref(x, w, (2, 2), (1, 1), (1, 1)) + b[:, None, None],
     {"rtol": 1e-4, "atol": 1e-5}),
    ("Resize-nearest", "Resize", [IMG, None, C(np.array([1, 1, 2, 3], np.float32))], {},
     lambda x, scales: np.repeat(np.repeat(x, 2, axis=2), 3, axis=3)),
    ("Conv-group", "Conv", [r(1, 4, 6, 6), C(r(6, 2, 3, 3)), C(r(6))],
     {"group": 2, "pads": [1, 0, 1, 0]},
     lambda x, w, b: conv_ref(x, w, b, lo=(1, 0), hi=(1, 0), group=2),
     {"rtol": 1e-4, "atol": 1e-5}),
    ("Conv-asymmetric-pads", "Conv", [IMG, C(W33)], {"pads": [0, 2, 1, 0]},
     lambda x, w: conv_ref(x, w, lo=(0, 2), hi=(1, 0)), {"rtol": 1e-4, "atol": 1e-5}),
    ("Conv-VALID", "Conv", [IMG, C(W33)], {"auto_pad": "VALID"},
     lambda x, w: conv_ref(x, w), {"rtol": 1e-4, "atol": 1e-5}),
    ("Conv-SAME_UPPER", "Conv", [IMG, C(r(4, 3, 2, 2))], {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
     lambda x, w: conv_ref(x, w, stride=(2, 2), lo=(0, 0), hi=(1, 0)),
     {"rtol": 1e-4, "atol": 1e-5}),
    ("Conv-1d", "Conv", [r(2, 3, 9), C(r(5, 3, 3))], {"pads": [1, 0], "strides": [2]},
     lambda x, w: conv_ref(x[:, :, None], w[:, :, None], stride=(1, 2), lo=(0, 1))[:, :, 0],
     {"rtol": 1e-4, "atol": 1e-5}),
    ("MaxPool", "MaxPool", [IMG], {"kernel_shape": [2, 2], "strides": [2, 2]},
     lambda x: window_ref(x, (2, 2), (2, 2), (0, 0), (0, 0), -np.inf, np.max)),
    ("MaxPool-padded", "MaxPool", [IMG], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
     lambda x: window_ref(x, (3, 3), (1, 1), (1, 1), (1, 1), -np.inf, np.max)),
    ("MaxPool-asymmetric", "MaxPool", [IMG - 5], {"kernel_shape": [2, 3], "pads": [1, 0, 0, 2],
                                                  "strides": [2, 2]},
     lambda x: window_ref(x, (2, 3), (2, 2), (1, 0), (0, 2), -np.inf, np.max)),
    ("MaxPool-SAME_UPPER", "MaxPool", [IMG], {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER"},
     lambda x: window_ref(x, (2, 2), (1, 1), (0, 0), (1, 1), -np.inf, np.max)),
    ("MaxPool-1d", "MaxPool", [r(2, 3, 9)], {"kernel_shape": [3], "strides": [2]},
     lambda x: window_ref(x[:, :, None], (1, 3), (1, 2), (0, 0), (0, 0), 0, np.max)[:, :, 0]),
    ("AveragePool", "AveragePool", [IMG], {"kernel_shape": [2, 2], "strides": [2, 2]},
     lambda x: window_ref(x, (2, 2), (2, 2), (0, 0), (0, 0), 0, np.mean)),
    ("AveragePool-padded", "AveragePool", [IMG], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
     lambda x: window_ref(x, (3, 3), (1, 1), (1, 1), (1, 1), 0, np.sum)
     / window_ref(np.ones_like(x), (3, 3), (1, 1), (1, 1), (1, 1), 0, np.sum)),
    ("AveragePool-asymmetric", "AveragePool", [IMG],
     {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0], "strides": [1, 2]},
     lambda x: window_ref(x, (3, 2), (1, 2), (0, 1), (2, 0), 0, np.sum)
     / window_ref(np.ones_like(x), (3, 2), (1, 2), (0, 1), (2, 0), 0, np.sum)),
    ("AveragePool-count_include_pad", "AveragePool", [IMG],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     lambda x: window_ref(x, (3, 3), (1, 1), (1, 1), (1, 1), 0, np.mean)),
    ("GlobalAveragePool", "GlobalAveragePool", [IMG], {},
     lambda x: x.mean(axis=(2, 3), keepdims=True)),
    ("GlobalMaxPool", "GlobalMaxPool", [IMG], {}, lambda x: x.max(axis=(2, 3), keepdims=True)),
    ("BatchNormalization", "BatchNormalization", [IMG, C(r(3)), C(r(3)), C(r(3)), C(pos(3))],
     {"epsilon": 1e-3},
     lambda x, s, b, m, v: ((x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-3)
                            * s[:, None, None] + b[:, None, None]),
     {"rtol": 1e-4, "atol": 1e-5}),
    ("LayerNormalization", "LayerNormalization", [A3, C(r(5)), C(r(5))], {},
     lambda x, s, b: layer_norm_ref(x, (2,), s, b)[0], {"rtol": 1e-4, "atol": 1e-5}),
    ("LayerNormalization-axis1-stats", "LayerNormalization", [A3, C(r(3, 5))],
     {"axis": 1, "epsilon": 1e-3}, lambda x, s: layer_norm_ref(x, (1, 2), s, None, 1e-3),
     {"rtol": 1e-4, "atol": 1e-5, "n_out": 3}),
    ("Gelu", "Gelu", [X], {}, lambda a: (0.5 * a * (1 + erf(a / np.sqrt(2)))).astype(np.float32)),
    ("Gelu-tanh", "Gelu", [X], {"approximate": "tanh"},
     lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))),
    ("Softmax", "Softmax", [A3], {"axis": 1}, lambda x: softmax_ref(x, 1)),
    ("Softmax-f64", "Softmax", [A3.astype(np.float64)], {}, lambda x: softmax_ref(x, -1),
     {"rtol": 1e-12, "atol": 1e-14}),
    ("Softmax-opset11-flattens", "Softmax", [A3], {},
     lambda x: softmax_ref(x.reshape(2, 15), 1).reshape(2, 3, 5), {"opset": 11}),
    ("LogSoftmax", "LogSoftmax", [A3], {},
     lambda x: np.log(softmax_ref(x.astype(np.float64), -1)).astype(np.float32)),
    ("Dropout", "Dropout", [X, f32(0.3)], {},
     lambda x, p: (x, np.ones(x.shape, bool)), {"n_out": 2}),
    ("Identity", "Identity", [X], {}, lambda a: a),
    ("Flatten", "Flatten", [A3], {}, lambda x: x.reshape(2, 15)),
    ("Flatten-axis0", "Flatten", [A3], {"axis": 0}, lambda x: x.reshape(1, 30)),
    ("Flatten-axis-neg", "Flatten", [IMG], {"axis": -1}, lambda x: x.reshape(-1, 8)),
    ("Reshape", "Reshape", [A3, i64(0, -1, 1)], {}, lambda x, s: x.reshape(2, 15, 1)),
    ("Transpose", "Transpose", [A3], {"perm": [1, 2, 0]}, lambda x: x.transpose(1, 2, 0)),
    ("Transpose-default", "Transpose", [A3], {}, lambda x: x.T),
    ("Squeeze", "Squeeze", [r(3, 1, 4, 1), i64(-1)], {}, lambda x, a: x[:, :, :, 0]),
    ("Squeeze-all", "Squeeze", [r(3, 1, 4, 1)], {}, lambda x: x[:, 0, :, 0]),
    ("Squeeze-attr-opset11", "Squeeze", [r(3, 1, 4, 1)], {"axes": [1]},
     lambda x: x[:, 0], {"opset": 11}),
    ("Unsqueeze", "Unsqueeze", [X, i64(0, -1)], {}, lambda x, a: x[None, :, :, None]),
    ("Unsqueeze-attr-opset11", "Unsqueeze", [X], {"axes": [1]},
     lambda x: x[:, None], {"opset": 11}),
    ("Concat", "Concat", [X, C(r(3, 2)), r(3, 1)], {"axis": -1},
     lambda *xs: np.concatenate(xs, axis=-1)),
    ("Split", "Split", [r(7, 4), i64(2, 5)], {"axis": 0},
     lambda x, s: (x[:2], x[2:]), {"n_out": 2}),
    ("Split-equal", "Split", [r(3, 6)], {"axis": 1},
     lambda x: (x[:, :2], x[:, 2:4], x[:, 4:]), {"n_out": 3, "opset": 13}),
    ("Split-num_outputs-opset18", "Split", [r(7, 2)], {"num_outputs": 3},
     lambda x: (x[:3], x[3:6], x[6:]), {"n_out": 3, "opset": 18}),
    ("Split-attr-opset11", "Split", [r(3, 6)], {"axis": 1, "split": [1, 5]},
     lambda x: (x[:, :1], x[:, 1:]), {"n_out": 2, "opset": 11}),
    ("Slice", "Slice", [r(5, 6, 7), i64(1, -1, 9), i64(4, -100, 2**62), i64(0, 1, -1),
                        i64(2, -2, 1)], {},
     lambda x, *_: x[1:4:2, -1:-100:-2, 9::1][:, :, :]),
    ("Slice-no-axes", "Slice", [r(5, 6), i64(1, 0), i64(3, 4)], {}, lambda x, *_: x[1:3, 0:4]),
    ("Slice-attrs-opset9", "Slice", [r(5, 6)], {"starts": [1], "ends": [1000], "axes": [1]},
     lambda x: x[:, 1:], {"opset": 9}),
    ("Gather", "Gather", [A3, i64([[0, -1], [2, 1]])], {"axis": 2},
     lambda x, i: np.take(x, i, axis=2)),
    ("Gather-scalar", "Gather", [A3, C(np.array(1, np.int64))], {"axis": 1},
     lambda x, i: x[:, 1]),
    ("Gather-computed", "Gather", [r(6, 3), ints(2, 4, lo=-6, hi=6)], {},
     lambda x, i: np.take(x, i, axis=0)),
    ("ReduceSum", "ReduceSum", [A3, i64(0, -1)], {"keepdims": 0},
     lambda x, a: x.sum(axis=(0, 2))),
    ("ReduceSum-all", "ReduceSum", [A3], {}, lambda x: x.sum(keepdims=True).reshape(1, 1, 1)),
    ("ReduceSum-noop", "ReduceSum", [A3], {"noop_with_empty_axes": 1}, lambda x: x),
    ("ReduceSum-int32", "ReduceSum", [ints(3, 4, dtype=np.int32), i64(1)], {},
     lambda x, a: x.sum(axis=1, keepdims=True, dtype=np.int32)),
    ("ReduceMean-attr-opset13", "ReduceMean", [A3], {"axes": [1], "keepdims": 0},
     lambda x: x.mean(axis=1), {"opset": 13}),
    ("ReduceMean", "ReduceMean", [A3, i64(1, 2)], {}, lambda x, a: x.mean(axis=(1, 2),
                                                                         keepdims=True)),
    ("ReduceMax", "ReduceMax", [A3, i64(1)], {}, lambda x, a: x.max(axis=1, keepdims=True)),
    ("ReduceMax-attr-opset13", "ReduceMax", [A3], {"axes": [-1], "keepdims": 0},
     lambda x: x.max(axis=-1), {"opset": 13}),
    ("ReduceMin", "ReduceMin", [A3, i64(0)], {"keepdims": 0}, lambda x, a: x.min(axis=0)),
    ("ReduceProd", "ReduceProd", [pos(3, 4), i64(1)], {}, lambda x, a: x.prod(1, keepdims=True)),
    ("ReduceL1", "ReduceL1", [A3, i64(2)], {}, lambda x, a: np.abs(x).sum(2, keepdims=True)),
    ("ReduceL2", "ReduceL2", [A3, i64(2)], {},
     lambda x, a: np.sqrt((x * x).sum(2, keepdims=True))),
    ("ReduceSumSquare", "ReduceSumSquare", [A3, i64(2)], {},
     lambda x, a: (x * x).sum(2, keepdims=True)),
    ("ReduceLogSumExp", "ReduceLogSumExp", [A3, i64(2)], {},
     lambda x, a: np.log(np.exp(x).sum(2, keepdims=True))),
    ("ArgMax", "ArgMax", [A3], {"axis": 1, "keepdims": 0}, lambda x: x.argmax(axis=1)),
    ("ArgMax-last-index", "ArgMax", [np.array([[1, 3, 3, 0], [2, 2, 1, 2]], np.float32)],
     {"axis": 1, "select_last_index": 1}, lambda x: np.array([[2], [3]])),
    ("ArgMin", "ArgMin", [A3], {"axis": -1}, lambda x: x.argmin(axis=-1)[..., None]),
    ("Shape", "Shape", [A3], {}, lambda x: np.array(x.shape)),
    ("Shape-start-end", "Shape", [A3], {"start": 1, "end": -1}, lambda x: np.array([3])),
    ("Size", "Size", [A3], {}, lambda x: np.array(30)),
    ("ConstantOfShape", "ConstantOfShape", [i64(2, 3)],
     {"value": numpy_helper.from_array(np.array([7], np.int64))},
     lambda s: np.full((2, 3), 7, np.int64)),
    ("ConstantOfShape-default", "ConstantOfShape", [i64(4)], {}, lambda s: np.zeros(4, np.float32)),
    ("Expand", "Expand", [r(3, 1), i64(2, 1, 4)], {}, lambda x, s: np.broadcast_to(x, (2, 3, 4))),
    ("Range", "Range", [C(np.array(2, np.int64)), C(np.array(11, np.int64)),
                        C(np.array(3, np.int64))], {}, lambda *_: np.arange(2, 11, 3)),
    ("Range-float", "Range", [f32(1.0), f32(-1.0), f32(-0.5)], {},
     lambda *_: np.arange(1.0, -1.0, -0.5, dtype=np.float32)),
    ("Tile", "Tile", [X, i64(2, 3)], {}, lambda x, s: np.tile(x, (2, 3))),
    ("Pad-constant", "Pad", [X, i64(1, 0, 2, 3), f32(1.5)], {},
     lambda x, p, v: np.pad(x, ((1, 2), (0, 3)), constant_values=1.5)),
    ("Pad-constant-int", "Pad", [ints(2, 3), i64(0, 1, 2, 0), C(np.array(7, np.int64))], {},
     lambda x, *_: np.pad(x, ((0, 2), (1, 0)), constant_values=7)),
    ("Pad-attrs-opset7", "Pad", [X], {"pads": [0, 1, 2, 0], "value": -2.5},
     lambda x: np.pad(x, ((0, 2), (1, 0)), constant_values=-2.5), {"opset": 7}),
    ("Pad-edge-axes", "Pad", [A3, i64(2, -1), None, i64(-1)], {"mode": "edge"},
     lambda x, *_: np.pad(x, ((0, 0), (0, 0), (2, 0)), mode="edge")[:, :, :-1]),
    ("Pad-reflect", "Pad", [X, i64(0, 2, 1, 3)], {"mode": "reflect"},
     lambda x, p: np.pad(x, ((0, 1), (2, 3)), mode="reflect")),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_alone_matches_numpy_and_onnxruntime(case):
    _, op, args, attrs, ref, *opts = case
    opts = opts[0] if opts else {}
    model, arrays = single_op(op, args, attrs, opts.get("opset", 20), opts.get("n_out", 1))
    all_args = [a.value if isinstance(a, C) else a for a in args if a is not None]
    want = ref(*all_args)
    want = [np.asarray(w) for w in (want if isinstance(want, tuple) else (want,))]
    if op != "Cast" and not any(a.dtype == np.float64 for a in all_args):   # NumPy refs widen f32 at times
        want = [w.astype(np.float32) if w.dtype == np.float64 else w for w in want]
    run_and_compare(model, arrays, want, opts.get("rtol", 1e-5), opts.get("atol", 1e-6))


def test_every_table_op_has_a_case():
    """Each op of the table is tested: by a case here, or by ONNX backend node tests that
    tests/test_onnx_node.py runs (those docs/onnx-node-tests.md marks passed)."""
    import re
    from pathlib import Path

    from lepton.frontends.onnx.op_table import TABLE
    table = (Path(__file__).resolve().parent.parent / "docs" / "onnx-node-tests.md").read_text()
    by_node_tests = set(re.findall(r"^\| test_\w+ \| (\w+) \| passed \|", table, re.M))
    from test_onnx_ops import TESTED_OPS   # ops newer than the table, tested there
    tested = {c[1] for c in CASES} | {"Constant"} | by_node_tests | TESTED_OPS
    assert set(TABLE) - tested == set()


def test_constant_node_forms():
    nodes = [helper.make_node("Constant", [], ["c1"], value=numpy_helper.from_array(
                 np.arange(4, dtype=np.float32))),
             helper.make_node("Constant", [], ["c2"], value_float=0.5),
             helper.make_node("Constant", [], ["c3"], value_ints=[2, 2]),
             helper.make_node("Add", ["x", "c1"], ["a"]),
             helper.make_node("Mul", ["a", "c2"], ["b"]),
             helper.make_node("Reshape", ["b", "c3"], ["y"])]
    x = r(4)
    m = make_model(nodes, [("x", x)], ["y", "c3"])
    run_and_compare(m, [x], [((x + np.arange(4, dtype=np.float32)) * 0.5).reshape(2, 2), np.array([2, 2])])


# -- whole models ------------------------------------------------------------------------------
def test_mlp():
    w1, b1, w2, b2 = r(784, 64) * 0.05, r(64), r(10, 64) * 0.1, r(10)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
             helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h"]),
             helper.make_node("Gemm", ["h", "w2", "b2"], ["logits"], transB=1, name="fc2"),
             helper.make_node("Softmax", ["logits"], ["p"], axis=-1)]
    m = make_model(nodes, [("x", (np.float32, ["batch", 784]))], ["p"],
                   [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)])
    x = r(16, 784)
    want = softmax_ref(np.maximum(x @ w1 + b1, 0) @ w2.T + b2, -1)
    f = lp.from_onnx(m)
    np.testing.assert_allclose(f(x)[0], want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(f(x[:3])[0], want[:3], rtol=1e-4, atol=1e-6)  # another batch
    if ort is not None:
        np.testing.assert_allclose(f(x)[0], ort_run(m, [x])[0], rtol=1e-4, atol=1e-6)
    assert "matmul" in f.ir() and f.stats()["kernels"] >= 1


def test_convnet():
    w1, b1 = r(8, 1, 3, 3) * 0.3, r(8)
    scale, shift, mean, var = pos(8), r(8), r(8), pos(8)
    w2, b2 = r(10, 8 * 7 * 7) * 0.05, r(10)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("BatchNormalization", ["c", "s", "t", "m", "v"], ["bn"]),
             helper.make_node("Relu", ["bn"], ["a"]),
             helper.make_node("MaxPool", ["a"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc")]
    m = make_model(nodes, [("x", (np.float32, [4, 1, 14, 14]))], ["y"],
                   [("w1", w1), ("b1", b1), ("s", scale), ("t", shift), ("m", mean), ("v", var),
                    ("w2", w2), ("b2", b2)])
    x = r(4, 1, 14, 14)
    c = conv_ref(x, w1, b1, lo=(1, 1), hi=(1, 1))
    bn = (c - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * scale[:, None, None] \
        + shift[:, None, None]
    p = window_ref(np.maximum(bn, 0), (2, 2), (2, 2), (0, 0), (0, 0), 0, np.max)
    want = p.reshape(4, -1) @ w2.T + b2
    got = run_and_compare(m, [x], [want.astype(np.float32)], rtol=1e-4, atol=1e-4)
    f = lp.from_onnx(m)
    ir = f.ir()
    # the initializers are constants: batch norm's rsqrt is folded away at compile time
    assert "conv2d" in ir and "rsqrt" not in ir
    assert "onnx Conv 'conv1'" in f.traced_ir()   # IR locations name the ONNX nodes
    assert got[0].shape == (4, 10)


def test_transformer_block():
    """Self-attention with a residual, LayerNormalization and an erf-form GELU MLP, the way
    exporters write it (Shape/Gather/Concat feeding Reshape, Transpose, Split)."""
    t, d, heads = 6, 16, 2
    wqkv, wo, w1, w2 = r(d, 3 * d) * 0.2, r(d, d) * 0.2, r(d, 4 * d) * 0.2, r(4 * d, d) * 0.2
    g1, g2, bb = pos(d), pos(d), r(d)
    h = helper.make_node
    nodes = [
        h("LayerNormalization", ["x", "g1"], ["ln1"], name="ln1"),
        h("MatMul", ["ln1", "wqkv"], ["qkv"]),
        h("Split", ["qkv", "split3"], ["q", "k", "v"], axis=-1),
        h("Shape", ["x"], ["xs"]),
        h("Gather", ["xs", "zero"], ["batch"], axis=0),
        h("Unsqueeze", ["batch", "zero_axis"], ["batch1"]),
        h("Concat", ["batch1", "heads_shape"], ["hshape"], axis=0),
        *[n for name in "qkv" for n in (
            h("Reshape", [name, "hshape"], [f"{name}4"]),
            h("Transpose", [f"{name}4"], [f"{name}h"], perm=[0, 2, 1, 3]))],
        h("Transpose", ["kh"], ["khT"], perm=[0, 1, 3, 2]),
        h("MatMul", ["qh", "khT"], ["s0"]),
        h("Div", ["s0", "sqrt_dh"], ["s"]),
        h("Softmax", ["s"], ["att"], axis=-1),
        h("MatMul", ["att", "vh"], ["o4"]),
        h("Transpose", ["o4"], ["o3"], perm=[0, 2, 1, 3]),
        h("Reshape", ["o3", "back_shape"], ["o"]),
        h("MatMul", ["o", "wo"], ["proj"]),
        h("Add", ["x", "proj"], ["res1"]),
        h("LayerNormalization", ["res1", "g2", "bb"], ["ln2"], epsilon=1e-6),
        h("MatMul", ["ln2", "w1"], ["u"]),
        h("Div", ["u", "sqrt2"], ["u2"]), h("Erf", ["u2"], ["eu"]),
        h("Add", ["eu", "one"], ["eu1"]), h("Mul", ["u", "eu1"], ["ug"]),
        h("Mul", ["ug", "half"], ["gelu"]),
        h("MatMul", ["gelu", "w2"], ["mlp"]),
        h("Add", ["res1", "mlp"], ["y"]),
    ]
    inits = [("g1", g1), ("g2", g2), ("bb", bb), ("wqkv", wqkv), ("wo", wo), ("w1", w1),
             ("w2", w2), ("split3", np.array([d, d, d], np.int64)),
             ("zero", np.array(0, np.int64)), ("zero_axis", np.array([0], np.int64)),
             ("heads_shape", np.array([-1, heads, d // heads], np.int64)),
             ("back_shape", np.array([0, t, d], np.int64)),
             ("sqrt_dh", np.array(np.sqrt(d // heads), np.float32)),
             ("sqrt2", np.array(np.sqrt(2), np.float32)), ("one", np.array(1, np.float32)),
             ("half", np.array(0.5, np.float32))]
    m = make_model(nodes, [("x", (np.float32, [2, t, d]))], ["y"], inits)
    x = r(2, t, d)

    def ref(x):
        ln1 = layer_norm_ref(x, (2,), g1, None)[0]
        q, k, v = np.split(ln1 @ wqkv, 3, axis=-1)
        q, k, v = (z.reshape(2, t, heads, -1).transpose(0, 2, 1, 3) for z in (q, k, v))
        att = softmax_ref(q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // heads), -1)
        res1 = x + (att @ v).transpose(0, 2, 1, 3).reshape(2, t, d) @ wo
        u = layer_norm_ref(res1, (2,), g2, bb, 1e-6)[0] @ w1
        return res1 + (0.5 * u * (1 + erf(u / np.sqrt(2)))) @ w2
    run_and_compare(m, [x], [ref(x).astype(np.float32)], rtol=1e-4, atol=1e-4)


def test_shape_chain_with_symbolic_batch_compiles_per_signature():
    """Flatten written as exporters do: Shape -> Slice -> Concat(-1) -> Reshape."""
    h = helper.make_node
    nodes = [h("Shape", ["x"], ["s"]),
             h("Slice", ["s", "zero", "one"], ["n"]),
             h("Concat", ["n", "minus1"], ["shape"], axis=0),
             h("Reshape", ["x", "shape"], ["y"])]
    m = make_model(nodes, [("x", (np.float32, ["N", 3, 4]))], ["y"],
                   [("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64)),
                    ("minus1", np.array([-1], np.int64))])
    f = lp.from_onnx(m)
    with pytest.raises(ValueError, match="'x'.*symbolic"):
        f.ir()
    for n in (2, 5):
        x = r(n, 3, 4)
        np.testing.assert_array_equal(f(x)[0], x.reshape(n, 12))
        assert "f32[%d,12]" % n in f.ir() and "constant" not in f.ir()
    fixed = load(m, shapes={"x": (7, 3, 4)})
    assert "f32[7,12]" in fixed.ir()


def test_load_from_path_and_bytes_and_check(tmp_path):
    model, arrays = single_op("Tanh", [X])
    path = tmp_path / "tanh.onnx"
    onnx.save(model, str(path))
    for source in (path, str(path), model.SerializeToString()):
        np.testing.assert_allclose(lp.from_onnx(source)(*arrays)[0], np.tanh(X), rtol=1e-5)
    np.testing.assert_allclose(load(model, check=True)(X)[0], np.tanh(X), rtol=1e-5)


def test_nodes_out_of_topological_order():
    nodes = [helper.make_node("Relu", ["h"], ["y"], name="late"),
             helper.make_node("Neg", ["x"], ["h"], name="early")]
    with pytest.raises(ValueError, match="'late'.*reads 'h'"):
        lp.from_onnx(make_model(nodes, [("x", X)], ["y"]))


def test_opset7_initializers_listed_as_inputs_stay_constants():
    w = r(4, 2)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
                           helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 2])],
                          [helper.make_empty_tensor_value_info("y")],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 7)])
    f = lp.from_onnx(m)
    assert f.input_names == ["x"]
    np.testing.assert_allclose(f(X)[0], X @ w, rtol=1e-5)


# -- errors ------------------------------------------------------------------------------------
def test_unsupported_op_names_op_and_node():
    m, _ = single_op("ImageDecoder", [X])
    with pytest.raises(NotImplementedError, match="ImageDecoder.*not supported") as e:
        lp.from_onnx(m)
    assert "the_imagedecoder" in str(e.value)
    m, _ = single_op("NonZero", [X])      # a shape decided by values: refused as such
    with pytest.raises(NotImplementedError, match="NonZero's output shape depends on its "
                                                  "input values") as e:
        lp.from_onnx(m)
    assert "the_nonzero" in str(e.value)
    node = helper.make_node("FusedGemm", ["x", "x"], ["y"], name="fg", domain="com.microsoft")
    m = make_model([node], [("x", X)], ["y"])
    with pytest.raises(NotImplementedError, match="'fg'.*com.microsoft"):
        lp.from_onnx(m)


@pytest.mark.parametrize("op,args,attrs,match", [
    ("Relu", [X], {"bogus": 1}, "attribute 'bogus'"),
    ("Cast", [X], {"to": TensorProto.COMPLEX64}, "COMPLEX64"),
    ("Conv", [r(1, 1, 3, 3, 3), C(r(1, 1, 2, 2, 2))], {}, "2-d"),
    ("BatchNormalization", [IMG, C(r(3)), C(r(3)), C(r(3)), C(pos(3))],
     {"spatial": 0}, "spatial"),
])
def test_unsupported_attributes_and_forms(op, args, attrs, match):
    m, _ = single_op(op, args, attrs)
    with pytest.raises(NotImplementedError, match=match) as e:
        lp.from_onnx(m)
    assert f"the_{op.lower()}" in str(e.value) and op in str(e.value)


def test_shape_inputs_are_specialised_on_their_value(monkeypatch):
    """Reshape's shape, Slice's starts and Expand's shape fed as graph inputs: each value
    compiles once (the input is part of the signature) and is cached."""
    from lepton.frontends.onnx import loader
    traces = []
    run = loader._Builder.run
    monkeypatch.setattr(loader._Builder, "run", lambda self, t: traces.append(1) or run(self, t))
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["h"]),
             helper.make_node("Slice", ["h", "starts", "ends"], ["s"]),
             helper.make_node("Expand", ["s", "big"], ["y"])]
    m = make_model(nodes, [("x", (np.float32, [12])), ("shape", (np.int64, [2])),
                           ("starts", (np.int64, [1])), ("ends", (np.int64, [1])),
                           ("big", (np.int64, [3]))], ["y"])
    f = lp.from_onnx(m)
    x = np.arange(12, dtype=np.float32)
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    for shape, start, big in (((3, 4), 1, (2, 2, 4)), ((2, 6), 0, (3, 2, 6)), ((3, 4), 1,
                                                                             (2, 2, 4))):
        [y] = f(x, i64(*shape), i64(start), i64(shape[0]), i64(*big))
        want = np.broadcast_to(x.reshape(shape)[start:shape[0]], big)
        np.testing.assert_array_equal(y, want)
    assert len(traces) == 2          # the third call reuses the first compilation
    assert sorted(f.specialised) == ["big", "ends", "shape", "starts"]


def test_shape_inputs_read_inside_subgraphs_are_specialised():
    """If's branches read the names around them: a shape input used as Reshape's shape in a
    branch, or computed by a branch and used as a shape after it, is specialised (as in
    AffineGrid's expanded form); a data input read by a branch is not."""
    one = helper.make_tensor_value_info("o", TensorProto.INT64, None)
    then_g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["o"])], "then", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["o"])], "else", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    pick_then = helper.make_graph([helper.make_node("Identity", ["dims"], ["o"])], "t", [], [one])
    pick_else = helper.make_graph([helper.make_node("Neg", ["dims"], ["o"])], "e", [], [one])
    nodes = [helper.make_node("Size", ["shape"], ["n"]),
             helper.make_node("Constant", [], ["two"], value_int=2),
             helper.make_node("Equal", ["n", "two"], ["is2"]),
             helper.make_node("If", ["is2"], ["h"], then_branch=then_g, else_branch=else_g),
             helper.make_node("If", ["is2"], ["d"], then_branch=pick_then,
                              else_branch=pick_else),
             helper.make_node("Reshape", ["h", "d"], ["y"])]
    m = make_model(nodes, [("x", (np.float32, [12])), ("shape", (np.int64, [2])),
                           ("dims", (np.int64, [3]))], ["y"])
    f = lp.from_onnx(m)
    assert sorted(f.specialised) == ["dims", "shape"]
    x = np.arange(12, dtype=np.float32)
    for shape, dims in (((3, 4), (2, 3, 2)), ((6, 2), (3, 1, 4))):
        [y] = f(x, np.array(shape, np.int64), np.array(dims, np.int64))
        np.testing.assert_array_equal(y, x.reshape(dims))


def test_unsupported_extra_output():
    m, _ = single_op("BatchNormalization", [IMG, C(r(3)), C(r(3)), C(r(3)), C(pos(3))], {},
                     n_out=3)    # running statistics asked of an inference-mode node
    with pytest.raises(NotImplementedError, match="output 1"):
        lp.from_onnx(m)


def test_unsupported_input_dtype():
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.COMPLEX64, [2])], [helper.make_empty_tensor_value_info("y")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    with pytest.raises(NotImplementedError, match="'x'.*COMPLEX64"):
        lp.from_onnx(m)


def test_malformed_node_raises_value_error_naming_it():
    m, _ = single_op("Reshape", [X, i64(5, -1)], {})
    with pytest.raises(ValueError, match="the_reshape"):
        lp.from_onnx(m)


def test_wrong_inputs():
    m, _ = single_op("Add", [X, r(4)])
    f = lp.from_onnx(m)
    with pytest.raises(TypeError, match="takes 2 inputs"):
        f(X)
    with pytest.raises(ValueError, match="'in1'.*shape \\(5,\\)"):
        f(X, r(5))
    with pytest.raises(TypeError, match="'in0'.*float64"):
        f(X.astype(np.float64), r(4))
    m = make_model([helper.make_node("Add", ["a", "b"], ["y"])],
                   [("a", (np.float32, ["n", 2])), ("b", (np.float32, ["n", 2]))], ["y"])
    with pytest.raises(ValueError, match="dim 'n'"):
        lp.from_onnx(m)(r(3, 2), r(4, 2))
    with pytest.raises(ValueError, match="shapes"):
        load(m, shapes={"a": (3, 5)})


@pytest.mark.parametrize("wid", ["W7", "W8"])
def test_benchmark_workloads_built_as_onnx(wid):
    """The convnet and transformer workloads as the onnxruntime peer sees them (onnx.helper
    graphs, weights as graph inputs) agree with their float64 references."""
    from lepton.bench.check import verify
    from lepton.bench.onnx_graphs import build
    from lepton.bench.workloads import WORKLOADS
    w = WORKLOADS[wid]
    args = w.make_inputs()
    out = lp.from_onnx(build(w, args))(*args)[0]
    result = verify(w, out, w.reference(*args), args)
    assert result.ok, result.detail
