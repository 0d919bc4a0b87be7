"""lp.nn.RNN, LSTM, GRU against PyTorch: parameter names, layouts and init, forward results for
several configurations, a torch state_dict loading unchanged, parameters after one SGD step, and
gradients against finite differences. `lp.compile` unrolls scans today, so sequences are short;
the configuration sweep runs through the NumPy interpreter (the oracle) and a few cases through
compiled code."""
import numpy as np
import pytest

import lepton as lp
from lepton.frontends.pytree import tree_flatten, tree_unflatten
from lepton.frontends.trace import trace_flat
from torch_oracle import sgd_step_matches_torch

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def pair(cls, *args, **kwargs):
    """A torch module and a lepton one holding its state_dict, loaded unchanged."""
    t = getattr(torch.nn, cls)(*args, **kwargs)
    m = getattr(lp.nn, cls)(*args, **kwargs)
    m.load_parameters({k: v.detach().numpy() for k, v in t.state_dict().items()})
    return t, m


def run(fn, *args):
    """fn(*args) traced and run by the NumPy interpreter, its results' structure kept."""
    g, _, out_tree = trace_flat(fn, args)
    return tree_unflatten(out_tree, lp.ir.interpret(g, *tree_flatten(args)[0]))


def interpreted(m, *args):
    return run(lambda *a: m(*a), *args)


def torch_run(t, *args):
    with torch.no_grad():
        return t(*[tuple(torch.from_numpy(b) for b in a) if isinstance(a, tuple)
                   else torch.from_numpy(a) for a in args])


def assert_trees_close(got, want):
    g, w = tree_flatten(got)[0], [x.numpy() for x in torch_leaves(want)]
    assert len(g) == len(w)
    for a, b in zip(g, w):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def torch_leaves(x):
    if isinstance(x, (tuple, list)):
        return [y for c in x for y in torch_leaves(c)]
    return [x]


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_parameter_names_layouts_and_init_are_pytorchs(cls):
    t = getattr(torch.nn, cls)(6, 8, num_layers=2, bidirectional=True)
    m = getattr(lp.nn, cls)(6, 8, num_layers=2, bidirectional=True)
    want = {k: tuple(v.shape) for k, v in t.state_dict().items()}
    assert {k: v.shape for k, v in m.parameters().items()} == want
    assert list(m.parameters()) == list(want)  # same order
    bound = 1 / np.sqrt(8)
    for k, v in m.parameters().items():
        assert v.dtype == np.float32
        assert np.abs(v).max() <= bound, k
    every = np.concatenate([v.ravel() for v in m.parameters().values()])
    assert every.min() < -0.9 * bound and every.max() > 0.9 * bound  # uniform, not a narrower law
    assert abs(every.mean()) < 0.1 * bound
    assert set(lp.nn.GRU(3, 4, bias=False).parameters()) == {"weight_ih_l0", "weight_hh_l0"}


CONFIGS = [
    ("RNN", dict()),
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
    ("LSTM", dict()),
    ("LSTM", dict(num_layers=2)),
    ("LSTM", dict(bidirectional=True, batch_first=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True, bias=False)),
    ("GRU", dict()),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True)),
]


@pytest.mark.parametrize("cls,kw", CONFIGS, ids=[f"{c}-{k}" for c, k in CONFIGS])
def test_forward_matches_torch(cls, kw):
    t, m = pair(cls, 3, 5, **kw)
    x = f32(2, 4, 3) if kw.get("batch_first") else f32(4, 2, 3)
    assert_trees_close(interpreted(m, x), torch_run(t, x))


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_given_initial_states_and_unbatched_input(cls):
    t, m = pair(cls, 3, 4, num_layers=2, bidirectional=True)
    n = 4
    hx = (f32(n, 2, 4), f32(n, 2, 4)) if cls == "LSTM" else f32(n, 2, 4)
    x = f32(5, 2, 3)
    assert_trees_close(interpreted(m, x, hx), torch_run(t, x, hx))
    # unbatched: (seq, features) with states (layers * directions, hidden)
    hx1 = tuple(h[:, 0] for h in hx) if cls == "LSTM" else hx[:, 0]
    got = interpreted(m, x[:, 0], hx1)
    want = torch_run(t, x[:, 0], hx1)
    assert got[0].shape == (5, 8)
    assert_trees_close(got, want)
    assert_trees_close(interpreted(m, x[:, 0]), torch_run(t, x[:, 0]))


def test_compiled_lstm_matches_torch_and_sees_new_parameters():
    t, m = pair("LSTM", 3, 5, num_layers=2, batch_first=True)
    f = lp.compile(m)
    x = f32(2, 3, 3)
    assert_trees_close(f(x), torch_run(t, x))
    with torch.no_grad():
        for p in t.parameters():
            p.mul_(-0.5)
    m.load_parameters({k: v.detach().numpy() for k, v in t.state_dict().items()})
    assert_trees_close(f(x), torch_run(t, x))  # read at every call, not baked in


