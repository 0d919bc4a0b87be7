"""lp.random, lp.dropout and lp.nn.Dropout: Philox-4x32-10 against an independent reference and
the published known answers, the same bits compiled, interpreted and eager, statistics, keys,
dropout's gradient, and the Dropout layer's generator (manual_seed, optimiser steps, threads)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import lepton as lp
from lepton.ir import interpret, parse
from lepton.ir.ops import OpError
from lepton.ir.ops.random import philox4x32

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 1_000_000


# -- Philox-4x32-10 from the paper, one block at a time in Python ints --------------------------
def philox_block(ctr, key, rounds=10):
    """Salmon et al. 2011, section 3.3 (Philox-4x32): each round multiplies words 0 and 2 by
    0xD2511F53 and 0xCD9E8D57, permutes, and xors the high halves with the round key; the key
    is bumped by the Weyl constants 0x9E3779B9 and 0xBB67AE85 between rounds."""
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) % 2 ** 32, (k1 + 0xBB67AE85) % 2 ** 32
        p0, p1 = 0xD2511F53 * x0, 0xCD9E8D57 * x2
        x0, x1, x2, x3 = (p1 >> 32) ^ x1 ^ k0, p1 % 2 ** 32, (p0 >> 32) ^ x3 ^ k1, p0 % 2 ** 32
    return [x0, x1, x2, x3]


# Random123's kat_vectors for philox4x32 10: counter, key, result
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


@pytest.mark.parametrize("ctr,key,want", KAT)
def test_known_answers_of_the_reference_and_the_vectorised_numpy(ctr, key, want):
    assert philox_block(ctr, key) == want
    got = philox4x32(np.array(ctr, np.uint32).reshape(4, 1), key)[:, 0]
    assert [int(w) for w in got] == want


def test_the_vectorised_numpy_matches_the_reference_on_random_counters():
    rng = np.random.default_rng(1)
    ctrs = rng.integers(0, 2 ** 32, (4, 50), dtype=np.uint64).astype(np.uint32)
    key = [int(k) for k in rng.integers(0, 2 ** 32, 2)]
    got = philox4x32(ctrs, key)
    for j in range(50):
        assert [int(w) for w in got[:, j]] == philox_block([int(c) for c in ctrs[:, j]], key)


def _words(key, n):
    """The first n words of key's stream by the reference: block j is counter (j, 0, 0, 0)."""
    k = [int(w) % 2 ** 32 for w in key]
    return [w for j in range(-(-n // 4)) for w in philox_block([j, 0, 0, 0], k)][:n]


def test_the_stream_layout_and_the_float_conversions():
    key = lp.random.key(2 ** 40 + 17)
    assert key.dtype == np.int32 and [int(w) % 2 ** 32 for w in key] == [17, 2 ** 8]
    words = _words(key, 14)
    bits = lp.random.split(key, 7)                       # i32 words, row-major
    assert [int(w) % 2 ** 32 for w in bits.reshape(-1)] == words
    u32 = lp.random.uniform(key, (2, 7))
    assert u32.dtype == np.float32
    assert u32.reshape(-1).tolist() == [(w >> 8) / 2 ** 24 for w in words]
    u64 = lp.random.uniform(key, (7,), lp.float64)
    assert u64.tolist() == [((a >> 5) * 2 ** 26 + (b >> 6)) / 2 ** 53
                            for a, b in zip(words[0::2], words[1::2])]


# -- compiled == interpreted == eager, on any shape ---------------------------------------------
SHAPES = [(), (1,), (3,), (4,), (5,), (7, 9), (2, 3, 67), (0, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [lp.float32, lp.float64])
def test_compiled_draws_equal_the_interpreter_bit_for_bit(shape, dtype):
    key = lp.random.key(123)

    def draws(k):
        k1, k2, k3 = lp.random.split(k, 3)
        return (lp.random.uniform(k1, shape, dtype), lp.random.bernoulli(k2, 0.3, shape),
                lp.random.split(k3, 5), lp.random.uniform(k1, shape, dtype, -2.0, 3.0),
                lp.random.normal(k2, shape, dtype))
    got = lp.compile(draws)(key)
    want = interpret(lp.trace(draws, key), key)
    eager = [lp.random.uniform(lp.random.split(key, 3)[0], shape, dtype)]
    for g, w in zip(got[:3] + tuple(eager), want[:3] + want[:1]):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()
    # a range may round differently (compiled code fuses the multiply-add); normal goes through
    # log and cos, whose compiled forms are polynomials: close, not equal
    tol = 2e-6 if dtype == lp.float32 else 1e-14
    for g, w in zip(got[3:], want[3:]):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_a_key_is_an_argument_like_any_array_and_new_keys_need_no_new_compile():
    f = lp.compile(lambda k: lp.random.uniform(k, (1000,)))
    a, b = f(lp.random.key(1)), f(lp.random.key(2))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, f(lp.random.key(1)))
    assert sum(len(v) for v in f._cache.values()) == 1
    assert lp.random.uniform(lp.random.key(1), (1000,)).tobytes() == a.tobytes()


def test_constant_keys_fold_to_the_same_numbers():
    f = lp.compile(lambda: lp.random.normal(lp.random.key(9), (3, 5), lp.float64))
    got = f()
    assert "philox" not in f.ir()  # folded by its NumPy reference
    np.testing.assert_allclose(got, lp.random.normal(lp.random.key(9), (3, 5), lp.float64),
                               rtol=1e-14)


def test_the_op_prints_and_parses_back():
    g = lp.trace(lambda k: lp.random.uniform(k, (2, 3)), lp.random.key(0))
    text = str(g)
    assert "philox[shape=(2, 3), dtype=f32]" in text
    g2 = parse(text)
    assert g2 == g and str(g2) == text


# -- statistics ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def samples():
    k = lp.random.split(lp.random.key(2024), 4)
    draw = lp.compile(lambda k: (lp.random.uniform(k[0], (N,)), lp.random.normal(k[1], (N,)),
                                 lp.random.bernoulli(k[2], 0.3, (N,)),
                                 lp.random.normal(k[3], (N,), lp.float64)))
    return draw(k)


def test_uniform_mean_variance_and_range(samples):
    u = samples[0].astype(np.float64)
    assert 0.0 <= u.min() and u.max() < 1.0
    sd = np.sqrt(1 / 12 / N)                       # bounds are 6 standard errors
    assert abs(u.mean() - 0.5) < 6 * sd
    assert abs(u.var() - 1 / 12) < 6 * np.sqrt(1 / 180 / N)
    counts = np.bincount((u * 10).astype(int), minlength=10)   # chi-square, 9 degrees
    assert ((counts - N / 10) ** 2 / (N / 10)).sum() < 40


@pytest.mark.parametrize("i", [1, 3])
def test_normal_mean_variance_and_tails(samples, i):
    z = samples[i].astype(np.float64)
    assert abs(z.mean()) < 6 / np.sqrt(N)
    assert abs(z.var() - 1) < 6 * np.sqrt(2 / N)
    assert abs((np.abs(z) > 1.959964).mean() - 0.05) < 6 * np.sqrt(0.05 * 0.95 / N)
    assert abs(np.mean(z ** 3)) < 6 * np.sqrt(15 / N)


def test_bernoulli_fraction(samples):
    m = samples[2]
    assert m.dtype == np.bool_
    assert abs(m.mean() - 0.3) < 6 * np.sqrt(0.3 * 0.7 / N)


def test_different_and_split_keys_look_independent():
    keys = lp.random.split(lp.random.key(7), 8)
    assert len({tuple(k) for k in keys}) == 8
    k1, k2 = lp.random.split(lp.random.key(7))
    n = 200_000
    a = lp.random.uniform(k1, (n,)).astype(np.float64)
    b = lp.random.uniform(k2, (n,)).astype(np.float64)
    c = lp.random.uniform(lp.random.key(8), (n,)).astype(np.float64)
    for x, y in ((a, b), (a, c), (a[1:], a[:-1])):    # lag 1 within a stream too
        assert abs(np.corrcoef(x, y)[0, 1]) < 6 / np.sqrt(n)
    assert not np.array_equal(lp.random.uniform(lp.random.key(0), (8,)),
                              lp.random.uniform(lp.random.key(1), (8,)))


# -- keys and errors ----------------------------------------------------------------------------
def test_keys_from_seeds_eager_and_traced():
    assert lp.random.key(0).tolist() == [0, 0]
    assert lp.random.key(-1).tolist() == [-1, -1]
    assert lp.random.key(2 ** 32 + 5).tolist() == [5, 1]
    f = lp.compile(lambda s: lp.random.uniform(lp.random.key(s), (6,)))
    for s in (0, 7, -7, 2 ** 31 - 1):
        assert f(np.int32(s)).tobytes() == lp.random.uniform(lp.random.key(s), (6,)).tobytes()
    with pytest.raises(ValueError, match="64 bits"):
        lp.random.key(2 ** 64)
    with pytest.raises(TypeError, match="integer"):
        lp.random.key(1.5)


def test_errors_name_the_function_and_the_users_line():
    with pytest.raises(TypeError, match=r"key must be i32\[2\].*random.uniform.*test_random"):
        lp.compile(lambda k: lp.random.uniform(k, (3,)))(np.zeros(3, np.int32))
    with pytest.raises(TypeError, match=r"float type.*random.normal"):
        lp.random.normal(lp.random.key(0), (3,), lp.int32)
    with pytest.raises(ValueError, match="positive int.*random.split"):
        lp.random.split(lp.random.key(0), 0)
    with pytest.raises(TypeError, match="traced seed must be a 0-d int32"):
        lp.compile(lambda s: lp.random.key(s))(np.float32(1))
    with pytest.raises(OpError, match="philox"):
        lp.trace(lambda k: lp.frontends.tensor.emit("philox", [k], shape=(2,),
                                                    dtype=lp.int64), lp.random.key(0))


# -- dropout ------------------------------------------------------------------------------------
def test_dropout_scales_the_kept_elements_and_drops_about_p():
    x = np.random.default_rng(0).standard_normal((1000, 100)).astype(np.float32) + 5.0
    f = lp.compile(lambda x, k: lp.dropout(x, 0.3, k))
    y = f(x, lp.random.key(3))
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1 / 0.7))
    assert abs(1 - kept.mean() - 0.3) < 6 * np.sqrt(0.21 / x.size)
    assert y.tobytes() == lp.dropout(x, 0.3, lp.random.key(3)).tobytes()   # eager: same mask
    assert not np.array_equal(kept, f(x, lp.random.key(4)) != 0)
    np.testing.assert_array_equal(lp.dropout(x, 0.0, lp.random.key(3)), x)
    np.testing.assert_array_equal(lp.dropout(x, 1.0, lp.random.key(3)), np.zeros_like(x))
    with pytest.raises(ValueError, match="between 0 and 1"):
        lp.dropout(x, 1.5, lp.random.key(3))


def test_dropout_gradient_is_the_mask_times_the_scale():
    rng = np.random.default_rng(1)
    x, w = (rng.standard_normal((40, 30)).astype(np.float32) + 3.0 for _ in range(2))
    key = lp.random.key(11)

    def loss(x, w, k):
        return lp.sum(lp.dropout(x, 0.25, k) * w)
    gx = lp.grad(loss)(x, w, key)
    mask = lp.dropout(np.ones_like(x), 0.25, key)          # 0 or 1/(1-p)
    assert set(np.unique(mask).tolist()) == {0.0, np.float32(1 / 0.75)}
    np.testing.assert_allclose(gx, mask * w, rtol=1e-6)


# -- the Dropout layer --------------------------------------------------------------------------
class Net(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = lp.nn.Linear(8, 64)
        self.drop1 = lp.nn.Dropout(0.5)
        self.fc2 = lp.nn.Linear(64, 4)
        self.drop2 = lp.nn.Dropout(0.25)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(lp.relu(self.fc1(x)))))


