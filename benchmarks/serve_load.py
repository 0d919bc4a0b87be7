"""Load on `lepton serve`: the W2 MLP (784-512-512-10, ReLU) behind the Open Inference Protocol
server, driven on loopback by 1, 8 and 32 concurrent clients, each request one row (what an
online client sends: one input to score), with dynamic batching on (--max-batch 32
--max-delay-ms 2) and off (--max-batch 1); the same server around an onnxruntime session of
the same MLP as the peer (when onnxruntime and onnx are installed).

    python benchmarks/serve_load.py [--requests 2000] [--clients 1,8,32] [--binary] [--rows 1]
                                    [--frameworks lepton,onnxruntime] [--threads 1]
                                    [--loop auto] [--server-tree /path/to/other/checkout]

    framework    batching       clients  req/s  p50 ms  p99 ms  rows/call  CPU µs/req: server (loop model) clients
    lepton       off                  1    ...
    lepton       on (32, 2 ms)       32    ...

Each server is a subprocess with its kernels on --threads threads, warmed up for every batch
size class before it listens; a framework's two servers (batching off and on) run side by side
and take turns: each concurrency level sends --requests requests to each, in --rounds bursts
that alternate between them (off, on, on, off, off, on), so a change of the machine's load
hits both alike; req/s is the median over a server's bursts. A burst's requests are split
among the clients, each a thread with its own keep-alive connection sending prepared requests
(a burst stops after --seconds in any case), after a warm-up of 4 requests per client. Latency is the client's time from sending a
request to reading the whole answer; rows/call comes from the server's /v2/models/mlp/stats.
CPU µs/req is CPU time (user + system) per request answered: of the server process, split into
its main thread (the event loop: HTTP, decoding, encoding, batching) and the others (the model
thread), and of the client process. A busy machine inflates these far less than the wall-clock
figures, which on a shared machine move by 2x and more between runs: compare those within
one run. The bodies are JSON tensors, or with --binary the binary tensor data extension.
--server-tree runs the server with another checkout's lepton (an A/B with the same clients).
"""
from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# ---- the server (child process) ---------------------------------------------------------------

def _onnx_mlp(args):
    """The W2 MLP as an ONNX model with a free batch dimension and the weights as initializers
    (the way a served model is exported)."""
    from onnx import numpy_helper
    from lepton.bench.onnx_graphs import build
    from lepton.bench.workloads import WORKLOADS
    w = WORKLOADS["W2"]
    proto = build(w, args)
    graph = proto.graph
    weights = {n: a for n, a in zip(w.arg_names[1:], args[1:])}
    keep = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(keep)
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    graph.initializer.extend(numpy_helper.from_array(a, n) for n, a in weights.items())
    return proto


