"""BatchNorm1d / BatchNorm2d and lp.batch_norm against PyTorch: constructor defaults, parameter
and buffer names, forward in training and eval mode, running-statistics updates inside compiled
functions and training steps, gradients (finite differences in float64) and fusion."""
import numpy as np
import pytest

import lepton as lp

rng = np.random.default_rng(3)


def f32(*shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def torch_bn(torch, m):
    """The PyTorch module equal to lepton BatchNorm `m` (same arguments, same state)."""
    cls = getattr(torch.nn, type(m).__name__)
    t = cls(m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
            track_running_stats=m.track_running_stats, bias=m.bias is not None)
    t.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})
    return t.train(m.training)


def assert_same_state(m, t, rtol=1e-5, atol=1e-6):
    want = t.state_dict()
    assert list(m.state_dict()) == list(want)
    for k, v in m.state_dict().items():
        np.testing.assert_allclose(v, want[k].numpy(), rtol=rtol, atol=atol, err_msg=k)


def test_defaults_names_and_initial_values_follow_pytorch():
    torch = pytest.importorskip("torch")
    for cls in ("BatchNorm1d", "BatchNorm2d"):
        for kw in ({}, {"affine": False}, {"track_running_stats": False}, {"momentum": None},
                   {"bias": False}):
            m, t = getattr(lp.nn, cls)(5, **kw), getattr(torch.nn, cls)(5, **kw)
            assert (m.eps, m.momentum, m.affine, m.track_running_stats) == (
                t.eps, t.momentum, t.affine, t.track_running_stats)
            assert list(m.parameters()) == [k for k, _ in t.named_parameters()]
            assert list(m.buffers()) == [k for k, _ in t.named_buffers()]
            assert_same_state(m, t, rtol=0, atol=0)
            for k, v in m.state_dict().items():
                assert v.dtype == t.state_dict()[k].numpy().dtype
            assert repr(m) == repr(t)


@pytest.mark.parametrize("cls, shape", [("BatchNorm1d", (8, 5)), ("BatchNorm1d", (4, 5, 7)),
                                        ("BatchNorm2d", (4, 5, 3, 6))])
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False, "momentum": 0.3},
                                {"track_running_stats": False}, {"eps": 1e-2, "bias": False}])
