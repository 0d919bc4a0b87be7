"""lp.nn: parameter names and layouts (PyTorch's), initialisation, load_parameters, binding for
traces, every layer's output against a NumPy float64 implementation, and lp.compile(model)."""
import math

import numpy as np
import pytest

import lepton as lp
from lepton import nn

RNG = np.random.default_rng(1234)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def close(got, want, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


class MLP(nn.Module):
    def __init__(self, rng=None):
        super().__init__()
        self.fc1 = nn.Linear(4, 8, rng=rng)
        self.fc2 = nn.Linear(8, 3, rng=rng)
        self.traces = 0  # an int attribute: neither a parameter nor a child

    def __call__(self, x):
        self.traces += 1  # the body runs only while tracing
        return self.fc2(lp.relu(self.fc1(x)))


def mlp_ref(p, x):
    x = x.astype(np.float64)
    h = np.maximum(x @ p["fc1.weight"].T.astype(np.float64) + p["fc1.bias"], 0)
    return h @ p["fc2.weight"].T.astype(np.float64) + p["fc2.bias"]


# -- names and layouts -------------------------------------------------------------------------
def test_names_shapes_dtypes_follow_pytorch():
    m = MLP()
    p = m.parameters()
    assert list(p) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [v.shape for v in p.values()] == [(8, 4), (8,), (3, 8), (3,)]
    assert all(v.dtype == np.float32 for v in p.values())
    assert p["fc1.weight"] is m.fc1.weight  # the arrays themselves
    assert m.num_parameters() == 8 * 4 + 8 + 3 * 8 + 3


def test_sequential_nested_containers_and_private_attributes():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8, 2), lp.tanh)
    assert list(seq.parameters()) == ["0.weight", "3.weight", "3.bias"]
    assert len(seq) == 5 and isinstance(seq[3], nn.Linear)
    assert list(seq[3:4].parameters()) == ["0.weight", "0.bias"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.layers = [nn.LayerNorm(4), nn.Linear(4, 4)]
            self.heads = {"a": nn.Linear(4, 1)}
            self.shared = self.layers[1]           # reached twice: listed once
            self._table = np.ones(3, np.float32)   # private: a constant, not a parameter
            self.sizes = [(1, 2)]

    assert list(Net().parameters()) == [
        "embed.weight", "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        "heads.a.weight", "heads.a.bias"]


def test_array_inside_a_container_is_refused():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = [np.zeros(3, np.float32)]

    with pytest.raises(TypeError, match=r"ws\.0"):
        Bad().parameters()


def test_matches_torch_state_dict_and_outputs():
    torch = pytest.importorskip("torch")
    tnet = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 16), torch.nn.LayerNorm(16),
        torch.nn.GELU(), torch.nn.Linear(16, 5))
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(4 * 4 * 4, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 5))
    sd = {k: v.numpy() for k, v in tnet.state_dict().items()}
    assert {k: v.shape for k, v in net.parameters().items()} == {k: v.shape for k, v in sd.items()}
    net.load_parameters(sd)
    x = rand(3, 1, 8, 8)
    with torch.no_grad():
        want = tnet(torch.from_numpy(x)).numpy()
    close(lp.compile(net)(x), want, rtol=1e-4, atol=1e-5)
    emb = torch.nn.Embedding(7, 3)
    e = nn.Embedding(7, 3)
    e.load_parameters({"weight": emb.weight.detach().numpy()})
    idx = np.array([[0, 6], [3, 3]])
    close(lp.compile(e)(idx), emb(torch.from_numpy(idx)).detach().numpy())


# -- initialisation ----------------------------------------------------------------------------
def test_default_initialisation_follows_pytorch():
    rng = np.random.default_rng(0)
    fc = nn.Linear(400, 300, rng=rng)
    bound = 1 / math.sqrt(400)  # kaiming_uniform(a=sqrt(5)) reduces to 1/sqrt(fan_in)
    for w in (fc.weight, fc.bias):
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(fc.weight.std() - bound / math.sqrt(3)) < 0.01 * bound  # uniform's std
    conv = nn.Conv2d(6, 64, (3, 5), groups=2, rng=rng)
    assert conv.weight.shape == (64, 3, 3, 5)
    bound = 1 / math.sqrt(3 * 3 * 5)
    assert bound * 0.95 < np.abs(conv.weight).max() <= bound
    assert np.abs(conv.bias).max() <= bound
    ln = nn.LayerNorm(5)
    assert np.array_equal(ln.weight, np.ones(5)) and np.array_equal(ln.bias, np.zeros(5))
    emb = nn.Embedding(1000, 50, rng=rng)
    assert abs(emb.weight.mean()) < 0.02 and abs(emb.weight.std() - 1) < 0.02
    assert all(v.dtype == np.float32 for m in (fc, conv, ln, emb)
               for v in m.parameters().values())