def test_dropout_layer_eval_is_identity_and_training_draws_a_new_mask_each_call():
    lp.nn.manual_seed(0)
    d = lp.nn.Dropout(0.4)
    assert repr(d) == "Dropout(p=0.4, inplace=False)" and lp.nn.Dropout().p == 0.5
    f = lp.compile(d)
    x = np.ones((64, 64), np.float32)
    first = f(x)
    masks = [first != 0] + [f(x) != 0 for _ in range(3)]
    assert all(not np.array_equal(masks[0], m) for m in masks[1:])
    assert all(abs(1 - m.mean() - 0.4) < 6 * np.sqrt(0.24 / x.size) for m in masks)
    d.eval()
    np.testing.assert_array_equal(f(x), x)
    d.train()
    lp.nn.manual_seed(0)
    np.testing.assert_array_equal(f(x), first)               # reproducible
    with pytest.raises(ValueError, match="between 0 and 1"):
        lp.nn.Dropout(-0.1)


def test_layers_chain_their_splits_and_the_generator_advances_once_per_layer_per_call():
    lp.nn.manual_seed(5)
    net = Net()
    x = np.random.default_rng(2).standard_normal((16, 8)).astype(np.float32)
    start = lp.nn.init.GRAPH_KEY.copy()
    lp.compile(net)(x)
    once = lp.random.split(start)[0]
    assert lp.nn.init.GRAPH_KEY.tolist() == lp.random.split(once)[0].tolist()
    # the same forward written with explicit keys gives the compiled result
    lp.nn.manual_seed(5)
    got = lp.compile(net)(x)
    k1 = lp.random.split(start)[1]
    k2 = lp.random.split(once)[1]

    def by_hand(x):
        h = lp.dropout(lp.relu(x @ net.fc1.weight.T + net.fc1.bias), 0.5, k1)
        return lp.dropout(h @ net.fc2.weight.T + net.fc2.bias, 0.25, k2)
    np.testing.assert_allclose(got, lp.compile(by_hand)(x), rtol=1e-5, atol=1e-6)


