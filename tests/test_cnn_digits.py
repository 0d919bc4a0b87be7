"""examples/cnn_digits.py: the BatchNorm2d convnet reaches 97% test accuracy on the digits."""
import importlib.util
import pathlib

import numpy as np
import pytest

import lepton as lp

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def test_cnn_digits_example_reaches_97_percent(monkeypatch, capsys):
    pytest.importorskip("sklearn")
    # One thread: what is tested does not depend on the count, and with more threads than idle
    # cores libgomp's spinning workers slow a run of many small kernels by up to 10x.
    monkeypatch.setenv("LEPTON_NUM_THREADS", "1")
    monkeypatch.syspath_prepend(str(EXAMPLES))  # it imports the data loading of train_digits
    spec = importlib.util.spec_from_file_location("cnn_digits", EXAMPLES / "cnn_digits.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    lp.nn.manual_seed(0)
    model = ex.DigitsCNN()
    acc, _ = ex.train(model, ex.load(0), epochs=5)
    assert acc >= 0.97
    assert not model.training                                 # tested in eval mode
    assert "epoch  5/5" in capsys.readouterr().out
    bn = model.features[1]
    assert bn.num_batches_tracked == 5 * (1438 // 64)         # one update per training step
    assert not np.allclose(bn.running_var, 1.0)