def build_model(framework: str, threads: int):
    from lepton.bench.workloads import WORKLOADS
    from lepton.serve import from_function
    args = WORKLOADS["W2"].make_inputs()
    x, params = args[0], args[1:]
    if framework == "lepton":
        import lepton as lp
        model = WORKLOADS["W2"].model
        f = lp.compile(lambda x: model(x, *params))
        return from_function(f, (x[:1],), name="mlp", batch_axis=0, input_names=["x"])
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(_onnx_mlp(args).SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return from_function(lambda x: sess.run(None, {"x": x}), (x[:1],), name="mlp",
                         batch_axis=0, input_names=["x"], size_classes=False,
                         platform="onnxruntime")


def model_alone(framework: str, threads: int, calls: int = 200) -> str:
    """The model's own median time per call at 1 and 32 rows, with no server around it: the
    most that batching can gain on the model's side."""
    os.environ["LEPTON_NUM_THREADS"] = str(threads)
    model = build_model(framework, threads)
    wall, cpu = {}, {}
    for rows in (1, 32):
        x = model.zeros(rows)
        model.predict(*x)
        samples, cpu0 = [], time.process_time()
        for _ in range(calls):
            t = time.perf_counter()
            model.predict(*x)
            samples.append(time.perf_counter() - t)
        wall[rows] = 1e6 * statistics.median(samples)
        cpu[rows] = 1e6 * (time.process_time() - cpu0) / calls
    return (f"{framework} alone, µs per call (median wall / mean CPU): 1 row {wall[1]:.0f} / "
            f"{cpu[1]:.0f}, 32 rows {wall[32]:.0f} / {cpu[32]:.0f} ({cpu[32] / 32:.0f} CPU µs "
            f"a row)")


def child(framework: str, max_batch: int, max_delay_ms: float, threads: int, loop: str) -> None:
    from lepton.serve import serve
    serve(build_model(framework, threads), port=0, max_batch=max_batch,
          max_delay_ms=max_delay_ms, **({} if loop == "auto" else {"loop": loop}))


# ---- the clients ------------------------------------------------------------------------------

def bodies(binary: bool, rows: int = 1, count: int = 64) -> list[bytes]:
    """`count` whole HTTP requests (head and body) of `rows` random rows each, made before
    timing so the clients spend their time on the server's answers."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        x = rng.standard_normal((rows, 784), dtype=np.float32)
        if binary:
            head = json.dumps({"inputs": [{"name": "x", "shape": [rows, 784], "datatype": "FP32",
                                           "parameters": {"binary_data_size": x.nbytes}}],
                               "parameters": {"binary_data_output": True}}).encode()
            body, extra = head + x.tobytes(), (f"Inference-Header-Content-Length: {len(head)}\r\n"
                                               "Content-Type: application/octet-stream\r\n")
        else:
            body = json.dumps({"inputs": [{"name": "x", "shape": [rows, 784], "datatype": "FP32",
                                           "data": x.ravel().tolist()}]}).encode()
            extra = "Content-Type: application/json\r\n"
        out.append(f"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
                   f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


class Connection:
    """A keep-alive HTTP/1.1 connection that sends whole prepared requests and reads answers
    with a Content-Length. The clients share the machine with the server: this one cost ~70-90
    µs of CPU per request in 32 threads where http.client cost ~280 (measured here, loaded)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def call(self, request: bytes) -> bytes:
        """Sends one request; the answer's body (RuntimeError if it is not a 200)."""
        self.sock.sendall(request)
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer += self._recv()
        head = buffer[:end].lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17:stop if stop > 0 else len(head)])
        while len(buffer) < end + 4 + length:
            buffer += self._recv()
        body, self.buffer = buffer[end + 4:end + 4 + length], buffer[end + 4 + length:]
        if head[9:12] != b"200":
            raise RuntimeError(f"HTTP {head[9:12].decode()}: {body[:200]!r}")
        return body

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data

    def close(self) -> None:
        self.sock.close()


def drive(port: int, clients: int, requests: int, seconds: float, payloads) -> dict:
    """`requests` requests from `clients` threads (at most `seconds`): req/s, p50, p99."""
    per_client = max(1, requests // clients)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = []
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i):
        conn = None
        try:
            conn = Connection(port)
            for k in range(4):                   # warm-up, not measured
                conn.call(payloads[(i + k) % len(payloads)])
            start.wait()
            for k in range(per_client):
                if time.perf_counter() > stop_at[0]:
                    break
                t = time.perf_counter()
                conn.call(payloads[(i * per_client + k) % len(payloads)])
                latencies[i].append(time.perf_counter() - t)
        except Exception as e:  # noqa: BLE001  reported with the row
            errors.append(f"{type(e).__name__}: {e}")
            start.abort()
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        stop_at[0] = time.perf_counter() + seconds + 600
        start.wait()
        t0 = time.perf_counter()
        stop_at[0] = t0 + seconds
    except threading.BrokenBarrierError:
        t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    done = sorted(x for lat in latencies for x in lat)
    if errors or not done:
        return {"error": errors[0] if errors else "no request completed"}
    return {"requests": len(done), "req_per_s": len(done) / wall,
            "p50_ms": 1e3 * statistics.median(done),
            "p99_ms": 1e3 * done[min(len(done) - 1, int(0.99 * len(done)))], "latencies": done}