def test_optimiser_steps_advance_the_generator_and_are_reproducible():
    x = np.random.default_rng(3).standard_normal((32, 8)).astype(np.float32)
    y = np.arange(32) % 4

    def loss_fn(model, x, y):
        return lp.cross_entropy(model(x), y)

    def run():
        lp.nn.manual_seed(1)
        net = Net()
        opt = lp.optim.Adam(1e-2)
        keys, losses = [], []
        for _ in range(4):
            losses.append(opt.step(net, loss_fn, x, y))
            keys.append(tuple(lp.nn.init.GRAPH_KEY))
        return keys, losses, net.fc1.weight.copy()
    keys, losses, w = run()
    assert len(set(keys)) == 4                                # advanced at every step
    keys2, losses2, w2 = run()
    assert keys2 == keys and losses2 == losses
    np.testing.assert_array_equal(w2, w)


def test_dropout_layer_behaves_as_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(4).standard_normal((200, 50)).astype(np.float32)
    for p in (0.0, 0.2, 1.0):
        t = torch.nn.Dropout(p)
        ours = lp.nn.Dropout(p)
        assert repr(ours) == repr(t)
        want = t(torch.from_numpy(x)).numpy()
        got = lp.compile(ours)(x)
        for y in (want, got):                     # each element: 0 or x / (1 - p)
            kept = y != 0
            if p < 1:
                np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
            assert (kept.mean() == 1) if p == 0 else (kept.mean() == 0) if p == 1 else \
                abs(1 - kept.mean() - p) < 0.03
        t.eval()
        ours.eval()
        np.testing.assert_array_equal(lp.compile(ours)(x), t(torch.from_numpy(x)).numpy())
    with pytest.raises(ValueError):
        torch.nn.Dropout(1.5)
    with pytest.raises(ValueError):
        lp.nn.Dropout(1.5)


THREADS_SCRIPT = """
import hashlib
import numpy as np
import lepton as lp
lp.nn.manual_seed(3)
net = lp.nn.Sequential(lp.nn.Linear(64, 256), lp.nn.Dropout(0.5), lp.nn.Linear(256, 256),
                       lp.nn.Dropout(0.1))
x = np.random.default_rng(0).standard_normal((256, 64)).astype(np.float32)
f = lp.compile(net)
h = hashlib.sha256()
for _ in range(3):
    h.update((f(x) != 0).tobytes())
h.update(lp.nn.init.GRAPH_KEY.tobytes())
h.update(lp.compile(lambda k: lp.random.uniform(k, (300_001,)))(lp.random.key(1)).tobytes())
print(f.stats()["threads"], h.hexdigest())
"""


def test_the_same_masks_on_one_and_two_threads():
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": ROOT, "LEPTON_NUM_THREADS": threads}
        proc = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        n, digest = proc.stdout.split()
        assert n == threads
        outs.append(digest)
    assert outs[0] == outs[1]
