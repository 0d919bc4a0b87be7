"""lepton serve: the Open Inference Protocol (KServe v2) server, tested over real HTTP on
127.0.0.1 (uvicorn in a thread, or the server as a subprocess for SIGTERM and the CLI)."""
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")

import lepton as lp  # noqa: E402
from lepton.serve import ServableModel, TensorSpec, from_function  # noqa: E402
from lepton.serve import protocol  # noqa: E402
from lepton.serve.app import make_app  # noqa: E402
from lepton.serve.batcher import Batcher, ModelError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RNG = np.random.default_rng(7)
W1 = RNG.standard_normal((16, 32)).astype(np.float32)
B1 = RNG.standard_normal(32).astype(np.float32)
W2 = RNG.standard_normal((32, 4)).astype(np.float32)


def mlp(x):
    return lp.relu(x @ W1 + B1) @ W2


def reference(x):
    return np.maximum(x @ W1 + B1, 0) @ W2


@pytest.fixture(params=["orjson", "json"])
def json_library(request, monkeypatch):
    """Runs a test with orjson (when installed) and with the standard library's json."""
    if request.param == "json":
        monkeypatch.setattr(protocol, "orjson", None)
    elif protocol.orjson is None:
        pytest.skip("orjson is not installed")
    return request.param


@pytest.fixture(scope="module")
def model():
    return from_function(lp.compile(mlp), (np.zeros((1, 16), np.float32),), name="mlp",
                         batch_axis=0)


