"""lp.optim: compiled training steps. Loss falls on a small MLP; one step equals the update
computed by hand in NumPy (float64, hand-written gradient); state is updated in place; one graph
per signature; optionally the same trajectory as torch.optim."""
import warnings

import numpy as np
import pytest

import lepton as lp
from lepton import nn


class MLP(nn.Module):
    def __init__(self, d_in=6, hidden=16, classes=3, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.fc1 = nn.Linear(d_in, hidden, rng=rng)
        self.fc2 = nn.Linear(hidden, classes, rng=rng)
        self.traces = 0

    def __call__(self, x):
        self.traces += 1  # runs only while tracing
        return self.fc2(lp.relu(self.fc1(x)))


def loss_fn(model, x, y):
    return lp.cross_entropy(model(x), y)


def blobs(n=96, d=6, classes=3, seed=1):
    """Gaussian clusters around random centres: separable, so a small MLP can fit them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, d)) * 2.5
    y = rng.integers(0, classes, n)
    x = centres[y] + rng.standard_normal((n, d))
    return x.astype(np.float32), y.astype(np.int64)


def loss_and_grad_by_hand(p, x, y):
    """Cross-entropy of the MLP and its gradient, derived by hand, in float64."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    x = x.astype(np.float64)
    pre = x @ p["fc1.weight"].T + p["fc1.bias"]
    h = np.maximum(pre, 0)
    z = h @ p["fc2.weight"].T + p["fc2.bias"]
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    n = len(y)
    loss = -logp[np.arange(n), y].mean()
    dz = np.exp(logp)
    dz[np.arange(n), y] -= 1
    dz /= n
    dpre = (dz @ p["fc2.weight"]) * (pre > 0)
    grads = {"fc1.weight": dpre.T @ x, "fc1.bias": dpre.sum(0),
             "fc2.weight": dz.T @ h, "fc2.bias": dz.sum(0)}
    return loss, grads


def sgd_by_hand(p, g, buf, lr, momentum, wd, nesterov=False):
    g = g + wd * p
    if momentum:
        buf = momentum * buf + g
        g = g + momentum * buf if nesterov else buf
    return p - lr * g, buf


def adam_by_hand(p, g, m, v, t, lr, b1, b2, eps, wd, decoupled=False):
    if decoupled:
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def close(got, want, rtol=2e-4, atol=2e-6):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# -- training works ----------------------------------------------------------------------------
@pytest.mark.parametrize("opt", [lp.optim.SGD(0.1, momentum=0.9), lp.optim.Adam(1e-2)],
                         ids=["sgd-momentum", "adam"])
def test_loss_falls_more_than_tenfold(opt):
    model = MLP()
    x, y = blobs()
    losses = [opt.step(model, loss_fn, x, y) for _ in range(60)]
    assert all(isinstance(v, float) for v in losses)
    assert losses[-1] < losses[0] / 10, losses[::10]
    assert opt.num_graphs == 1 and model.traces == 1
    final, _ = loss_and_grad_by_hand(model.parameters(), x, y)
    assert final < losses[0] / 10  # the model itself learnt, not only the reported loss


# -- one step equals the update by hand --------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(momentum=0.0), dict(momentum=0.9, weight_decay=0.01),
                                dict(momentum=0.5, nesterov=True)])
def test_sgd_steps_match_numpy(kw):
    model = MLP()
    x, y = blobs(n=32)
    opt = lp.optim.SGD(0.05, **kw)
    p = {k: v.astype(np.float64) for k, v in model.parameters().items()}
    buf = {k: np.zeros_like(v) for k, v in p.items()}
    for _ in range(3):  # the later steps use the momentum buffer
        want_loss, g = loss_and_grad_by_hand(p, x, y)
        for k in p:
            p[k], buf[k] = sgd_by_hand(p[k], g[k], buf[k], 0.05, kw.get("momentum", 0.0),
                                       kw.get("weight_decay", 0.0), kw.get("nesterov", False))
        loss = opt.step(model, loss_fn, x, y)
        assert loss == pytest.approx(want_loss, rel=1e-5)
        for k, v in model.parameters().items():
            close(v, p[k])
            if kw.get("momentum"):
                close(opt.state[k]["momentum_buffer"], buf[k])
    assert opt.steps == 3


@pytest.mark.parametrize("cls, kw", [(lp.optim.Adam, dict()),
                                     (lp.optim.Adam, dict(betas=(0.8, 0.99), weight_decay=0.1)),
                                     (lp.optim.AdamW, dict(weight_decay=0.1))])
