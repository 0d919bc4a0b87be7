"""examples/gan_ring.py and examples/char_lstm.py: their metrics, and short runs that must learn.
The GAN test trains the example's default run (about 15 s of CPU on one thread) and checks that
it covers at least 6 of the 8 modes."""
import importlib.util
import pathlib

import numpy as np
import pytest

import lepton as lp

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("LEPTON_NUM_THREADS", "1")


def test_gan_metric_counts_modes_and_quality():
    gan = load("gan_ring")
    rng = np.random.default_rng(0)
    c = gan.centres()
    assert c.shape == (8, 2) and np.allclose(np.linalg.norm(c, axis=1), gan.RADIUS)
    assert gan.modes_covered(gan.sample_real(rng, 2000)) == (8, pytest.approx(1.0, abs=1e-3))
    three = c[rng.integers(0, 3, 1000)] + 0.01 * rng.standard_normal((1000, 2))
    assert gan.modes_covered(three.astype(np.float32))[0] == 3
    far = np.concatenate([three, np.zeros((1000, 2))]).astype(np.float32)  # the centre: no mode
    assert gan.modes_covered(far) == (3, pytest.approx(0.5))
    few = np.concatenate([three, c[5:6] + np.zeros((10, 2))])   # 10 of 1010: under 2%
    assert gan.modes_covered(few.astype(np.float32))[0] == 3


def test_gan_trains_to_cover_at_least_6_of_8_modes(one_thread):
    gan = load("gan_ring")
    logs = []
    _, draw = gan.train(log=logs.append)
    covered, quality = gan.modes_covered(draw(2000))
    assert covered >= 6, logs
    assert quality > 0.2, logs


def test_char_lstm_learns_below_the_unigram_baseline_and_samples(one_thread):
    ch = load("char_lstm")
    text = ch.load_text()
    assert "lp.scan" in text and len(text) > 100_000
    chars = "".join(sorted(set(text)))
    lut = {c: i for i, c in enumerate(chars)}
    data = np.array([lut[c] for c in text[:200_000]], np.int64)
    train, valid = data[:180_000], data[180_000:]
    lp.nn.manual_seed(0)
    rng = np.random.default_rng(0)
    # one layer, 5 steps: lp.compile unrolls the scan, so compile time follows layers * steps
    model = ch.CharLSTM(len(chars), hidden=64, embed=16, layers=1)
    assert [k for k in model.parameters() if k.startswith("lstm.")] == [
        "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0"]
    opt = lp.optim.Adam(1e-2)
    seq = 5
    for _ in range(150):
        x, y = ch.windows(train, rng.integers(0, len(train) - seq - 1, 32), seq)
        opt.step(model, ch.loss_fn, x, y)
    evaluate = lp.compile(lambda x, y: ch.loss_fn(model, x, y))
    starts = rng.integers(0, len(valid) - seq - 1, (4, 64))
    loss = np.mean([evaluate(*ch.windows(valid, s, seq)) for s in starts])
    baseline = ch.unigram_loss(train, valid, len(chars))
    assert loss < baseline - 0.3, (loss, baseline)
    out = ch.generate(model, chars, "def ", 40, seed=1)
    assert out.startswith("def ") and len(out) == 44 and set(out) <= set(chars)
    assert ch.generate(model, chars, "def ", 40, seed=1) == out       # the key decides
    assert ch.generate(model, chars, "def ", 40, seed=2) != out
