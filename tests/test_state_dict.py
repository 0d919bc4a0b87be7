"""Module buffers and state: register_buffer, buffers(), state_dict() / load_state_dict() with
PyTorch's keys and results (IncompatibleKeys), and that load_parameters still works."""
import numpy as np
import pytest

import lepton as lp


class Scaled(lp.nn.Module):
    """A parameter, a persistent and a non-persistent buffer, and a child with buffers."""

    def __init__(self):
        super().__init__()
        self.fc = lp.nn.Linear(3, 4)
        self.register_buffer("scale", np.full(4, 2.0, np.float32))
        self.register_buffer("cache", np.zeros(4, np.float32), persistent=False)
        self.register_buffer("absent", None)
        self.bn = lp.nn.BatchNorm1d(4)

    def forward(self, x):
        return self.bn(self.fc(x) * self.scale)


def test_buffers_are_not_parameters_and_state_dict_has_the_persistent_ones():
    m = Scaled()
    assert list(m.parameters()) == ["fc.weight", "fc.bias", "bn.weight", "bn.bias"]
    assert list(m.buffers()) == ["scale", "cache", "bn.running_mean", "bn.running_var",
                                 "bn.num_batches_tracked"]
    sd = m.state_dict()
    assert list(sd) == ["fc.weight", "fc.bias", "scale", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert sd["scale"] is m.scale and sd["bn.running_var"] is m.bn.running_var  # not copies
    nbt = sd["bn.num_batches_tracked"]
    assert nbt.dtype == np.int64 and nbt.shape == () and nbt == 0
    m.scale = np.ones(4, np.float32)          # rebinding keeps it a buffer
    assert "scale" not in m.parameters() and m.state_dict()["scale"] is m.scale


def test_register_buffer_checks_its_arguments():
    m = Scaled()
    for name in ("", "a.b", "_private"):
        with pytest.raises(KeyError, match="register_buffer"):
            m.register_buffer(name, np.zeros(1, np.float32))
    with pytest.raises(TypeError, match="string"):
        m.register_buffer(3, np.zeros(1, np.float32))
    with pytest.raises(KeyError, match="'fc' of Scaled already holds a module"):
        m.register_buffer("fc", np.zeros(1, np.float32))
    m.p = np.zeros(2, np.float32)
    with pytest.raises(KeyError, match="'p' of Scaled already holds a parameter"):
        m.register_buffer("p", np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="'b'.*list"):
        m.register_buffer("b", [1.0])


def test_optimisers_do_not_train_buffers():
    m = Scaled()
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    opt = lp.optim.Adam(0.1)
    opt.step(m, lambda m, x: lp.sum(m(x)[:, 0]), x)
    assert set(opt.state) == set(m.parameters())
    np.testing.assert_array_equal(m.scale, 2.0)
    assert m.bn.num_batches_tracked == 1     # written by the step, not trained


def test_a_torch_state_dict_loads_unchanged_and_round_trips():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3),
                              torch.nn.Flatten(), torch.nn.Linear(12, 2), torch.nn.BatchNorm1d(2))
    with torch.no_grad():
        net.train()(torch.randn(5, 2, 4, 4))  # non-trivial running statistics
        net.train()(torch.randn(5, 2, 4, 4))
    m = lp.nn.Sequential(lp.nn.Conv2d(2, 3, 3), lp.nn.BatchNorm2d(3), lp.nn.Flatten(),
                         lp.nn.Linear(12, 2), lp.nn.BatchNorm1d(2))
    want = {k: v.numpy() for k, v in net.state_dict().items()}
    assert list(m.state_dict()) == list(want)
    result = m.load_state_dict(want)
    assert result == ([], []) and result.missing_keys == [] and result.unexpected_keys == []
    assert type(result).__name__ == "IncompatibleKeys"
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, want[k])
        assert v.dtype == want[k].dtype
    assert m[1].num_batches_tracked == 2
    back = net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in
                                m.state_dict().items()})
    assert not back.missing_keys and not back.unexpected_keys


def test_load_state_dict_strict_and_lenient():
    m = Scaled()
    good = {k: v.copy() + 1 for k, v in m.state_dict().items()}
    before = {k: v.copy() for k, v in m.state_dict().items()}
    partial = {k: v for k, v in good.items() if k != "bn.running_mean"}
    partial["extra.weight"] = np.zeros(1, np.float32)
    partial["cache"] = np.zeros(4, np.float32)          # non-persistent: not a key of the state
    with pytest.raises(KeyError, match=r"missing \['bn.running_mean'\]; unexpected "
                                       r"\['extra.weight', 'cache'\]"):
        m.load_state_dict(partial)
    assert all(np.array_equal(v, before[k]) for k, v in m.state_dict().items())
    missing, unexpected = m.load_state_dict(partial, strict=False)
    assert missing == ["bn.running_mean"] and unexpected == ["extra.weight", "cache"]
    np.testing.assert_array_equal(m.bn.running_var, good["bn.running_var"])
    np.testing.assert_array_equal(m.bn.running_mean, before["bn.running_mean"])
    np.testing.assert_array_equal(m.cache, 0.0)
    assert m.bn.num_batches_tracked == 1


@pytest.mark.parametrize("key, value, exc, msg", [
    ("bn.running_var", np.ones(5, np.float32), ValueError,
     r"'bn.running_var': expected shape \(4,\), got \(5,\)"),
    ("bn.num_batches_tracked", np.zeros((), np.int32), TypeError,
     "'bn.num_batches_tracked': expected dtype int64, got int32"),
    ("scale", np.ones(4, np.float64), TypeError, "expected dtype float32, got float64"),
])
def test_load_state_dict_shape_and_dtype_errors_write_nothing(key, value, exc, msg):
    m = Scaled()
    sd = {k: v.copy() + 1 for k, v in m.state_dict().items()}
    sd[key] = value
    before = {k: v.copy() for k, v in m.state_dict().items()}
    for strict in (True, False):  # a mismatch is an error either way, as PyTorch
        with pytest.raises(exc, match=msg):
            m.load_state_dict(sd, strict=strict)
        assert all(np.array_equal(v, before[k]) for k, v in m.state_dict().items())
    with pytest.raises(TypeError, match="dict"):
        m.load_state_dict([1, 2])


def test_load_parameters_still_loads_parameters_only():
    m = Scaled()
    params = {k: v + 1 for k, v in m.parameters().items()}
    m.load_parameters(params)
    np.testing.assert_array_equal(m.bn.weight, 2.0)
    with pytest.raises(KeyError, match=r"unexpected \['bn.running_mean'\]"):
        m.load_parameters({**params, "bn.running_mean": np.zeros(4, np.float32)})
    m.load_parameters({"fc.bias": np.zeros(4, np.float32)}, strict=False)
    np.testing.assert_array_equal(m.fc.bias, 0.0)


def test_a_compiled_model_reads_loaded_buffers():
    m = Scaled().eval()
    f = lp.compile(m)
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    f(x)
    sd = {k: v.copy() for k, v in m.state_dict().items()}
    sd["bn.running_mean"] = np.full(4, 3.0, np.float32)
    sd["scale"] = np.full(4, -1.0, np.float32)
    m.load_state_dict(sd)
    h = -(x @ m.fc.weight.T + m.fc.bias)
    want = (h - 3.0) / np.sqrt(1.0 + 1e-5) * m.bn.weight + m.bn.bias
    np.testing.assert_allclose(f(x), want, rtol=1e-5, atol=1e-6)
