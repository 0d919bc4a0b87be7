"""ConvTranspose2d and lp.conv_transpose2d against PyTorch (forward, one SGD step, state_dict),
the op's reference, its expansion into conv2d, and the IR text round trip."""
import numpy as np
import pytest

import lepton as lp
from lepton.compiler.passes.expand import expand
from lepton.ir import interpret, parse
from torch_oracle import load_torch, sgd_step_matches_torch

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)

CASES = [  # in, out, kernel, stride, padding, output_padding, groups, dilation, (H, W)
    (3, 4, 3, 2, 1, 1, 1, 1, (5, 6)),
    (4, 6, (3, 2), (2, 1), (0, 1), (1, 0), 2, 1, (6, 4)),
    (2, 2, 3, 1, 3, 0, 1, 2, (7, 7)),        # padding beyond the taps: the input is cropped
    (2, 3, 2, 2, 0, 0, 1, 1, (4, 4)),        # the autoencoder's upsampling layer
    (4, 4, 3, 2, 2, 1, 4, 2, (5, 5)),        # depthwise, dilated
    (2, 3, 3, 1, 0, 1, 1, 2, (3, 4)),        # output_padding >= stride (allowed by dilation)
    (3, 2, 1, 3, 0, 2, 1, 1, (3, 3)),        # 1x1 kernel, stride 3
]


def _layers(c):
    cin, cout, k, s, p, op, g, d, _ = c
    tm = torch.nn.ConvTranspose2d(cin, cout, k, s, p, op, g, True, d)
    m = lp.nn.ConvTranspose2d(cin, cout, k, s, p, op, g, True, d)
    load_torch(m, tm)
    return tm, m


@pytest.mark.parametrize("c", CASES)
def test_functional_matches_torch_compiled_and_interpreted(c):
    cin, cout, k, s, p, op, g, d, hw = c
    tm, _ = _layers(c)
    x = rng.standard_normal((2, cin) + hw).astype(np.float32)
    w, b = tm.weight.detach().numpy().astype(np.float32), tm.bias.detach().numpy().astype(np.float32)
    want = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                                torch.from_numpy(b), s, p, op, g, d).numpy()

    def f(x, w, b):
        return lp.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, groups=g,
                                   dilation=d)
    np.testing.assert_allclose(lp.compile(f)(x, w, b), want, rtol=1e-4, atol=1e-5)
    graph = lp.trace(f, x, w, b)
    np.testing.assert_allclose(interpret(graph, x, w, b)[0], want, rtol=1e-4, atol=1e-5)
    # the IR text round trip, and the expansion computes what the op's reference does
    assert parse(str(graph)) == graph and str(parse(str(graph))) == str(graph)
    expanded = expand(graph)
    assert "conv_transpose2d" not in {v.op for v in expanded.nodes}
    assert "conv2d" in {v.op for v in expanded.nodes}
    np.testing.assert_allclose(interpret(expanded, x, w, b)[0], want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("c", CASES[:5])
def test_module_forward_and_one_sgd_step_match_torch(c):
    cin, cout, k, s, p, op, g, d, hw = c
    tm, m = _layers(c)
    x = rng.standard_normal((3, cin) + hw).astype(np.float32)
    target = rng.standard_normal(tm(torch.from_numpy(x)).shape).astype(np.float32)
    np.testing.assert_allclose(lp.compile(m)(x), tm(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    sgd_step_matches_torch(m, tm, lambda out, t: ((out * out - t) ** 2).mean(), (x,), target)


def test_state_dict_names_layouts_and_initialisation_follow_torch():
    tm = torch.nn.ConvTranspose2d(6, 8, (3, 5), groups=2)
    m = lp.nn.ConvTranspose2d(6, 8, (3, 5), groups=2, rng=np.random.default_rng(1))
    assert {k: tuple(v.shape) for k, v in tm.state_dict().items()} == \
        {k: v.shape for k, v in m.parameters().items()}
    # kaiming_uniform(a=sqrt(5)) with fan_in = out/groups * kh * kw: bound 1/sqrt(fan_in)
    bound = 1 / np.sqrt(4 * 3 * 5)
    w = m.parameters()["weight"]
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(m.parameters()["bias"]).max() <= bound
    assert m.parameters()["weight"].dtype == np.float32
    assert "bias" not in lp.nn.ConvTranspose2d(2, 2, 3, bias=False).parameters()


def test_output_size_picks_the_output_padding():
    tm = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    m = lp.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    m.load_parameters({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((1, 2, 4, 5)).astype(np.float32)
    want = tm(torch.from_numpy(x), output_size=[8, 10]).detach().numpy()
    got = lp.compile(lambda x: m(x, output_size=(8, 10)))(x)
    assert got.shape == (1, 3, 8, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="output_size"):
        lp.trace(lambda x: m(x, output_size=(10, 10)), x)


def test_errors_name_the_argument_and_the_line():
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"output_padding .* smaller than.*test_conv_transpose"):
        lp.trace(lambda x, w: lp.conv_transpose2d(x, w, stride=2, output_padding=2), x, w)
    with pytest.raises(ValueError, match="do not match with groups=2"):
        lp.trace(lambda x, w: lp.conv_transpose2d(x, w, groups=2), np.ones((1, 3, 4, 4),
                                                                          np.float32), w)
    with pytest.raises(ValueError, match="bias must have shape"):
        lp.trace(lambda x, w: lp.conv_transpose2d(x, w, np.ones(2, np.float32)), x, w)
    with pytest.raises(ValueError, match="padding_mode"):
        lp.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="divisible by groups"):
        lp.nn.ConvTranspose2d(3, 4, 3, groups=2)