def test_adam_steps_match_numpy(cls, kw):
    model = MLP()
    x, y = blobs(n=32)
    lr, eps = 0.01, 1e-8
    b1, b2 = kw.get("betas", (0.9, 0.999))
    wd = kw.get("weight_decay", 0.0)
    opt = cls(lr, eps=eps, **kw)
    p = {k: v.astype(np.float64) for k, v in model.parameters().items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(1, 4):
        want_loss, g = loss_and_grad_by_hand(p, x, y)
        for k in p:
            p[k], m[k], v[k] = adam_by_hand(p[k], g[k], m[k], v[k], t, lr, b1, b2, eps, wd,
                                            decoupled=cls is lp.optim.AdamW)
        assert opt.step(model, loss_fn, x, y) == pytest.approx(want_loss, rel=1e-5)
        for k, arr in model.parameters().items():
            close(arr, p[k], rtol=1e-3, atol=2e-5)  # Adam's g/sqrt(v) amplifies f32 rounding
            close(opt.state[k]["exp_avg"], m[k])
            close(opt.state[k]["exp_avg_sq"], v[k], rtol=1e-3, atol=1e-9)


# -- in place, cached ---------------------------------------------------------------------------
def test_parameters_and_state_are_updated_in_place():
    model = MLP()
    x, y = blobs(n=16)
    opt = lp.optim.Adam(1e-2)
    params = model.parameters()
    before = {k: v.copy() for k, v in params.items()}
    opt.step(model, loss_fn, x, y)
    state = {k: dict(s) for k, s in opt.state.items()}
    m0 = {k: s["exp_avg"].copy() for k, s in opt.state.items()}
    opt.step(model, loss_fn, x, y)
    for k, arr in model.parameters().items():
        assert arr is params[k] and arr is getattr(getattr(model, k.split(".")[0]),
                                                   k.split(".")[1])
        assert not np.array_equal(arr, before[k])
        assert opt.state[k]["exp_avg"] is state[k]["exp_avg"]
        assert opt.state[k]["exp_avg_sq"] is state[k]["exp_avg_sq"]
        assert not np.array_equal(opt.state[k]["exp_avg"], m0[k])


def test_one_graph_per_signature_and_lr_is_an_input():
    model = MLP()
    x, y = blobs(n=32)
    opt = lp.optim.SGD(0.1, momentum=0.9)
    opt.step(model, loss_fn, x, y)
    opt.step(model, loss_fn, x[::-1].copy(), y[::-1].copy())
    assert (opt.num_graphs, model.traces) == (1, 1)
    opt.step(model, loss_fn, x[:8], y[:8])                       # new batch size
    opt.step(model, loss_fn, x, y.astype(np.int32))              # new label dtype
    assert (opt.num_graphs, model.traces) == (3, 3)
    opt.step(model, loss_fn, x, y)
    assert opt.num_graphs == 3

    # lr is read at every step without recompiling: compare with a by-hand update
    p = {k: v.astype(np.float64) for k, v in model.parameters().items()}
    buf = {k: s["momentum_buffer"].astype(np.float64) for k, s in opt.state.items()}
    _, g = loss_and_grad_by_hand(p, x, y)
    opt.lr = 0.02
    opt.step(model, loss_fn, x, y)
    assert opt.num_graphs == 3
    for k, arr in model.parameters().items():
        close(arr, sgd_by_hand(p[k], g[k], buf[k], 0.02, 0.9, 0.0)[0])
    opt.momentum = 0.5                                           # baked in: a new graph
    opt.step(model, loss_fn, x, y)
    assert opt.num_graphs == 4
    assert "matmul" in opt.ir() and opt.stats()["kernels"] > 0


def test_step_errors():
    model = MLP()
    x, y = blobs(n=8)
    opt = lp.optim.SGD(0.1)
    with pytest.raises(TypeError, match="lp.nn.Module"):
        opt.step(lambda x: x, loss_fn, x, y)
    opt.step(model, loss_fn, x, y)
    with pytest.raises(ValueError, match="one optimiser per model"):
        opt.step(MLP(), loss_fn, x, y)
    with pytest.raises(ValueError, match="no parameters"):
        lp.optim.SGD(0.1).step(nn.ReLU(), loss_fn, x, y)
    with pytest.raises(ValueError, match="lr"):
        lp.optim.SGD(-1.0)
    with pytest.raises(ValueError, match="betas"):
        lp.optim.Adam(1e-3, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        lp.optim.SGD(0.1, nesterov=True)
    with pytest.raises(Exception, match="cross_entropy"):
        opt.step(model, loss_fn, x, y[:4])


# -- against torch.optim, when torch is installed ----------------------------------------------
@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
                                      ("Adam", dict(lr=1e-2, weight_decay=1e-3)),
                                      ("AdamW", dict(lr=1e-2, weight_decay=0.1))])
