"""MultiheadAttention against torch.nn.MultiheadAttention: parameter names and layouts,
initialisation, outputs and weights with and without masks, one SGD step, gradients."""
import warnings

import numpy as np
import pytest

import lepton as lp
from lepton.ir import parse
from torch_oracle import load_torch, sgd_step_matches_torch

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)
E, H, L, S, N = 8, 2, 4, 6, 3

CONFIGS = [dict(), dict(batch_first=True), dict(kdim=5, vdim=3),
           dict(add_bias_kv=True, add_zero_attn=True), dict(bias=False)]


def _pair(**kw):
    tm = torch.nn.MultiheadAttention(E, H, **kw)
    m = lp.nn.MultiheadAttention(E, H, **kw)
    load_torch(m, tm)
    return tm, m


def _inputs(kw, batched=True):
    def arr(s, d):
        shape = ((N, s, d) if kw.get("batch_first") else (s, N, d)) if batched else (s, d)
        return rng.standard_normal(shape).astype(np.float32)
    return arr(L, E), arr(S, kw.get("kdim", E)), arr(S, kw.get("vdim", E))


def _masks():
    kpm = rng.random((N, S)) < 0.3
    kpm[:, 0] = False  # every query keeps a key (a fully masked row is NaN in both)
    return [dict(), dict(key_padding_mask=kpm, attn_mask=rng.random((L, S)) < 0.3),
            dict(attn_mask=rng.standard_normal((L, S)).astype(np.float32)),
            dict(attn_mask=np.where(rng.random((N * H, L, S)) < 0.3, -np.inf, 0).astype(
                np.float32), average_attn_weights=False, key_padding_mask=kpm),
            dict(need_weights=False, key_padding_mask=kpm)]


def _torch(x):
    return torch.from_numpy(x) if isinstance(x, np.ndarray) else x


@pytest.mark.parametrize("kw", CONFIGS)
def test_forward_matches_torch_with_masks(kw):
    tm, m = _pair(**kw)
    assert list(m.parameters()) == list(tm.state_dict())
    q, k, v = _inputs(kw)
    for extra in _masks():
        with warnings.catch_warnings():  # torch warns of a bool and a float mask together
            warnings.simplefilter("ignore")
            to, tw = tm(*map(_torch, (q, k, v)), **{a: _torch(b) for a, b in extra.items()})
        o, w = lp.compile(lambda q, k, v: m(q, k, v, **extra))(q, k, v)
        np.testing.assert_allclose(o, to.detach().numpy(), rtol=1e-4, atol=1e-6)
        if tw is None:
            assert w is None
        else:
            np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_unbatched_inputs_and_ir_round_trip():
    tm, m = _pair()
    q, k, v = _inputs({}, batched=False)
    kpm = np.array([False, True, False, False, True, False])
    to, tw = tm(*map(_torch, (q, k, v)), key_padding_mask=torch.from_numpy(kpm))
    o, w = lp.compile(lambda q, k, v: m(q, k, v, key_padding_mask=kpm))(q, k, v)
    assert o.shape == (L, E) and w.shape == (L, S)
    np.testing.assert_allclose(o, to.detach().numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-4, atol=1e-6)
    g = lp.trace(lambda q, k, v: m(q, k, v), q, k, v)
    assert parse(str(g)) == g and str(parse(str(g))) == str(g)


@pytest.mark.parametrize("kw", [dict(batch_first=True), dict(kdim=5, vdim=3, add_bias_kv=True)])
def test_one_sgd_step_matches_torch(kw):
    tm, m = _pair(**kw)
    q, k, v = _inputs(kw)
    t = rng.standard_normal((N, L, E) if kw.get("batch_first") else (L, N, E)).astype(np.float32)
    mask = rng.random((L, S)) < 0.3

    def loss(outputs, t):
        out, w = outputs
        return ((out - t) ** 2).mean() + (w * w).sum()
    sgd_step_matches_torch(m, tm, loss, (q, k, v), t, kwargs={"attn_mask": mask})


def test_gradient_wrt_inputs_matches_torch_in_float64():
    tm, m = _pair()
    tm = tm.double()
    m.load_parameters({k: val.detach().numpy().astype(np.float32) for k, val in
                       tm.state_dict().items()})
    params = {k: val.detach().numpy() for k, val in tm.state_dict().items()}
    q = rng.standard_normal((L, N, E))
    kv = rng.standard_normal((S, N, E))

    def f(p, q, kv):
        return lp.sum(lp.tanh(m.apply(p, q, kv, kv)[0]))
    gp, gq = lp.grad(f, argnums=(0, 1))(params, q, kv)
    tq = torch.from_numpy(q).requires_grad_()
    tkv = torch.from_numpy(kv)
    torch.tanh(tm(tq, tkv, tkv)[0]).sum().backward()
    np.testing.assert_allclose(gq, tq.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(gp[name], p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_initialisation_follows_torch():
    m = lp.nn.MultiheadAttention(16, 4, rng=np.random.default_rng(3))
    p = m.parameters()
    bound = np.sqrt(6 / (16 + 48))  # xavier_uniform on (3E, E)
    assert p["in_proj_weight"].shape == (48, 16)
    assert bound * 0.9 < np.abs(p["in_proj_weight"]).max() <= bound
    assert not p["in_proj_bias"].any() and not p["out_proj.bias"].any()
    assert np.abs(p["out_proj.weight"]).max() <= 1 / 4  # Linear's kaiming bound 1/sqrt(16)
    assert all(a.dtype == np.float32 for a in p.values())


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        lp.nn.MultiheadAttention(10, 3)
    q = np.ones((L, N, E), np.float32)
    m = lp.nn.MultiheadAttention(E, H)
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        lp.trace(lambda q: m(q, q, q, attn_mask=np.zeros((3, 3), bool)), q)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        lp.trace(lambda q: m(q, q, q, key_padding_mask=np.zeros((N, 3), bool)), q)


def test_dropout_on_the_attention_weights_in_training_mode_only():
    m = lp.nn.MultiheadAttention(E, H, dropout=0.5)
    q = np.random.default_rng(0).standard_normal((L, N, E)).astype(np.float32)
    f = lp.compile(lambda q: m(q, q, q))
    (o1, w1), (o2, w2) = f(q), f(q)
    assert not np.allclose(w1, w2)                     # a new mask each call
    assert np.isclose(w1.sum(-1).mean(), 1.0, atol=0.3)  # inverted dropout keeps the mean
    m.eval()
    (o3, w3), (o4, w4) = f(q), f(q)
    np.testing.assert_array_equal(w3, w4)
    np.testing.assert_allclose(w3.sum(-1), 1.0, rtol=1e-5)