def burst(proc, port: int, clients: int, requests: int, seconds: float, payloads) -> dict:
    """drive() on one server, with that server's counts and the CPU it and the clients used."""
    before, cpu = _stats(port), cpu_seconds(proc.pid)
    loop_cpu = cpu_seconds(proc.pid, proc.pid)     # the main thread runs the event loop
    mine = time.process_time()
    r = drive(port, clients, requests, seconds, payloads)
    r.update(client_cpu=time.process_time() - mine, server_cpu=cpu_seconds(proc.pid) - cpu,
             loop_cpu=cpu_seconds(proc.pid, proc.pid) - loop_cpu)
    after = _stats(port)
    r.update({k: after[k] - before[k]
              for k in ("request_count", "execution_count", "inference_count")})
    return r


def pooled(bursts: list[dict]) -> dict:
    """The bursts of one server at one level as one row: req/s is their median (each burst ran
    between bursts of the other server, so both see the same drift of the machine's load);
    latencies are pooled; CPU per request and rows per call are totals over all of them."""
    if any("error" in b for b in bursts):
        return {"error": next(b["error"] for b in bursts if "error" in b)}
    done = sorted(x for b in bursts for x in b["latencies"])
    n = sum(b["request_count"] for b in bursts) or 1
    per_request = {k + "_us": 1e6 * sum(b[k] for b in bursts) / n
                   for k in ("server_cpu", "loop_cpu", "client_cpu")}
    return {"requests": len(done), "req_per_s": statistics.median(b["req_per_s"] for b in bursts),
            "bursts_req_per_s": [round(b["req_per_s"]) for b in bursts],
            "p50_ms": 1e3 * statistics.median(done),
            "p99_ms": 1e3 * done[min(len(done) - 1, int(0.99 * len(done)))],
            "rows_per_call": sum(b["inference_count"] for b in bursts) /
            max(1, sum(b["execution_count"] for b in bursts)), **per_request}