def test_manual_seed_and_rng_make_initialisation_reproducible():
    nn.manual_seed(7)
    a = MLP().parameters()
    nn.manual_seed(7)
    b = MLP().parameters()
    c = MLP().parameters()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["fc1.weight"], c["fc1.weight"])
    d = MLP(rng=np.random.default_rng(3)).parameters()
    e = MLP(rng=np.random.default_rng(3)).parameters()
    assert all(np.array_equal(d[k], e[k]) for k in d)
    with pytest.raises(TypeError, match="Generator"):
        nn.Linear(2, 2, rng=3)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="last axis"):
        nn.LayerNorm((2, 3))
    with pytest.raises(TypeError, match="not a module"):
        nn.Sequential(nn.ReLU(), 3)


# -- load_parameters ---------------------------------------------------------------------------
def test_load_parameters_round_trip_in_place():
    a, b = MLP(), MLP()
    kept = b.parameters()
    b.load_parameters({k: v.copy() for k, v in a.parameters().items()})
    after = b.parameters()
    assert all(after[k] is kept[k] for k in kept)  # written into the existing arrays
    assert all(np.array_equal(after[k], a.parameters()[k]) for k in kept)
    x = rand(5, 4)
    np.testing.assert_array_equal(lp.compile(a)(x), lp.compile(b)(x))


def test_load_parameters_errors_name_the_problem_and_write_nothing():
    m = MLP()
    before = {k: v.copy() for k, v in m.parameters().items()}
    good = {k: v + 1 for k, v in before.items()}
    cases = [
        ({k: v for k, v in good.items() if k != "fc2.bias"}, KeyError, r"missing \['fc2.bias'\]"),
        ({**good, "fc3.weight": good["fc2.weight"]}, KeyError, r"unexpected \['fc3.weight'\]"),
        ({**good, "fc1.weight": good["fc1.weight"].T}, ValueError,
         r"'fc1.weight': expected shape \(8, 4\), got \(4, 8\)"),
        ({**good, "fc2.bias": good["fc2.bias"].astype(np.float64)}, TypeError,
         "'fc2.bias': expected dtype float32, got float64"),
        ([1, 2], TypeError, "dict"),
    ]
    for params, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            m.load_parameters(params)
        assert all(np.array_equal(m.parameters()[k], before[k]) for k in before)
    m.load_parameters({"fc2.bias": good["fc2.bias"]}, strict=False)
    assert np.array_equal(m.fc2.bias, good["fc2.bias"])
    assert np.array_equal(m.fc1.bias, before["fc1.bias"])


# -- binding for traces ------------------------------------------------------------------------
def test_apply_traces_parameters_as_graph_inputs():
    m = MLP()
    x = rand(2, 4)
    g = lp.trace(m.apply, m.parameters(), x)
    assert len(g.inputs) == 5  # four parameters and x
    assert not any(v.op == "constant" and v.type.size > 1 for v in g.nodes)
    out = lp.ir.interpret(g, *[m.parameters()[k] for k in sorted(m.parameters())], x)[0]
    close(out, mlp_ref(m.parameters(), x))
    assert isinstance(m.fc1.weight, np.ndarray)  # restored after the trace


def test_bind_restores_on_error_and_checks_names():
    m = MLP()
    w = m.fc1.weight

    def boom(params, x):
        with m.bind(params):
            assert isinstance(m.fc1.weight, lp.frontends.Tensor)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        lp.trace(boom, m.parameters(), rand(2, 4))
    assert m.fc1.weight is w
    with pytest.raises(KeyError, match="expected the parameters"):
        with m.bind({"fc1.weight": w}):
            pass


def test_module_without_forward_and_eager_call_raise_clearly():
    with pytest.raises(NotImplementedError, match="neither forward"):
        nn.Module()(1)
    with pytest.raises(RuntimeError, match="inside lp.trace / lp.compile"):
        MLP()(rand(2, 4))