@contextmanager
def running(model, **options):
    """uvicorn serving make_app(model, **options) in a thread on 127.0.0.1:<free port>."""
    app = make_app(model, **options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(3000):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.01)
    assert server.started, "the server did not start"
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def request(port, method, path, body=None, headers=None):
    """(status, headers, body) of one HTTP request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def stats(port):
    status, _, body = request(port, "GET", "/v2/models/mlp/stats")
    assert status == 200
    return json.loads(body)["model_stats"][0]


def infer(port, x, name="mlp", **extra):
    status, _, body = request(port, "POST", f"/v2/models/{name}/infer", {
        "inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32",
                    "data": x.ravel().tolist()}], **extra})
    return status, json.loads(body)


def output(msg):
    out = msg["outputs"][0]
    return np.array(out["data"], np.float32).reshape(out["shape"])


def test_health_and_metadata(model):
    with running(model) as port:
        status, _, body = request(port, "GET", "/v2")
        assert status == 200 and json.loads(body)["name"] == "lepton"
        assert "binary_tensor_data" in json.loads(body)["extensions"]
        for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/mlp/ready"):
            assert request(port, "GET", path)[0] == 200, path
        status, _, body = request(port, "GET", "/v2/models/mlp")
        assert status == 200
        assert json.loads(body) == {
            "name": "mlp", "versions": ["1"], "platform": "lepton",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}],
            "outputs": [{"name": "output_0", "datatype": "FP32", "shape": [-1, 4]}]}
        assert json.loads(request(port, "GET", "/v2/models/mlp/versions/1")[2])["name"] == "mlp"
        assert request(port, "GET", "/v2/models/mlp/versions/2/ready")[0] == 404
        status, _, body = request(port, "GET", "/v2/models/other")
        assert status == 404 and "unknown model 'other'" in json.loads(body)["error"]
        assert request(port, "GET", "/v2/models/other/ready")[0] == 404


def test_infer_returns_the_models_results(model, json_library):
    x = RNG.standard_normal((3, 16)).astype(np.float32)
    with running(model, max_batch=8) as port:
        status, msg = infer(port, x, id="req-1")
        assert status == 200, msg
        assert msg["id"] == "req-1" and msg["model_name"] == "mlp"
        assert msg["outputs"][0]["name"] == "output_0"
        assert msg["outputs"][0]["datatype"] == "FP32"
        np.testing.assert_allclose(output(msg), reference(x), rtol=1e-5, atol=1e-5)
        # nested data and an explicit outputs list
        status, _, body = request(port, "POST", "/v2/models/mlp/infer", {
            "inputs": [{"name": "x", "shape": [3, 16], "datatype": "FP32",
                        "data": x.tolist()}], "outputs": [{"name": "output_0"}]})
        assert status == 200 and "id" not in json.loads(body)
        np.testing.assert_allclose(output(json.loads(body)), reference(x), rtol=1e-5, atol=1e-5)


def test_binary_tensor_data_extension(model):
    x = RNG.standard_normal((2, 16)).astype(np.float32)
    header = json.dumps({"inputs": [{"name": "x", "shape": [2, 16], "datatype": "FP32",
                                     "parameters": {"binary_data_size": x.nbytes}}],
                         "outputs": [{"name": "output_0",
                                      "parameters": {"binary_data": True}}]}).encode()
    with running(model) as port:
        status, headers, body = request(
            port, "POST", "/v2/models/mlp/infer", header + x.tobytes(),
            {"Inference-Header-Content-Length": str(len(header)),
             "Content-Type": "application/octet-stream"})
        assert status == 200, body
        n = int(headers["inference-header-content-length"])
        msg = json.loads(body[:n])
        assert msg["outputs"][0]["parameters"] == {"binary_data_size": 2 * 4 * 4}
        y = np.frombuffer(body[n:], "<f4").reshape(msg["outputs"][0]["shape"])
        np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-5)


def _concurrently(port, xs):
    results = [None] * len(xs)

    def one(i):
        results[i] = infer(port, xs[i])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.mark.parametrize("rows", [[1] * 8, [1, 2, 3, 2]])
def test_concurrent_requests_share_one_predict_call(model, rows):
    """The batch holds 8 rows and may wait far longer than the test takes: the requests of 8
    rows in all fill it, so exactly one predict call answers all of them."""
    xs = [RNG.standard_normal((r, 16)).astype(np.float32) for r in rows]
    with running(model, max_batch=8, max_delay_ms=600_000) as port:
        results = _concurrently(port, xs)
        assert stats(port) == {"name": "mlp", "version": "1", "inference_count": 8,
                               "execution_count": 1, "request_count": len(rows),
                               "largest_batch": 8}
    for x, (status, msg) in zip(xs, results):
        assert status == 200, msg
        np.testing.assert_allclose(output(msg), reference(x), rtol=1e-5, atol=1e-5)


def test_without_batching_each_request_calls_predict(model):
    xs = [RNG.standard_normal((1, 16)).astype(np.float32) for _ in range(6)]
    with running(model, max_batch=1, max_delay_ms=50) as port:
        results = _concurrently(port, xs)
        assert stats(port)["execution_count"] == 6 and stats(port)["largest_batch"] == 1
    for x, (status, msg) in zip(xs, results):
        assert status == 200
        np.testing.assert_allclose(output(msg), reference(x), rtol=1e-5, atol=1e-5)


def _x(shape=(1, 16), **entry):
    return {"inputs": [{"name": "x", "shape": list(shape), "datatype": "FP32",
                        "data": [0.5] * int(np.prod(shape)), **entry}]}


BAD = [  # (path, body, headers, status, words of the error)
    ("/v2/models/mlp/infer", b"{not json", None, 400, "not JSON"),
    ("/v2/models/mlp/infer", [1, 2], None, 400, "list 'inputs'"),
    ("/v2/models/mlp/infer", _x(name="y"), None, 400, "unknown input 'y'"),
    ("/v2/models/mlp/infer", {"inputs": []}, None, 400, "missing input(s) x"),
    ("/v2/models/mlp/infer", _x(datatype="INT64"), None, 400, "datatype 'INT64'"),
    ("/v2/models/mlp/infer", _x((1, 15)), None, 400, "does not match the model's [-1, 16]"),
    ("/v2/models/mlp/infer", _x((16,)), None, 400, "does not match"),
    ("/v2/models/mlp/infer", _x((0, 16)), None, 400, "no rows"),
    ("/v2/models/mlp/infer", _x((2, 16), data=[1.0] * 16), None, 400, "16 values"),
    ("/v2/models/mlp/infer", _x(data=["a"] * 16), None, 400, "not FP32"),
    ("/v2/models/mlp/infer", _x(data=[[1.0], [1.0, 2.0]]), None, 400, "'data'"),
    ("/v2/models/mlp/infer", {"inputs": [{**_x()["inputs"][0], "shape": "1,16"}]}, None, 400,
     "'shape' must be"),
    ("/v2/models/mlp/infer", {**_x(), "outputs": [{"name": "z"}]}, None, 400,
     "unknown output 'z'"),
    ("/v2/models/mlp/infer", _x(parameters={"binary_data_size": 64}),
     {"Inference-Header-Content-Length": "9999"}, 400, "Inference-Header-Content-Length"),
    ("/v2/models/mlp/infer", b"x" * 70_000, None, 413, "over the limit"),
    ("/v2/models/nope/infer", _x(), None, 404, "unknown model 'nope'"),
    ("/v2/nowhere", None, None, 404, "Not Found"),
]


def test_bad_requests_get_4xx_and_the_server_keeps_serving(model, json_library):
    x = RNG.standard_normal((1, 16)).astype(np.float32)
    with running(model, max_body_bytes=65_536) as port:
        for path, body, headers, status, words in BAD:
            got, _, text = request(port, "GET" if body is None else "POST", path, body, headers)
            assert got == status, (path, body if isinstance(body, dict) else "", text)
            assert words in json.loads(text)["error"], text
        got, _, text = request(port, "GET", "/v2/models/mlp/infer")
        assert got == 405 and json.loads(text)["error"]
        assert stats(port)["execution_count"] == 0
        status, msg = infer(port, x)
        assert status == 200
        np.testing.assert_allclose(output(msg), reference(x), rtol=1e-5, atol=1e-5)


def test_a_model_error_is_a_500_with_its_message():
    def predict(x):
        if (x < 0).any():
            raise ValueError("negative input")
        return [x * 2]
    spec = TensorSpec("x", np.dtype(np.float32), (-1, 16), 0)
    model = ServableModel("mlp", (spec,), (TensorSpec("y", spec.dtype, (-1, 16), 0),), predict)
    with running(model) as port:
        status, msg = infer(port, -np.ones((1, 16), np.float32))
        assert status == 500 and "ValueError: negative input" in msg["error"]
        status, msg = infer(port, np.ones((1, 16), np.float32))
        assert status == 200 and msg["outputs"][0]["data"] == [2.0] * 16


def test_a_binary_header_seen_before_decodes_the_new_values():
    """decode_infer remembers the checked JSON header of an all-binary request; the next
    request with that header takes its own binary values, and a short body is still refused."""
    spec = TensorSpec("x", np.dtype(np.float32), (-1, 4), 0)
    m = ServableModel("m", (spec,), (TensorSpec("y", spec.dtype, (-1, 4), 0),), lambda x: [x])
    head = json.dumps({"id": 7, "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                            "parameters": {"binary_data_size": 32}}],
                       "parameters": {"binary_data_output": True}}).encode()
    plans: dict = {}
    for k in range(3):
        x = RNG.standard_normal((2, 4)).astype(np.float32)
        req = protocol.decode_infer(head + x.tobytes(), str(len(head)), m, plans)
        np.testing.assert_array_equal(req.arrays[0], x)
        assert (req.id, req.rows, req.outputs, req.binary) == ("7", 2, [0], [True])
        assert len(plans) == 1
    with pytest.raises(protocol.BadRequest, match="ends inside its binary data"):
        protocol.decode_infer(head + x.tobytes()[:-4], str(len(head)), m, plans)
    text = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                   "data": [1, 2, 3, 4]}]}).encode()
    protocol.decode_infer(text, str(len(text)), m, plans)
    assert len(plans) == 1      # values in the JSON: nothing to remember


def test_from_function_runs_a_batch_in_power_of_two_chunks():
    """7 rows run as 4 + 2 + 1 (no padding rows, one compiled shape per size class); with an
    output that has no batch axis, the whole batch goes in one call."""
    seen = []

    def f(x):
        seen.append(x.shape[0])
        return x * 2, x.sum(axis=1)
    m = from_function(f, (np.zeros((1, 3), np.float32),), name="f", batch_axis=0)
    seen.clear()
    x = RNG.standard_normal((7, 3)).astype(np.float32)
    y, s = m.predict(x)
    assert seen == [4, 2, 1]
    np.testing.assert_array_equal(y, x * 2)
    np.testing.assert_allclose(s, x.sum(axis=1), rtol=1e-6)
    assert m.predict(x[:4])[0].shape == (4, 3) and seen[-1] == 4

    def g(x):
        seen.append(x.shape[0])
        return x * 2, x.sum()
    m = from_function(g, (np.zeros((1, 3), np.float32),), name="g", batch_axis=0)
    seen.clear()
    assert np.isclose(m.predict(x)[1], x.sum(), rtol=1e-5) and seen == [7]


def test_from_loaded_runs_a_batch_in_its_size_classes(tmp_path):
    """A saved model's batch of 7 rows runs as 4 + 2 + 1 (classes it has: nothing padded)."""
    path = tmp_path / "mlp.lepton"
    lp.save(mlp, str(path), (np.zeros((2, 16), np.float32),), batch_axis=0)
    from lepton.serve import from_loaded
    loaded = lp.load_model(str(path))
    seen = []
    run_flat = loaded.run_flat
    loaded.run_flat = lambda arrays: seen.append(arrays[0].shape[0]) or run_flat(arrays)
    m = from_loaded(loaded, name="mlp")
    x = RNG.standard_normal((7, 16)).astype(np.float32)
    (y,) = m.predict(x)
    assert seen == [4, 2, 1]
    np.testing.assert_allclose(y, reference(x), rtol=1e-5, atol=1e-5)


