"""Values a model reads (API.md): captured arrays and modules are read at every call, by
reference; lp.constant and freeze=True bake them in; captured Python scalars are guarded."""
import gc
import weakref

import numpy as np
import pytest

import lepton as lp

rng = np.random.default_rng(7)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


W_GLOBAL = np.ones(3, np.float32)


def times_global(x):
    return x * W_GLOBAL


def test_captured_array_is_read_in_place_without_copy_and_rebound():
    w = np.ones(3, np.float32)
    f = lp.compile(lambda x: x * w)
    x = f32(3)
    np.testing.assert_allclose(f(x), x)
    w[:] = 5
    np.testing.assert_allclose(f(x), 5 * x)
    w = np.full(3, 2.0, np.float32)  # rebound: the closure cell now holds another array
    np.testing.assert_allclose(f(x), 2 * x)
    assert len(f._cache) == 1 and "constant" not in f.ir()


def test_rebound_global_with_a_new_shape_or_dtype_compiles_a_new_signature():
    global W_GLOBAL
    f = lp.compile(times_global)
    x = f32(3)
    np.testing.assert_allclose(f(x), x)
    try:
        W_GLOBAL = np.full((2, 3), 3.0, np.float32)
        assert f(x).shape == (2, 3)
        np.testing.assert_allclose(f(x), np.broadcast_to(3 * x, (2, 3)))
        W_GLOBAL = np.full(3, 4.0, np.float64)
        got = f(x)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, 4 * x.astype(np.float64))
    finally:
        W_GLOBAL = np.ones(3, np.float32)
    np.testing.assert_allclose(f(x), x)


def test_arrays_in_containers_and_helper_functions_are_read_too():
    params = {"w": f32(4, 2), "b": [f32(2)]}

    def layer(x):
        return x @ params["w"] + params["b"][0]

    f = lp.compile(lambda x: lp.relu(layer(x)))
    x = f32(5, 4)
    np.testing.assert_allclose(f(x), np.maximum(x @ params["w"] + params["b"][0], 0), rtol=1e-5)
    params["w"] = f32(4, 2)            # replaced in the dict
    params["b"][0] *= -1
    np.testing.assert_allclose(f(x), np.maximum(x @ params["w"] + params["b"][0], 0), rtol=1e-5)


def test_constant_and_freeze_bake_values_in():
    w = np.full(3, 2.0, np.float32)
    baked = lp.compile(lambda x: x * lp.constant(w))
    frozen = lp.compile(lambda x: x * w, freeze=True)
    x = f32(3)
    baked(x), frozen(x)
    w[:] = 9
    np.testing.assert_allclose(baked(x), 2 * x)
    np.testing.assert_allclose(frozen(x), 2 * x)
    assert "constant" in frozen.ir()


class MLP(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = lp.nn.Linear(4, 8)
        self.fc2 = lp.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(lp.tanh(self.fc1(x)))


def ref_mlp(m, x):
    h = np.tanh(x @ m.fc1.weight.T + m.fc1.bias)
    return h @ m.fc2.weight.T + m.fc2.bias


def test_a_module_captured_by_a_lambda_sees_training_and_replaced_parameters():
    m = MLP()
    f = lp.compile(lambda x: m(x))
    x = f32(5, 4)
    np.testing.assert_allclose(f(x), ref_mlp(m, x), rtol=1e-5, atol=1e-6)
    opt = lp.optim.SGD(0.5)
    for _ in range(3):
        opt.step(m, lambda m, x: lp.sum(m(x) ** 2), x)
    np.testing.assert_allclose(f(x), ref_mlp(m, x), rtol=1e-5, atol=1e-6)
    m.fc1.weight = f32(8, 4)           # an attribute rebound to another array
    m.load_parameters({k: f32(*v.shape) for k, v in m.parameters().items()})
    np.testing.assert_allclose(f(x), ref_mlp(m, x), rtol=1e-5, atol=1e-6)
    frozen = lp.compile(m, freeze=True)
    before = frozen(x)
    m.fc2.bias += 1
    np.testing.assert_allclose(frozen(x), before)
    np.testing.assert_allclose(lp.compile(m)(x), ref_mlp(m, x), rtol=1e-5, atol=1e-6)


def test_captured_python_scalars_are_constants_that_recompile_when_changed():
    scale = 2.0
    f = lp.compile(lambda x: x * scale)
    x = f32(3)
    np.testing.assert_allclose(f(x), 2 * x)
    scale = 3.0
    np.testing.assert_allclose(f(x), 3 * x)
    assert "constant" in f.ir()


def _bce(logits, target: float):
    """Binary cross-entropy on logits, mean over the batch (PyTorch's BCEWithLogitsLoss)."""
    return lp.mean(lp.maximum(logits, 0.0) - logits * target
                   + lp.log(1.0 + lp.exp(-lp.abs(logits))))


def _np_bce(logits, target):
    logits = logits.astype(np.float64)
    return np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-abs(logits))))


