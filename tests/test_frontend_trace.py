"""trace / trace_flat: argument kinds, pytrees in and out, graph names, constants as outputs,
inlining a traced graph, and the exported names."""
import numpy as np
import pytest

import lepton.frontends as lp
from frontend_check import ops_of, rand, run
from lepton.frontends.pytree import tree_structure
from lepton.frontends.trace import call_graph, trace_flat
from lepton.ir import TensorType, float32, int64, interpret, parse


def test_pytree_arguments_and_results_keep_their_shape():
    def f(params, batch):
        x, y = batch
        h = x @ params["w"] + params["b"]
        return {"out": h, "aux": [h.sum(), (y * 2,)]}
    params = {"w": rand(3, 2), "b": rand(2, seed=1)}
    batch = (rand(4, 3, seed=2), np.arange(4))
    g, in_tree, out_tree = trace_flat(f, (params, batch))
    # inputs in pytree order: params (dict: b < w), then the batch tuple
    assert [str(v.type) for v in g.inputs] == ["f32[2]", "f32[3,2]", "f32[4,3]", "i64[4]"]
    assert in_tree == tree_structure((params, batch))
    assert repr(out_tree) == "PyTreeDef({'aux': [*, (*,)], 'out': *})"
    out, _ = run(f, params, batch)
    h = batch[0] @ params["w"] + params["b"]
    np.testing.assert_allclose(out["out"], h, rtol=1e-6)
    np.testing.assert_allclose(out["aux"][0], h.sum(), rtol=1e-5)
    np.testing.assert_array_equal(out["aux"][1][0], batch[1] * 2)
    assert isinstance(out["aux"], list) and isinstance(out["aux"][1], tuple)


def test_argument_kinds():
    class Spec:   # any object with .shape and .dtype (not a namedtuple: that is a container)
        shape, dtype = (3, 1), np.int32
    args = (2.5, 3, True, np.float64(1.0), np.int32(4), TensorType(float32, (2,)),
            Spec(), np.zeros((0, 2), np.float32))
    g = lp.trace(lambda *a: a, *args)
    assert [str(v.type) for v in g.inputs] == ["f32[]", "i64[]", "bool[]", "f64[]", "i32[]",
                                                "f32[2]", "i32[3,1]", "f32[0,2]"]
    # outputs that are inputs: the graph returns the input values themselves
    assert g.outputs == g.inputs and ops_of(g) == []
    with pytest.raises(TypeError, match="cannot trace an argument of type str"):
        lp.trace(lambda s: s, "x")
    with pytest.raises(TypeError, match="unsupported dtype"):
        lp.trace(lambda s: s, np.zeros(2, np.complex64))


def test_constant_outputs_and_none():
    out, g = run(lambda x: (x, 1.5, np.arange(3), None, [True]), rand(2))
    assert out[1].dtype == np.float32 and out[1] == 1.5
    np.testing.assert_array_equal(out[2], np.arange(3))
    assert out[3] is None and out[4][0].dtype == np.bool_
    assert ops_of(g) == ["constant", "constant", "constant"]
    with pytest.raises(TypeError, match="output 1 of f is a str"):
        def f(x):
            return x, "no"
        lp.trace(f, rand(2))


def test_graph_name_comes_from_the_function():
    def my_model(x):
        return x + 1
    assert lp.trace(my_model, rand(2)).name == "my_model"
    g = lp.trace(lambda x: x, rand(2))
    assert g.name == "lambda" and parse(str(g)) == g

    class Net:
        def __call__(self, x):
            return x * 2
    assert lp.trace(Net(), rand(2)).name == "Net"


def test_large_constants_round_trip_exactly():
    w = np.random.default_rng(0).standard_normal((5, 7))   # f64, printed as base64
    out, g = run(lambda x: x @ w, rand(3, 5))
    const = next(v for v in g.nodes if v.op == "constant")
    np.testing.assert_array_equal(const.attrs["value"], w)
    assert not const.attrs["value"].flags.writeable
    w[0, 0] = 99.0   # the graph kept its own copy
    assert const.attrs["value"][0, 0] != 99.0


def test_call_graph_inlines_a_traced_function():
    inner = lp.trace(lambda a, b: (a * b, a.sum()), rand(3), rand(3))

    def outer(x):
        p, s = call_graph(inner, x + 1, 2.0 * x)
        return p - s
    out, g = run(outer, rand(3, seed=4))
    x = rand(3, seed=4).astype(np.float64)
    np.testing.assert_allclose(out, (x + 1) * 2 * x - (x + 1).sum(), rtol=1e-5)
    with pytest.raises(TypeError, match="expected f32\\[3\\]"):
        lp.trace(lambda x: call_graph(inner, x, x), rand(4))


def test_nested_traces_are_independent():
    def outer(x):
        inner = lp.trace(lambda y: lp.exp(y), TensorType(float32, x.shape))
        return x + interpret(inner, np.ones(x.shape, np.float32))[0]
    out, _ = run(outer, rand(2))
    np.testing.assert_allclose(out, rand(2) + np.e, rtol=1e-6)


def test_exported_names_are_exactly_the_public_api():
    expected = set("""add subtract multiply divide power negative abs exp log sqrt rsqrt tanh
        sigmoid relu gelu erf sin cos maximum minimum where clip square reciprocal sum mean max
        min argmax prod logsumexp var reshape transpose broadcast_to expand_dims squeeze
        concatenate stack split take matmul dot softmax log_softmax layer_norm batch_norm conv2d
        conv_transpose2d interpolate
        max_pool2d avg_pool2d cross_entropy zeros ones full arange constant float32 float64 int32
        int64 bool_ float16 bfloat16 int8 int16 uint8 uint16 uint32 uint64 float8_e4m3fn
        float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz float8_e8m0fnu float4_e2m1fn int4 uint4 int2 uint2 floor_divide
        remainder mod left_shift right_shift bitwise_and bitwise_or bitwise_xor invert
        trace stop_gradient bitcast scan fori_loop while_loop cond""".split())  # stop_gradient
    # and bitcast: beyond API.md, as in JAX (lax.stop_gradient, lax.bitcast_convert_type)
    assert set(lp.__all__) == expected and len(lp.__all__) == len(expected)
    namespace = {}
    exec("from lepton.frontends import *", namespace)
    assert set(namespace) - {"__builtins__"} == expected
    assert lp.int64 is int64
    import lepton
    from lepton.compile import from_onnx
    assert set(lepton.__all__) == expected | {"ir", "nn", "optim", "random", "dropout", "compile",
                                              "grad", "value_and_grad", "from_onnx", "save",
                                              "load_model", "export"}
    assert lepton.from_onnx is from_onnx