class _GatedModel:
    """A batchable model whose predict records each call's rows and waits for `gate` (so a
    test decides when a batch finishes); rows whose first value is negative make it raise."""

    def __init__(self):
        self.gate = threading.Event()
        self.calls: list[int] = []
        spec = TensorSpec("x", np.dtype(np.float32), (-1, 2), 0)
        self.model = ServableModel("m", (spec,), (TensorSpec("y", spec.dtype, (-1, 2), 0),),
                                   self.predict)

    def predict(self, x):
        self.calls.append(x.shape[0])
        self.gate.wait(60)
        if (x[:, 0] < 0).any():
            raise ValueError("negative")
        return [x * 10]


def _rows(n, first=1.0):
    return [np.full((n, 2), first, np.float32)]


async def _until(condition):
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the batcher did not get there")


def test_batcher_takes_what_waited_while_a_batch_ran():
    """With no delay the first request runs alone; the requests that arrive meanwhile go
    together in the next call, up to max_batch rows in arrival order (a request that does not
    fit waits for the call after); each gets its own rows back."""
    gated = _GatedModel()

    async def main():
        batcher = Batcher(gated.model, max_batch=4, max_delay_s=0.0)
        await batcher.start()
        first = asyncio.ensure_future(batcher.infer(_rows(1, 1.0), 1))
        await _until(lambda: gated.calls == [1])
        later = [asyncio.ensure_future(batcher.infer(_rows(n, float(n)), n)) for n in (2, 1, 3)]
        await _until(lambda: len(batcher._waiting) == 3)
        gated.gate.set()
        results = await asyncio.gather(first, *later)
        await batcher.stop()
        return results, batcher.stats
    results, stats = asyncio.run(main())
    assert gated.calls == [1, 3, 3]
    assert stats == {"requests": 4, "predict_calls": 3, "rows": 7, "largest_batch": 3}
    for (y,), n, value in zip(results, (1, 2, 1, 3), (1.0, 2.0, 1.0, 3.0)):
        np.testing.assert_array_equal(y, np.full((n, 2), 10 * value, np.float32))


