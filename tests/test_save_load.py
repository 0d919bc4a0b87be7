"""lp.save / lp.load_model (API.md "A model's life cycle"): the round trip of functions and
modules, pytrees, batch size classes, file objects and fsspec URLs, ONNX files, bad files that
must fail at load with a ValueError saying what is wrong, and a fresh process that loads a model
whose source file is gone."""
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import lepton as lp
from lepton.frontends.tensor import assign

ROOT = Path(__file__).resolve().parent.parent
rng = np.random.default_rng(0)


def _arr(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


W1, B1, W2 = _arr(6, 8), _arr(8), _arr(8, 3)


def mlp(x):
    h = lp.relu(x @ W1 + B1)
    return {"logits": h @ W2, "probs": lp.softmax(h @ W2)}


def _zip_members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _rezip(members: dict, path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


# -- round trips ----------------------------------------------------------------------------

def test_function_round_trip_pytree_signature_and_ir(tmp_path):
    x = _arr(4, 6)
    lp.save(mlp, tmp_path / "m.lepton", (x,))
    m = lp.load_model(tmp_path / "m.lepton")
    want = lp.compile(mlp)(x)
    got = m.predict(x)
    assert set(got) == {"logits", "probs"}
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(m(x)["logits"], got["logits"])
    sig = m.signature
    assert [(s.name, s.shape, s.dtype) for s in sig.inputs] == [("x", (4, 6), np.float32)]
    assert [(s.name, s.shape) for s in sig.outputs] == [("output['logits']", (4, 3)),
                                                        ("output['probs']", (4, 3))]
    assert sig.batch_axis is None
    g = lp.ir.parse(m.ir())
    assert len(g.inputs) == 1 + 3 and str(g) == m.ir()   # x, then the three captured arrays


def test_weights_are_stored_values_not_read_from_the_closure(tmp_path):
    w = np.ones((3, 3), np.float32)
    lp.save(lambda x: x @ w, tmp_path / "m.lepton", (np.eye(3, dtype=np.float32),))
    w[:] = 7    # the saved model keeps the values it was saved with
    m = lp.load_model(tmp_path / "m.lepton")
    np.testing.assert_array_equal(m.predict(np.eye(3, dtype=np.float32)), np.ones((3, 3)))
    names = json.loads(_zip_members(tmp_path / "m.lepton")["manifest.json"])["weights"]
    assert [n["name"] for n in names] == ["w"]


class TwoLayer(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = lp.nn.Linear(5, 7)
        self.fc2 = lp.nn.Linear(7, 2)

    def __call__(self, x, extra):
        return self.fc2(lp.tanh(self.fc1(x))) + extra["bias"], x.sum(axis=1)


def test_module_with_pytree_arguments(tmp_path):
    model = TwoLayer()
    args = (_arr(3, 5), {"bias": _arr(3, 2)})
    lp.save(model, tmp_path / "m.lepton", args)
    m = lp.load_model(tmp_path / "m.lepton")
    got, want = m.predict(*args), lp.compile(model)(*args)
    assert isinstance(got, tuple) and len(got) == 2
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert sorted(m.weight_names) == ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    assert [s.name for s in m.signature.inputs] == ["x", "extra['bias']"]
    with pytest.raises(TypeError, match="structured"):
        m.predict(args[0], args[1]["bias"])


def test_fixed_shapes_refuse_another_shape_or_dtype(tmp_path):
    lp.save(mlp, tmp_path / "m.lepton", (_arr(4, 6),))
    m = lp.load_model(tmp_path / "m.lepton")
    with pytest.raises(ValueError, match=r"x: float32\[4,6\].*\(5, 6\)"):
        m.predict(_arr(5, 6))
    with pytest.raises(TypeError, match="float64"):
        m.predict(_arr(4, 6, dtype=np.float64))
    with pytest.raises(TypeError, match="takes 1 inputs"):
        m.run_flat([])


@pytest.mark.parametrize("n", [1, 3, 8, 17, 40])
def test_batch_axis_takes_any_batch_size(tmp_path, n):
    lp.save(mlp, tmp_path / "m.lepton", (_arr(4, 6),), batch_axis=0, max_batch=8)
    m = lp.load_model(tmp_path / "m.lepton")
    assert m.max_batch == 8 and m.signature.inputs[0].shape == (None, 6)
    x = _arr(n, 6)
    got = m.predict(x)
    want = lp.compile(mlp)(x)
    for k in want:
        assert got[k].shape == (n, 3)
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(2, 5\)"):
        m.predict(_arr(2, 5))


def test_batch_axis_one_and_inputs_that_disagree(tmp_path):
    w = _arr(5, 3)

    def f(a, b):   # the batch is axis 1 of both inputs and of the output
        return lp.transpose(lp.exp(lp.transpose(a) @ w) + lp.transpose(b))
    lp.save(f, tmp_path / "m.lepton", (_arr(5, 4), _arr(3, 4)), batch_axis=1)
    m = lp.load_model(tmp_path / "m.lepton")
    a, b = _arr(5, 11), _arr(3, 11)
    np.testing.assert_allclose(m(a, b), (np.exp(a.T @ w) + b.T).T, rtol=1e-5)
    with pytest.raises(ValueError, match="batch size 10"):
        m(a, _arr(3, 10))


def test_batch_axis_needs_the_batch_in_every_output(tmp_path):
    with pytest.raises(ValueError, match="every output must have the batch"):
        lp.save(lambda x: x.sum(axis=0), tmp_path / "m.lepton", (_arr(4, 6),), batch_axis=0)
    with pytest.raises(ValueError, match="every input needs the batch"):
        lp.save(lambda x: x, tmp_path / "m.lepton", (_arr(4),), batch_axis=1)
    assert not (tmp_path / "m.lepton").exists()


def test_a_model_that_writes_its_arrays_cannot_be_saved(tmp_path):
    count = np.zeros((), np.float32)

    def counting(x):
        assign(count, count + 1)
        return x * 2
    with pytest.raises(ValueError, match=r"\.eval\(\)"):
        lp.save(counting, tmp_path / "m.lepton", (_arr(3),))


def test_only_array_arguments(tmp_path):
    with pytest.raises(TypeError, match="arrays only"):
        lp.save(lambda x, flag: x, tmp_path / "m.lepton", (_arr(3), True))


def test_file_objects_and_compiled_functions(tmp_path):
    buf = io.BytesIO()
    lp.save(lp.compile(mlp), buf, (_arr(2, 6),))
    buf.seek(0)
    m = lp.load_model(buf)
    x = _arr(2, 6)
    np.testing.assert_allclose(m(x)["probs"], lp.compile(mlp)(x)["probs"], rtol=1e-5)
    with open(tmp_path / "m.lepton", "wb") as f:
        f.write(buf.getvalue())
    with open(tmp_path / "m.lepton", "rb") as f:
        assert lp.load_model(f).signature == m.signature


def test_fsspec_memory_url():
    fsspec = pytest.importorskip("fsspec")
    lp.save(mlp, "memory://saveload/m.lepton", (_arr(2, 6),), batch_axis=0)
    assert fsspec.filesystem("memory").exists("/saveload/m.lepton")
    m = lp.load_model("memory://saveload/m.lepton")
    x = _arr(5, 6)
    np.testing.assert_allclose(m(x)["logits"], lp.compile(mlp)(x)["logits"], rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(FileNotFoundError):
        lp.load_model("memory://saveload/absent.lepton")


def test_onnx_file(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    w = _arr(4, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    m = lp.load_model(path)
    x = _arr(5, 4)
    [z] = m.predict(x)
    np.testing.assert_allclose(z, np.maximum(x @ w, 0), rtol=1e-5, atol=1e-6)
    assert m.signature.batch_axis == 0 and m.signature.inputs[0].shape == (None, 4)
    (tmp_path / "bad.onnx").write_bytes(b"\xff\xfenot protobuf at all")
    with pytest.raises(ValueError, match="bad.onnx"):
        lp.load_model(tmp_path / "bad.onnx")


# -- bad files ------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.lepton"
    lp.save(mlp, path, (_arr(4, 6),), batch_axis=0, max_batch=4)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        lp.load_model(tmp_path / "absent.lepton")


def test_foreign_and_empty_files(tmp_path):
    (tmp_path / "a.lepton").write_bytes(b"")
    (tmp_path / "b.lepton").write_bytes(b"#!/bin/sh\necho hi\n")
    with pytest.raises(ValueError, match="empty"):
        lp.load_model(tmp_path / "a.lepton")
    with pytest.raises(ValueError, match="no zip signature"):
        lp.load_model(tmp_path / "b.lepton")
    _rezip({"data.txt": b"hello"}, tmp_path / "c.lepton")
    with pytest.raises(ValueError, match="no manifest.json"):
        lp.load_model(tmp_path / "c.lepton")
    _rezip({"manifest.json": b'{"format": "something-else"}'}, tmp_path / "d.lepton")
    with pytest.raises(ValueError, match="not a Lepton model manifest"):
        lp.load_model(tmp_path / "d.lepton")
    _rezip({"manifest.json": b"{not json"}, tmp_path / "e.lepton")
    with pytest.raises(ValueError, match="not valid JSON"):
        lp.load_model(tmp_path / "e.lepton")


def test_truncated_and_corrupt_files(saved, tmp_path):
    data = saved.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        (tmp_path / "t.lepton").write_bytes(data[:cut])
        with pytest.raises(ValueError, match="corrupt or truncated"):
            lp.load_model(tmp_path / "t.lepton")
    # a flipped byte inside a stored weight: the zip's CRC catches it
    members = _zip_members(saved)
    start = data.index(members["weights/0.npy"][-16:])
    bad = bytearray(data)
    bad[start + 3] ^= 0xFF
    (tmp_path / "c.lepton").write_bytes(bytes(bad))
    with pytest.raises(ValueError, match="corrupt"):
        lp.load_model(tmp_path / "c.lepton")


def _edit_manifest(saved, path, edit, members_edit=None):
    members = _zip_members(saved)
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()
    if members_edit:
        members_edit(members)
    _rezip(members, path)
    return path


def test_newer_format_version(saved, tmp_path):
    p = _edit_manifest(saved, tmp_path / "n.lepton",
                       lambda m: m.update(format_version=99, lepton_version="9.0"))
    with pytest.raises(ValueError, match="format version 99.*upgrade"):
        lp.load_model(p)


def test_weights_that_do_not_match_the_graph(saved, tmp_path):
    def swap(members):     # a weight of another shape, the manifest agreeing with it
        buf = io.BytesIO()
        np.save(buf, np.zeros((7, 8), np.float32))
        members["weights/0.npy"] = buf.getvalue()

    def shape(m):
        m["weights"][0]["shape"] = [7, 8]
    p = _edit_manifest(saved, tmp_path / "w.lepton", shape, swap)
    with pytest.raises(ValueError, match=r"weight .*f32\[7,8\].*do not match the graph"):
        lp.load_model(p)
    # the manifest disagreeing with the array
    p = _edit_manifest(saved, tmp_path / "w2.lepton", lambda m: None, swap)
    with pytest.raises(ValueError, match="the manifest says"):
        lp.load_model(p)


def test_pickled_or_missing_members(saved, tmp_path):
    def pickled(members):
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        members["weights/1.npy"] = buf.getvalue()
    p = _edit_manifest(saved, tmp_path / "p.lepton", lambda m: None, pickled)
    with pytest.raises(ValueError, match="not a readable .npy"):
        lp.load_model(p)
    p = _edit_manifest(saved, tmp_path / "m.lepton", lambda m: None,
                       lambda ms: ms.pop("graphs/b2.ir"))
    with pytest.raises(ValueError, match="lacks: graphs/b2.ir"):
        lp.load_model(p)


def test_bad_ir_and_a_graph_that_disagrees_with_the_signature(saved, tmp_path):
    p = _edit_manifest(saved, tmp_path / "i.lepton", lambda m: None,
                       lambda ms: ms.update({"graphs/b2.ir": b"graph @f(%0: f32[2,6]) {\n"
                                                             b"  %1: f32[2,6] = frobnicate %0\n"
                                                             b"  return %1\n}\n"}))
    with pytest.raises(ValueError, match="graphs/b2.ir: the IR does not parse.*frobnicate"):
        lp.load_model(p)

    def other_output(m):
        m["signature"]["outputs"][0]["shape"] = [None, 4]
    p = _edit_manifest(saved, tmp_path / "s.lepton", other_output)
    with pytest.raises(ValueError, match="signature says"):
        lp.load_model(p)


# -- a fresh process, the model's source gone -----------------------------------------------

def _python(script: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_fresh_process_loads_without_the_models_source(tmp_path):
    (tmp_path / "mymodel.py").write_text(textwrap.dedent("""
        import numpy as np
        import lepton as lp

        class Net(lp.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = lp.nn.Linear(6, 4)
                self.scale = np.full(4, 0.5, np.float32)

            def __call__(self, x):
                return lp.gelu(self.fc(x)) * self.scale
    """))
    x = _arr(3, 6)
    np.save(tmp_path / "x.npy", x)
    saved = _python("""
        import numpy as np, lepton as lp
        from mymodel import Net
        net = Net()
        x = np.load("x.npy")
        lp.save(net, "net.lepton", (x,), batch_axis=0)
        np.save("want.npy", lp.compile(net)(x))
    """, tmp_path)
    assert saved.returncode == 0, saved.stderr
    (tmp_path / "mymodel.py").unlink()
    for cached in tmp_path.glob("__pycache__"):
        for f in cached.iterdir():
            f.unlink()
        cached.rmdir()
    loaded = _python("""
        import sys, numpy as np, lepton as lp
        m = lp.load_model("net.lepton")
        assert "mymodel" not in sys.modules
        x = np.load("x.npy")
        np.save("got.npy", m.predict(x))
        np.save("got1.npy", m.predict(x[1:2]))
    """, tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    want = np.load(tmp_path / "want.npy")
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "got1.npy"), want[1:2], rtol=1e-5, atol=1e-6)