def test_forward_and_running_statistics_match_torch_in_both_modes(cls, shape, kw):
    torch = pytest.importorskip("torch")
    m = getattr(lp.nn, cls)(shape[1], **kw)
    for p in m.parameters().values():
        p[:] = f32(shape[1])
    t = torch_bn(torch, m)
    f = lp.compile(m)
    for _ in range(3):  # each training-mode call updates the running statistics
        x = f32(*shape, scale=3.0, shift=2.0)
        np.testing.assert_allclose(f(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        assert_same_state(m, t)
    m.eval(), t.eval()
    for _ in range(2):  # eval: running statistics used (batch ones without them), not updated
        x = f32(*shape, scale=3.0, shift=2.0)
        np.testing.assert_allclose(f(x), t(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        assert_same_state(m, t)


def test_functional_batch_norm_matches_torch_and_updates_arrays_in_place():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b = f32(6, 3, 4, scale=2.0), f32(3), f32(3)
    rm, rv = f32(3), np.abs(f32(3)) + 0.5
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    f = lp.compile(lambda x: lp.batch_norm(x, rm, rv, w, b, training=True, momentum=0.2,
                                           eps=1e-3))
    for _ in range(2):
        want = F.batch_norm(torch.from_numpy(x), trm, trv, torch.from_numpy(w),
                            torch.from_numpy(b), training=True, momentum=0.2, eps=1e-3)
        np.testing.assert_allclose(f(x), want.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-5, atol=1e-6)
    ev = lp.compile(lambda x: lp.batch_norm(x, rm, rv))
    np.testing.assert_allclose(ev(x), F.batch_norm(torch.from_numpy(x), trm, trv).numpy(),
                               rtol=1e-4, atol=1e-5)
    batch = lp.compile(lambda x: lp.batch_norm(x, None, None, training=True))
    np.testing.assert_allclose(batch(x), F.batch_norm(torch.from_numpy(x), None, None,
                                                      training=True).numpy(), rtol=1e-4,
                               atol=1e-5)


def test_gradients_through_batch_statistics_match_finite_differences():
    x = rng.standard_normal((5, 3, 2, 2)) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    c = rng.standard_normal((5, 3, 2, 2))   # a random cotangent, so no gradient is trivial

    def loss(x, w, b):
        return lp.sum(lp.batch_norm(x, None, None, w, b, training=True) * c)

    def ref(x, w, b):
        mu = x.mean(axis=(0, 2, 3), keepdims=True)
        var = x.var(axis=(0, 2, 3), keepdims=True)
        y = (x - mu) / np.sqrt(var + 1e-5) * w[:, None, None] + b[:, None, None]
        return np.sum(y * c)

    got = lp.grad(loss, argnums=(0, 1, 2))(x, w, b)
    args, h = [x, w, b], 1e-6
    for i, g in enumerate(got):
        assert g.dtype == np.float64
        num = np.zeros_like(args[i])
        for j in np.ndindex(args[i].shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[i][j] += h
            minus[i][j] -= h
            num[j] = (ref(*plus) - ref(*minus)) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7, err_msg=f"argument {i}")
    assert np.abs(got[0]).max() > 0.1


def test_the_training_forward_reads_its_input_three_times_and_stores_no_full_temporary():
    m = lp.nn.BatchNorm2d(8)
    x = f32(16, 8, 12, 12)
    f = lp.compile(m)
    f(x)
    stats = f.stats()
    # mean, then (x - mean)^2 summed in one kernel, then one multiply-add: nothing of x's size
    # goes to memory but the output
    assert any("sub+square+sum" in g for g in stats["fused_groups"]), stats["fused_groups"]
    assert stats["intermediate_bytes"] < x.nbytes


class SmallCNN(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = lp.nn.Conv2d(2, 4, 3, padding=1)
        self.bn = lp.nn.BatchNorm2d(4)
        self.fc = lp.nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        h = lp.relu(self.bn(self.conv(x)))
        return self.fc(h.reshape(h.shape[0], -1))


def loss_fn(model, x, y):
    return lp.cross_entropy(model(x), y)


def test_sgd_steps_match_torch_with_running_statistics_updated_in_the_step():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                             torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))
    m = SmallCNN()
    names = dict(zip(tm.state_dict(), m.state_dict()))  # torch key -> lepton key
    assert m.load_state_dict({names[k]: v.numpy() for k, v in tm.state_dict().items()}) == ([],
                                                                                             [])
    opt = lp.optim.SGD(0.1, momentum=0.9)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        x, y = f32(8, 2, 6, 6, scale=2.0, shift=1.0), rng.integers(0, 5, 8)
        loss = opt.step(m, loss_fn, x, y)
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert loss == pytest.approx(tloss.item(), rel=1e-4)
        mine = m.state_dict()
        for k, v in tm.state_dict().items():
            np.testing.assert_allclose(mine[names[k]], v.numpy(), rtol=1e-4, atol=1e-6,
                                       err_msg=f"{names[k]} after step {step + 1}")
    assert m.bn.num_batches_tracked == 3 and opt.num_graphs == 1
    assert set(opt.state) == set(m.parameters())      # running statistics are not trained
    m.eval(), tm.eval()
    x = f32(5, 2, 6, 6)
    np.testing.assert_allclose(lp.compile(m)(x), tm(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    assert m.bn.num_batches_tracked == 3


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="num_features"):
        lp.nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match="momentum"):
        lp.nn.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"BatchNorm2d expected 4D input \(got 3D input"):
        lp.compile(lp.nn.BatchNorm2d(3))(f32(2, 3, 4))
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D"):
        lp.compile(lp.nn.BatchNorm1d(3))(f32(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) got an input with 4 channels"):
        lp.compile(lp.nn.BatchNorm1d(3))(f32(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        lp.compile(lp.nn.BatchNorm1d(3))(f32(1, 3))
    lp.compile(lp.nn.BatchNorm1d(3).eval())(f32(1, 3))  # fine in eval mode, as PyTorch
    with pytest.raises(lp.ir.OpError, match="running_mean and running_var must be given"):
        lp.compile(lambda x: lp.batch_norm(x, None, None))(f32(2, 3))
    with pytest.raises(lp.ir.OpError, match=r"weight must have shape \(3,\)"):
        lp.compile(lambda x: lp.batch_norm(x, None, None, f32(4), training=True))(f32(2, 3))
    with pytest.raises(TypeError, match="running_mean is updated in place"):
        lp.compile(lambda x, rm: lp.batch_norm(x, rm, None, training=True))(f32(2, 3), f32(3))


def test_training_steps_in_both_modes_keep_both_graphs():
    m = SmallCNN()
    opt = lp.optim.SGD(0.01)
    x, y = f32(4, 2, 6, 6), rng.integers(0, 5, 4)
    opt.step(m, loss_fn, x, y)
    m.bn.eval()                          # e.g. fine-tuning with frozen statistics
    frozen = m.bn.running_mean.copy()
    opt.step(m, loss_fn, x, y)
    np.testing.assert_array_equal(m.bn.running_mean, frozen)
    m.bn.train()
    opt.step(m, loss_fn, x, y)
    assert m.bn.num_batches_tracked == 2 and opt.num_graphs == 2