def test_batcher_holds_rows_for_the_delay_and_stop_runs_them():
    """Rows short of max_batch wait for the delay (an hour here); stop() runs what waits."""
    gated = _GatedModel()
    gated.gate.set()

    async def main():
        batcher = Batcher(gated.model, max_batch=8, max_delay_s=3600.0)
        await batcher.start()
        pending = [asyncio.ensure_future(batcher.infer(_rows(n), n)) for n in (1, 2, 3)]
        await asyncio.sleep(0.2)
        assert gated.calls == [] and not any(p.done() for p in pending)
        await batcher.stop()
        return await asyncio.gather(*pending)
    results = asyncio.run(main())
    assert gated.calls == [6] and [y.shape[0] for (y,) in results] == [1, 2, 3]


def test_batcher_timer_runs_the_batch_even_if_it_fires_early():
    """uvloop's timers have 1 ms steps and may fire before the due time by the loop's clock;
    the timer's callback must run the batch then, not set the timer again (a busy loop)."""
    gated = _GatedModel()
    gated.gate.set()

    async def main():
        batcher = Batcher(gated.model, max_batch=8, max_delay_s=3600.0)
        await batcher.start()
        pending = asyncio.ensure_future(batcher.infer(_rows(2), 2))
        await _until(lambda: batcher._timer is not None)
        batcher._timer.cancel()
        batcher._timed_out()           # "fires" an hour early
        (y,) = await pending
        await batcher.stop()
        return y
    assert asyncio.run(main()).shape == (2, 2) and gated.calls == [2]