class Net(lp.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.a, self.b = lp.nn.Linear(i, 16), lp.nn.Linear(16, o)

    def forward(self, x):
        return self.b(lp.tanh(self.a(x)))

    def ref(self, x):
        return np.tanh(x @ self.a.weight.T + self.a.bias) @ self.b.weight.T + self.b.bias


def test_gan_generator_step_sees_the_current_discriminator():
    """Issue 7: a GAN written the PyTorch way, D captured by G's loss. Each G loss must be
    the loss recomputed with the current D (a D baked in at the first step would drift)."""
    lp.nn.manual_seed(0)
    G, D = Net(2, 2), Net(2, 1)
    opt_g, opt_d = lp.optim.Adam(1e-2), lp.optim.Adam(1e-2)
    angles = rng.integers(0, 8, 64) * (2 * np.pi / 8)
    real = (np.stack([np.cos(angles), np.sin(angles)], 1) * 2).astype(np.float32)
    d0 = D.b.weight.copy()
    for _ in range(6):
        z = f32(64, 2)
        opt_d.step(D, lambda D, x, z: _bce(D(x), 1.0) + _bce(D(G(z)), 0.0), real, z)
        want = _np_bce(D.ref(G.ref(z)), 1.0)
        got = opt_g.step(G, lambda G, z: _bce(D(G(z)), 1.0), z)
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5)
    assert not np.allclose(D.b.weight, d0)
    assert opt_g.num_graphs == 1 and opt_d.num_graphs == 1


def test_no_reference_to_arrays_it_does_not_read_is_kept():
    stash = {"used": np.ones(10, np.float32), "unused": np.ones(10, np.float32)}
    f = lp.compile(lambda x: x + stash["used"])
    f(f32(10))
    ref = weakref.ref(stash.pop("unused"))
    gc.collect()
    assert ref() is None


class Counted(lp.nn.Module):
    """Counts its training-mode calls in a buffer the compiled code writes."""

    def __init__(self):
        super().__init__()
        self._calls = np.zeros((), np.float32)
        self.w = f32(3, 3)

    def forward(self, x):
        if self.training:
            self._assign("_calls", lp.add(self._calls, 1.0))
        return x @ self.w.T + self._calls


def test_a_traced_assignment_is_written_after_every_call_and_read_after_it():
    m = Counted()
    f = lp.compile(m)
    x = f32(2, 3)
    for k in range(1, 4):
        np.testing.assert_allclose(f(x), x @ m.w.T + k, rtol=1e-5, atol=1e-5)
        assert m._calls == k
    m.w[:] = 1.0  # read through the view `w.T`: an in-place change is seen
    np.testing.assert_allclose(f(x), x @ m.w.T + 4, rtol=1e-5)


def test_train_and_eval_are_part_of_the_signature_and_both_stay_compiled():
    m = Counted()
    f = lp.compile(m)
    x = f32(2, 3)
    f(x)
    m.eval()
    assert not any(sub.training for sub in m.modules())
    np.testing.assert_allclose(f(x), x @ m.w.T + 1, rtol=1e-5)
    assert m._calls == 1                       # eval: no write
    m.train()
    f(x)
    assert m._calls == 2
    (variants,) = f._cache.values()
    assert len(variants) == 2                  # both modes compiled, neither traced twice
    m.eval()
    f(x)
    assert len(variants) == 2


def test_check_mode_compares_with_the_inputs_before_the_writes():
    m = Counted()
    f = lp.compile(m, check=True)
    x = f32(2, 3)
    f(x)
    f(x)
    assert m._calls == 2
