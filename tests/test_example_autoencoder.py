"""examples/autoencoder.py learns: a short run reconstructs the test digits far better than the
mean training image does."""
import importlib.util
import pathlib

import pytest

import lepton as lp


def test_autoencoder_example_beats_the_mean_image(capsys):
    pytest.importorskip("sklearn")
    path = pathlib.Path(__file__).parent.parent / "examples" / "autoencoder.py"
    spec = importlib.util.spec_from_file_location("autoencoder", path)
    ae = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ae)
    x_train, x_test = ae.load(seed=0)
    lp.nn.manual_seed(0)
    mse, baseline, _ = ae.train(ae.AutoEncoder(), x_train, x_test, 8, 64, 3e-3, 0)
    assert mse < 0.6 * baseline
    assert "epoch  8/8" in capsys.readouterr().out