def test_same_trajectory_as_torch(name, kw):
    torch = pytest.importorskip("torch")
    model = MLP()
    tnet = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        for (k, t), v in zip(tnet.state_dict().items(), model.parameters().values()):
            t.copy_(torch.from_numpy(v))
    topt = getattr(torch.optim, name)(tnet.parameters(), **kw)
    opt = getattr(lp.optim, name)(**kw)
    x, y = blobs(n=32)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(5):
        topt.zero_grad()
        with torch.enable_grad():  # another test's in-process peer may have turned it off
            tloss = torch.nn.functional.cross_entropy(tnet(tx), ty)
            tloss.backward()
        topt.step()
        assert opt.step(model, loss_fn, x, y) == pytest.approx(tloss.item(), rel=1e-4)
    for t, v in zip(tnet.state_dict().values(), model.parameters().values()):
        close(v, t.numpy(), rtol=1e-3, atol=1e-5)


def test_a_lambda_made_anew_each_step_compiles_once():
    model = MLP()
    x, y = blobs(n=8)
    opt = lp.optim.SGD(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):  # the same code reading the same variables: one graph
            opt.step(model, lambda m, a, b: lp.cross_entropy(m(a), b), x, y)
    assert opt.num_graphs == 1


def test_a_new_closure_each_step_warns():
    def make_loss(scale):
        return lambda m, a, b: lp.cross_entropy(m(a) * scale, b)

    model = MLP()
    x, y = blobs(n=8)
    opt = lp.optim.SGD(0.1)
    opt.step(model, make_loss(1.0), x, y)
    with pytest.warns(RuntimeWarning, match="define loss_fn once"):
        opt.step(model, make_loss(1.0), x, y)
    assert opt.num_graphs == 2



@pytest.mark.parametrize("make", [lambda lr: lp.optim.SGD(lr, momentum=0.9),
                                  lambda lr: lp.optim.Adam(lr)], ids=["SGD", "Adam"])
def test_step_reduced_is_the_step_split_at_one_flat_gradient_buffer(make):
    # lepton.distributed's hook: gradients and loss in one flat array between two graphs.
    x, y = blobs(n=16)
    a, b = MLP(), MLP()
    opt_a, opt_b = make(0.1), make(0.1)
    seen = []
    for _ in range(3):
        want = opt_a.step(a, loss_fn, x, y)
        assert opt_b.step_reduced(b, loss_fn, (x, y), seen.append) == want
        assert seen[-1].shape == (b.num_parameters() + 1,) and seen[-1][-1] == np.float32(want)
    for k, v in a.parameters().items():
        assert np.array_equal(b.parameters()[k], v), k  # bit for bit, in the model's order
    assert opt_b.num_graphs == 2 and opt_b.steps == 3
    # The update uses what reduce left in the buffer: doubled gradients with half the rate
    # are SGD's step (2 g and 2 buf are exact), and the returned loss is doubled too.
    c, d = MLP(), MLP()
    opt_c, opt_d = make(0.05), make(0.1)
    sgd = isinstance(opt_c, lp.optim.SGD)  # (Adam's update barely changes with 2 g)
    for i in range(3):
        want = opt_d.step(d, loss_fn, x, y)
        got = opt_c.step_reduced(c, loss_fn, (x, y), lambda f: f.__imul__(2))
        if i == 0 or sgd:
            assert got == pytest.approx(2 * want, rel=1e-6)
    for k, v in d.parameters().items():
        assert not sgd or np.allclose(c.parameters()[k], v, rtol=1e-6, atol=1e-7), k


def test_digits_example_learns(capsys):
    pytest.importorskip("sklearn")
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).parent.parent / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("train_digits", path)
    td = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(td)
    data = td.load(seed=0)
    nn.manual_seed(0)
    acc, _ = td.train("MLP", td.MLP(), lp.optim.SGD(0.1, momentum=0.9), data, 4, 64, 0)
    assert acc > 0.9
    assert "epoch  4/4" in capsys.readouterr().out