# -- layers against NumPy float64 --------------------------------------------------------------
def conv_ref(x, w, b, stride, padding, dilation, groups):
    x, w = x.astype(np.float64), w.astype(np.float64)
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        grp = oc // og
        for i in range(kh):
            for j in range(kw):
                patch = x[:, grp * cg:(grp + 1) * cg,
                          i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
    return out if b is None else out + b[None, :, None, None]


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1),
                                dict(padding=(2, 1), dilation=2, groups=2, bias=False)])
def test_conv2d_layer(kw):
    conv = nn.Conv2d(4, 6, (3, 2), **kw)
    x = rand(2, 4, 9, 8)
    want = conv_ref(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation,
                    conv.groups)
    close(lp.compile(conv)(x), want)


@pytest.mark.parametrize("shape, bias", [((5, 4), True), ((2, 3, 4), True), ((5, 4), False)])
def test_linear_layer(shape, bias):
    fc = nn.Linear(4, 7, bias=bias)
    x = rand(*shape)
    want = x.astype(np.float64) @ fc.weight.T.astype(np.float64)
    if bias:
        want = want + fc.bias
    close(lp.compile(fc)(x), want)


def test_layer_norm_layer():
    ln = nn.LayerNorm(6, eps=1e-3)
    ln.load_parameters({"weight": rand(6), "bias": rand(6)})
    x = rand(3, 2, 6) * 3 + 1
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-3)
    close(lp.compile(ln)(x), want * ln.weight + ln.bias)
    with pytest.raises(ValueError, match=r"LayerNorm\(6\)"):
        lp.compile(ln)(rand(3, 5))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_embedding_layer(dtype):
    emb = nn.Embedding(10, 3)
    idx = np.array([[1, 9, 0], [4, 4, 2]], dtype)
    np.testing.assert_array_equal(lp.compile(emb)(idx), emb.weight[idx])


def test_parameter_free_layers():
    from math import erf
    x = rand(2, 3, 4, 4)
    x64 = x.astype(np.float64)
    erf_v = np.vectorize(erf)
    cases = [
        (nn.ReLU(), np.maximum(x64, 0)),
        (nn.GELU(), 0.5 * x64 * (1 + erf_v(x64 / math.sqrt(2)))),
        (nn.GELU("tanh"), 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                    * (x64 + 0.044715 * x64 ** 3)))),
        (nn.Tanh(), np.tanh(x64)),
        (nn.Sigmoid(), 1 / (1 + np.exp(-x64))),
        (nn.Flatten(), x64.reshape(2, -1)),
        (nn.Flatten(2), x64.reshape(2, 3, -1)),
        (nn.MaxPool2d(2), x64.reshape(2, 3, 2, 2, 2, 2).max(axis=(3, 5))),
        (nn.AvgPool2d(2), x64.reshape(2, 3, 2, 2, 2, 2).mean(axis=(3, 5))),
    ]
    for layer, want in cases:
        assert layer.parameters() == {}
        close(lp.compile(layer)(x), want)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


def test_sequential_equals_composition():
    seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    p = seq.parameters()
    x = rand(6, 4)
    ref = mlp_ref({"fc1.weight": p["0.weight"], "fc1.bias": p["0.bias"],
                   "fc2.weight": p["2.weight"], "fc2.bias": p["2.bias"]}, x)
    close(lp.compile(seq)(x), ref)


# -- lp.compile(model) -------------------------------------------------------------------------
def test_compiled_model_sees_updated_parameters_without_recompiling():
    m = MLP()
    f = lp.compile(m)
    x = rand(5, 4)
    close(f(x), mlp_ref(m.parameters(), x))
    m.fc2.bias += 1.0                    # in place, as the optimisers update
    m.fc1.weight[0] *= -2.0
    close(f(x), mlp_ref(m.parameters(), x))
    m.load_parameters({k: rand(*v.shape) for k, v in m.parameters().items()})
    close(f(x), mlp_ref(m.parameters(), x))
    assert m.traces == 1                 # one signature, traced once
    f(rand(3, 4))                        # a new batch size is a new signature
    assert m.traces == 2
    g = lp.compile(m, example_args=(x,))
    assert m.traces == 3 and "matmul" in g.ir()
    assert lp.compile(g).fn is m