def test_batcher_fails_every_request_of_a_failing_batch_and_goes_on():
    gated = _GatedModel()
    gated.gate.set()

    async def main():
        batcher = Batcher(gated.model, max_batch=8, max_delay_s=3600.0)
        await batcher.start()
        bad = [asyncio.ensure_future(batcher.infer(_rows(1, v), 1)) for v in (1.0, -1.0)]
        await asyncio.sleep(0.05)
        good = asyncio.ensure_future(batcher.infer(_rows(6), 6))   # 8 rows: runs at once
        outcome = await asyncio.gather(*bad, good, return_exceptions=True)
        after = await batcher.infer(_rows(8), 8)
        await batcher.stop()
        return outcome, after
    (a, b, good), after = asyncio.run(main())
    assert isinstance(a, ModelError) and isinstance(b, ModelError) and "negative" in str(a)
    assert isinstance(good, ModelError)     # it shared the failing call
    assert after[0].shape == (8, 2) and gated.calls == [8, 8]


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _port(proc) -> int:
    line = proc.stdout.readline()
    assert line.startswith("lepton serve: model"), line + proc.stderr.read()
    return int(line.split("http://127.0.0.1:")[1].split("/")[0])


SLOW_SERVER = """
import sys, time, numpy as np
from pathlib import Path
from lepton.serve import ServableModel, TensorSpec, serve
gate = Path(sys.argv[1])
def predict(x):
    if x[0, 0] == 7:                     # the slow request: waits for the test's signal
        print("predicting", flush=True)
        for _ in range(6000):
            if gate.exists():
                break
            time.sleep(0.01)
    return [x + 1]
spec = TensorSpec("x", np.dtype(np.float32), (-1, 3), 0)
serve(ServableModel("slow", (spec,), (TensorSpec("y", spec.dtype, (-1, 3), 0),), predict),
      port=0, max_batch=4, log_level="info")
print("exited cleanly", flush=True)
"""


def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path):
    gate = tmp_path / "release"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(gate)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = _port(proc)
        result = {}
        client = threading.Thread(target=lambda: result.update(
            zip(("status", "msg"), infer(port, np.full((1, 3), 7, np.float32), name="slow"))))
        client.start()
        assert proc.stdout.readline() == "predicting\n"
        proc.send_signal(signal.SIGTERM)
        for _ in range(1000):               # uvicorn says so once it stops accepting
            line = proc.stderr.readline()
            if "Shutting down" in line or not line:
                break
        assert "Shutting down" in line
        gate.touch()
        client.join(60)
        assert result["status"] == 200
        assert result["msg"]["outputs"][0]["data"] == [8.0] * 3
        assert proc.wait(60) == 0
        assert proc.stdout.read() == "exited cleanly\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_serves_a_saved_model(tmp_path):
    if not hasattr(lp, "load_model"):
        pytest.skip("lepton serve FILE loads the file with lepton.load_model, "
                    "which this version of Lepton does not have")
    path = tmp_path / "tiny.lepton"
    lp.save(mlp, str(path), (np.zeros((2, 16), np.float32),), batch_axis=0)
    proc = subprocess.Popen([sys.executable, "-m", "lepton.cli", "serve", str(path), "--port", "0",
                             "--max-batch", "4"], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = _port(proc)
        status, _, body = request(port, "GET", "/v2/models/tiny")
        assert status == 200 and json.loads(body)["inputs"][0]["shape"] == [-1, 16]
        x = RNG.standard_normal((3, 16)).astype(np.float32)
        status, msg = infer(port, x, name="tiny")
        assert status == 200, msg
        np.testing.assert_allclose(output(msg), reference(x), rtol=1e-5, atol=1e-5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