def _stats(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", "/v2/models/mlp/stats")
        return json.loads(conn.getresponse().read())["model_stats"][0]
    finally:
        conn.close()


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process so far, or of its thread tid (Linux /proc)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(framework: str, max_batch: int, max_delay_ms: float, threads: int,
                 loop: str = "auto", tree: Path = ROOT):
    """The server in a child process with `tree`'s lepton (another checkout's, for an A/B)."""
    env = {**os.environ, "LEPTON_NUM_THREADS": str(threads),
           "PYTHONPATH": str(tree) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, __file__, "--child", framework,
                             "--max-batch", str(max_batch), "--max-delay-ms", str(max_delay_ms),
                             "--threads", str(threads), "--loop", loop],
                            env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("lepton serve:"):
        proc.kill()
        raise RuntimeError(f"the {framework} server did not start (exit {proc.wait()})")
    return proc, int(line.split("http://127.0.0.1:")[1].split("/")[0])


def available(framework: str) -> bool:
    if framework == "lepton":
        return True
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="per concurrency level")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=60.0, help="most time per level")
    ap.add_argument("--frameworks", default="lepton,onnxruntime")
    ap.add_argument("--threads", type=int, default=1, help="the server's kernel threads")
    ap.add_argument("--binary", action="store_true", help="binary tensor data, not JSON")
    ap.add_argument("--rows", type=int, default=1, help="rows per request")
    ap.add_argument("--rounds", type=int, default=3,
                    help="bursts per server and level, alternating between the two servers")
    ap.add_argument("--max-batch-on", type=int, default=32, help="--max-batch with batching on")
    ap.add_argument("--delay-ms", type=float, default=2.0, help="--max-delay-ms with batching on")
    ap.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                    help="the server's event loop (auto: uvloop when installed)")
    ap.add_argument("--server-tree", default=str(ROOT),
                    help="run the server with the lepton of this checkout (an A/B)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the rows here")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--max-batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--max-delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.child:
        child(opts.child, opts.max_batch, opts.max_delay_ms, opts.threads, opts.loop)
        return 0

    payloads = bodies(opts.binary, opts.rows)
    levels = [int(c) for c in opts.clients.split(",")]
    on = f"on ({opts.max_batch_on}, {opts.delay_ms:g} ms)"
    modes = [("off", 1, 0.0), (on, opts.max_batch_on, opts.delay_ms)]
    rows = []
    found = {m: importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop", "orjson")}
    loop = opts.loop if opts.loop != "auto" else "uvloop" if found["uvloop"] else "asyncio"
    print(f"W2 MLP 784-512-512-10, {opts.rows} row(s) per request, {opts.requests} requests per "
          f"level, {'binary' if opts.binary else 'JSON'} tensors, server kernels on "
          f"{opts.threads} thread(s), HTTP parser "
          f"{'httptools' if found['httptools'] else 'h11'}, loop {loop}, JSON "
          f"{'orjson' if found['orjson'] else 'json'}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, server from {opts.server_tree}")
    print(f"{'framework':12} {'batching':14} {'clients':>7} {'req/s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'rows/call':>9} {'CPU µs/req: server':>18} {'(loop':>6} "
          f"{'model)':>6} {'clients':>7}   req/s of each burst")
    for framework in opts.frameworks.split(","):
        if not available(framework):
            print(f"{framework:12} not installed")
            continue
        servers = {}
        try:
            for mode, max_batch, delay in modes:
                servers[mode] = start_server(framework, max_batch, delay, opts.threads,
                                             opts.loop, Path(opts.server_tree))
            for clients in levels:
                bursts = {mode: [] for mode, _, _ in modes}
                for k in range(opts.rounds):        # off, on, on, off, off, on, ...
                    for mode, _, _ in (modes if k % 2 == 0 else modes[::-1]):
                        bursts[mode].append(burst(*servers[mode], clients,
                                                  opts.requests // opts.rounds, opts.seconds,
                                                  payloads))
                for mode, _, _ in modes:
                    r = pooled(bursts[mode])
                    r.update(framework=framework, batching=mode, clients=clients)
                    rows.append(r)
                    if "error" in r:
                        print(f"{framework:12} {mode:14} {clients:7} ERROR {r['error']}")
                        continue
                    print(f"{framework:12} {mode:14} {clients:7} {r['req_per_s']:8.0f} "
                          f"{r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rows_per_call']:9.1f} "
                          f"{r['server_cpu_us']:18.0f} {r['loop_cpu_us']:6.0f} "
                          f"{r['server_cpu_us'] - r['loop_cpu_us']:6.0f} "
                          f"{r['client_cpu_us']:7.0f}   {r['bursts_req_per_s']}", flush=True)
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(120)
    for framework in opts.frameworks.split(","):
        def row(mode, clients):
            return next((r for r in rows if r["framework"] == framework and
                         r["batching"].startswith(mode) and r["clients"] == clients and
                         "error" not in r), None)
        on, off = row("on", max(levels)), row("off", max(levels))
        if on and off:
            cpu_on, cpu_off = (r["server_cpu_us"] + r["client_cpu_us"] for r in (on, off))
            print(f"{framework}: batching at {max(levels)} clients: "
                  f"{on['req_per_s'] / off['req_per_s']:.1f}x the throughput without; CPU per "
                  f"request (server and clients) {cpu_off:.0f} -> {cpu_on:.0f} µs, "
                  f"{cpu_off / cpu_on:.1f}x less (the gain when the CPUs are the bound)")
        if available(framework):
            print(model_alone(framework, opts.threads))
    if opts.json:
        Path(opts.json).write_text(json.dumps(rows, indent=1))  # without the raw latencies
    return 0


if __name__ == "__main__":
    sys.exit(main())
