"""Models exported from PyTorch by torch.onnx.export (issue 11's list, opsets 13, 17 and 18) load
with lp.from_onnx and match torch's own outputs within 1e-4.

The legacy (TorchScript) exporter always runs; the dynamo exporter needs onnxscript and is
skipped without it. torch's legacy exporter cannot write nn.TransformerEncoder's attention
(aten::scaled_dot_product_attention) below opset 14, so that model is exported at 14 where
the others use 13.
"""
import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("torch")

import lepton as lp  # noqa: E402
import torch_onnx_models as models  # noqa: E402

TOL = 1e-4


def _opset(name, opset):
    return 14 if (name == "transformer_encoder" and opset == 13) else opset


def _check(data, xs, want):
    f = lp.from_onnx(data)
    got = f(*xs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=TOL, atol=TOL)
    return f


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("name", list(models.MODELS))
def test_legacy_export_matches_torch(name, opset):
    data, xs, want = models.export(name, _opset(name, opset))
    _check(data, xs, want)


@pytest.mark.parametrize("opset", [18])
@pytest.mark.parametrize("name", list(models.MODELS))
def test_dynamo_export_matches_torch(name, opset):
    pytest.importorskip("onnxscript")   # the dynamo exporter writes its graphs with it
    data, xs, want = models.export(name, opset, dynamo=True)
    _check(data, xs, want)


@pytest.mark.parametrize("name", ["mlp", "lstm", "gpt_block"])
def test_symbolic_batch_compiles_per_batch_size(name):
    """Exported with a dynamic batch axis: each batch size is its own signature."""
    import torch
    m, _ = models.build(name)
    data = models.export(name, 17, dynamic_batch=True)[0]
    f = lp.from_onnx(data)
    for batch in (1, 3):
        x = models.MODELS[name][1]()[0]
        x = torch.randn(batch, *x.shape[1:])
        with torch.no_grad():
            want = m(x)
        want = want if isinstance(want, tuple) else (want,)
        got = f(x.numpy())
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), rtol=TOL, atol=TOL)