SGD_CASES = [
    ("LSTM", dict(bidirectional=True, batch_first=True)),
    ("GRU", dict(num_layers=2)),
    ("RNN", dict(nonlinearity="relu")),
]


@pytest.mark.parametrize("cls,kw", SGD_CASES, ids=[c for c, _ in SGD_CASES])
def test_parameters_after_one_sgd_step_match_torch(cls, kw):
    t, m = pair(cls, 3, 4, **kw)
    x = f32(3, 2, 3)  # LSTM: batch_first, so 3 sequences of 2 steps
    target = f32(3, 2, 4 * (1 + kw.get("bidirectional", False)))

    def loss(result, target):  # written once for lp and torch tensors
        out, h = result
        h = h[0] if isinstance(h, tuple) else h
        return ((out - target) ** 2).mean() + (h * h).sum()

    sgd_step_matches_torch(m, t, loss, (x,), target, lr=0.5)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_gradients_match_finite_differences(cls):
    m = getattr(lp.nn, cls)(2, 3, num_layers=2, bidirectional=True)
    params = {k: v.astype(np.float64) for k, v in m.parameters().items()}
    x = f32(3, 1, 2).astype(np.float64)

    def loss(params, x):
        out, h = m.apply(params, x)
        h = h[1] if isinstance(h, tuple) else h   # the LSTM's c_n
        return lp.sum(lp.sin(out)) + lp.sum(h ** 2)

    grads = run(lp.grad(loss), params, x)
    eps = 1e-6
    r = np.random.default_rng(1)
    for k, p in params.items():
        for idx in [tuple(r.integers(0, s) for s in p.shape) for _ in range(3)]:
            up, down = dict(params), dict(params)
            up[k], down[k] = p.copy(), p.copy()
            up[k][idx] += eps
            down[k][idx] -= eps
            fd = (float(run(loss, up, x)) - float(run(loss, down, x))) / (2 * eps)
            assert grads[k][idx] == pytest.approx(fd, rel=1e-5, abs=1e-8), (k, idx)
    gx = run(lp.grad(loss, argnums=1), params, x)
    up, down = x.copy(), x.copy()
    up[1, 0, 1] += eps
    down[1, 0, 1] -= eps
    fd = (float(run(loss, params, up)) - float(run(loss, params, down))) / (2 * eps)
    assert gx[1, 0, 1] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_dropout_between_layers_in_training_mode_only():
    lp.nn.manual_seed(3)
    t, m = pair("GRU", 3, 4, num_layers=2, dropout=1.0)
    x = f32(2, 2, 3)
    # p = 1: the second layer sees zeros, so its output is a GRU layer on a zero input
    layer2 = torch.nn.GRU(4, 4)
    layer2.load_state_dict({k.replace("l1", "l0"): v for k, v in t.state_dict().items()
                            if "l1" in k})
    h0 = np.zeros((1, 2, 4), np.float32)
    key = lp.nn.init.GRAPH_KEY.copy()
    f = lp.compile(m)
    out, h = f(x)
    want, _ = torch_run(layer2, np.zeros((2, 2, 4), np.float32), h0)
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(key, lp.nn.init.GRAPH_KEY)  # the generator advanced
    m.eval()
    t.eval()
    assert_trees_close(f(x), torch_run(t, x))
    # a probability between 0 and 1 draws a new mask every training-mode call
    _, m2 = pair("LSTM", 3, 4, num_layers=2, dropout=0.5)
    g = lp.compile(m2)
    a, b = g(x)[0], g(x)[0]
    assert not np.allclose(a, b)


def test_errors_name_the_argument():
    with pytest.raises(NotImplementedError, match="proj_size"):
        lp.nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="nonlinearity"):
        lp.nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        lp.nn.GRU(3, 0)
    with pytest.raises(ValueError, match="num_layers"):
        lp.nn.GRU(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        lp.nn.GRU(3, 4, dropout=1.5)
    with pytest.raises(TypeError, match="batch_first"):
        lp.nn.GRU(3, 4, batch_first="yes")
    with pytest.warns(UserWarning, match="dropout"):
        lp.nn.LSTM(3, 4, dropout=0.2)
    m = lp.nn.LSTM(3, 4)
    with pytest.raises(ValueError, match="input_size=3"):
        lp.trace(lambda x: m(x)[0], f32(2, 1, 5))
    with pytest.raises(ValueError, match="h_0"):
        lp.trace(lambda x, h: m(x, (h, h))[0], f32(2, 1, 3), f32(1, 2, 4))
    with pytest.raises(TypeError, match="hx must be a pair"):
        lp.trace(lambda x, h: m(x, h)[0], f32(2, 1, 3), f32(1, 1, 4))
    assert repr(lp.nn.LSTM(3, 4, num_layers=2, batch_first=True)) == \
        "LSTM(3, 4, num_layers=2, batch_first=True)"
