"""lp.interpolate and Upsample against torch.nn.functional.interpolate / torch.nn.Upsample:
nearest (a broadcast or a gather), linear modes (matmuls with constant matrices), gradients."""
import numpy as np
import pytest

import lepton as lp
from lepton.ir import parse
from torch_oracle import load_torch, sgd_step_matches_torch

torch = pytest.importorskip("torch")
F = torch.nn.functional
rng = np.random.default_rng(0)

CASES = [
    ((2, 3, 5, 7), dict(scale_factor=2)),
    ((2, 3, 5, 7), dict(size=(7, 9))),
    ((2, 3, 5, 7), dict(size=(3, 4))),
    ((2, 3, 5, 7), dict(scale_factor=1.7)),
    ((2, 3, 5, 7), dict(scale_factor=(3, 0.5))),
    ((2, 3, 5, 7), dict(scale_factor=1.7, mode="nearest-exact")),
    ((1, 2, 5, 7), dict(scale_factor=2, mode="bilinear")),
    ((1, 2, 5, 7), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    ((1, 2, 5, 7), dict(size=(7, 9), mode="bilinear", align_corners=False)),
    ((1, 2, 5, 7), dict(size=(3, 2), mode="bilinear")),
    ((1, 2, 5, 7), dict(size=(1, 1), mode="bilinear", align_corners=True)),
    ((1, 2, 5, 7), dict(scale_factor=(1.5, 2.3), mode="bilinear")),
    ((1, 2, 5, 7), dict(scale_factor=0.6, mode="bilinear", recompute_scale_factor=True)),
    ((2, 3, 6), dict(scale_factor=2.5, mode="linear", align_corners=True)),
    ((2, 3, 6), dict(size=4)),
    ((1, 2, 3, 4, 5), dict(size=(4, 6, 7), mode="trilinear")),
]


@pytest.mark.parametrize("shape,kw", CASES)
def test_interpolate_matches_torch(shape, kw):
    x = rng.standard_normal(shape).astype(np.float32)
    want = F.interpolate(torch.from_numpy(x), **kw).numpy()
    got = lp.compile(lambda x: lp.interpolate(x, **kw))(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    g = lp.trace(lambda x: lp.interpolate(x, **kw), x)
    assert parse(str(g)) == g and str(parse(str(g))) == str(g)


@pytest.mark.parametrize("shape,kw", [CASES[0], CASES[3], CASES[8], CASES[13]])
def test_interpolate_gradient_matches_torch_in_float64(shape, kw):
    x = rng.standard_normal(shape)
    t = rng.standard_normal(F.interpolate(torch.from_numpy(x), **kw).shape)
    got = lp.grad(lambda x: lp.sum(lp.interpolate(x, **kw) * t))(x)
    tx = torch.from_numpy(x).requires_grad_()
    (F.interpolate(tx, **kw) * torch.from_numpy(t)).sum().backward()
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_nearest_integer_factor_is_pure_movement():
    g = lp.trace(lambda x: lp.interpolate(x, scale_factor=2), np.ones((1, 1, 3, 3), np.float32))
    assert {v.op for v in g.nodes} <= {"input", "reshape", "broadcast_to"}


def test_upsample_modules_match_torch_in_a_trained_model():
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1),
                             torch.nn.Upsample(scale_factor=2, mode="bilinear"),
                             torch.nn.Conv2d(3, 2, 3), torch.nn.UpsamplingNearest2d(size=(9, 11)),
                             torch.nn.UpsamplingBilinear2d(scale_factor=1.5))
    m = lp.nn.Sequential(lp.nn.Conv2d(2, 3, 3, padding=1),
                         lp.nn.Upsample(scale_factor=2, mode="bilinear"),
                         lp.nn.Conv2d(3, 2, 3), lp.nn.UpsamplingNearest2d(size=(9, 11)),
                         lp.nn.UpsamplingBilinear2d(scale_factor=1.5))
    load_torch(m, tm)
    assert repr(m[1]) == repr(tm[1]) == "Upsample(scale_factor=2.0, mode='bilinear')"
    x = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(lp.compile(m)(x), tm(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    target = rng.standard_normal((2, 2, 13, 16)).astype(np.float32)
    sgd_step_matches_torch(m, tm, lambda out, t: ((out - t) ** 2).mean(), (x,), target, lr=0.3)


def test_errors_name_the_argument():
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        lp.trace(lambda x: lp.interpolate(x), x)
    with pytest.raises(ValueError, match="align_corners can only be set"):
        lp.trace(lambda x: lp.interpolate(x, scale_factor=2, align_corners=True), x)
    with pytest.raises(ValueError, match="'bilinear' needs a 4-d input"):
        lp.trace(lambda x: lp.interpolate(x, scale_factor=2, mode="bilinear"),
                 np.ones((1, 1, 4), np.float32))
    with pytest.raises(NotImplementedError, match="bicubic.*test_upsample"):
        lp.trace(lambda x: lp.interpolate(x, scale_factor=2, mode="bicubic"), x)
    with pytest.raises(ValueError, match="size must be"):
        lp.trace(lambda x: lp.interpolate(x, size=(2, 3, 4)), x)
