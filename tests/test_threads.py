"""Kernels split across threads give the single-thread results (LEPTON_NUM_THREADS); calls
from several Python threads and from forked processes (in subprocesses with timeouts)."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import lepton as lp
from lepton.ir import interpret
from lepton.runtime.jit import openmp_available

rng = np.random.default_rng(5)
pytestmark = pytest.mark.skipif(not openmp_available(), reason="no libgomp on this system")


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


CASES = [
    ("chain", lambda x: lp.gelu(x * 1.5 + 0.25, approximate=True) * 0.5 + x, [((1 << 16) + 3,)]),
    ("softmax rows", lambda x: lp.softmax(x), [(3, 40000)]),
    ("layer_norm", lambda x, w, b: lp.layer_norm(x, w, b), [(1001, 64), (64,), (64,)]),
    ("row sums", lambda x: lp.sum(lp.exp(x), axis=-1), [(513, 129)]),
    ("odd outer", lambda x, y: lp.maximum(x, y) * 2.0, [(7, 5, 1031), (5, 1031)]),
    ("matmul epilogue", lambda x, w, b, r: lp.relu(x @ w + b) + r,
     [(333, 100), (100, 70), (70,), (333, 70)]),
    ("matmul a^T", lambda x, y: x.T @ y, [(100, 301), (100, 90)]),
    ("matmul b^T", lambda x, w, b: x @ w.T + b, [(257, 64), (96, 64), (96,)]),
    ("batched", lambda q, k: lp.softmax(q @ k.transpose(0, 2, 1)), [(3, 100, 64), (3, 90, 64)]),
    ("conv", lambda x, w, b: lp.relu(lp.conv2d(x, w, b, padding=1)),
     [(8, 8, 24, 24), (16, 8, 3, 3), (16,)]),
    # dw sums 1024 products: x scaled so float32 rounding stays within the tolerance
    ("conv weight grad", lambda x, w, dy: lp.grad(
        lambda w: lp.sum(lp.conv2d(x * 0.03, w, padding=1) * dy))(w),
     [(4, 9, 16, 16), (16, 9, 3, 3), (4, 16, 16, 16)]),
]


@pytest.mark.parametrize("name,fn,shapes", CASES, ids=[c[0] for c in CASES])
def test_threads_agree_with_one_thread_and_the_interpreter(name, fn, shapes, monkeypatch):
    args = [f32(*s) for s in shapes]
    want = interpret(lp.trace(fn, *args), *args)[0]
    got = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("LEPTON_NUM_THREADS", threads)
        f = lp.compile(fn)
        got[threads] = f(*args)
        assert f.stats()["threads"] == int(threads)
        assert ("GOMP_parallel" in f.llvm_ir()) == (threads != "1")  # really split
        np.testing.assert_allclose(got[threads], want, rtol=2e-5, atol=2e-5)
    if "matmul" not in name and name not in ("batched", "conv", "conv weight grad"):
        np.testing.assert_array_equal(got["1"], got["2"])  # the same arithmetic per element


def test_bad_thread_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEPTON_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="LEPTON_NUM_THREADS"):
        lp.compile(lambda x: x + 1.0)(np.ones(3, np.float32))


def run_script(script: str, timeout: float = 180, **env) -> str:
    """Runs a Python script in a fresh interpreter (this checkout's lepton) with extra
    environment variables; a hang fails the test at `timeout` instead of hanging the suite."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    full = {**os.environ, "PYTHONPATH": root, **env}
    # a session of its own, so a hang kills the script's own children too (pool workers)
    proc = subprocess.Popen([sys.executable, "-c", script], env=full, cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the script did not finish in {timeout} s (hung?)")
    assert proc.returncode == 0, err
    return out


FORK_SCRIPT = """
import multiprocessing as mp
import numpy as np
import lepton as lp
from lepton.runtime import threads

rng = np.random.default_rng(0)
x = rng.standard_normal(1 << 18).astype(np.float32)
a, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(300, 200), (200, 100), (100,)])
chain = lp.compile(lambda x: lp.exp(x * 0.5) * 2.0 + x)
dense = lp.compile(lambda a, w, b: lp.relu(a @ w + b))
want = chain(x), dense(a, w, b)          # the parent's libgomp pool is running from here on
assert chain.stats()["threads"] == 2 and "GOMP_parallel" in chain.llvm_ir()
assert "GOMP_parallel" in dense.llvm_ir()

def work(i):
    fresh = lp.compile(lambda x: lp.exp(x * 0.5) * 2.0 + x)   # compiled in the child
    got = chain(x), dense(a, w, b), fresh(x)
    return (threads.cap(), bool(np.array_equal(got[0], want[0])),
            bool(np.allclose(got[1], want[1], rtol=1e-5, atol=1e-5)),
            bool(np.array_equal(got[2], want[0])))

with mp.get_context("fork").Pool(2) as pool:
    print(pool.map(work, range(4)))
print(threads.cap() > 1)
"""


def test_forked_children_run_compiled_code_after_a_multithreaded_kernel(tmp_path):
    out = run_script(FORK_SCRIPT, LEPTON_NUM_THREADS="2", LEPTON_CACHE_DIR=str(tmp_path))
    children, parent = out.strip().splitlines()
    assert children == str([(1, True, True, True)] * 4)   # one thread each, right results
    assert parent == "True"                                  # the parent keeps its threads


CONCURRENT_SCRIPT = """
import threading
import numpy as np
import lepton as lp

rng = np.random.default_rng(1)
f = lp.compile(lambda a, w, b, r: lp.softmax(lp.relu(a @ w + b) + r) * 2.0)
w = rng.standard_normal((64, 96)).astype(np.float32)
inputs = [[rng.standard_normal(s).astype(np.float32) for s in [(200, 64), (96,), (200, 96)]]
          for _ in range(4)]
want = [f(a, w, b, r) for a, b, r in inputs]    # one call at a time
wrong = []

def work(k):
    a, b, r = inputs[k]
    for _ in range(300):
        if not np.array_equal(f(a, w, b, r), want[k]):
            wrong.append(k)

ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(len(wrong), f.stats()["threads"])
"""


@pytest.mark.parametrize("threads", ["1", "2"])
def test_concurrent_calls_of_one_function_each_get_their_own_results(threads, tmp_path):
    # four Python threads, each with its own bias and residual (the epilogue's inputs) and
    # its own intermediates, call one compiled function at the same time
    out = run_script(CONCURRENT_SCRIPT, LEPTON_NUM_THREADS=threads,
                     LEPTON_CACHE_DIR=str(tmp_path))
    assert out.split() == ["0", threads]


def test_generated_code_has_no_mutable_globals(monkeypatch):
    monkeypatch.setenv("LEPTON_NUM_THREADS", "2")
    f = lp.compile(lambda a, w, b, r: lp.softmax(lp.relu(a @ w + b) + r) * 2.0)
    f(f32(300, 64), f32(64, 96), f32(96), f32(300, 96))
    defined = [line for line in f.llvm_ir().splitlines()
               if line.startswith("@") and " global " in line and " external " not in line]
    assert defined == []


def fake_cgroups(root, membership: str, files: dict) -> tuple[str, str]:
    """A fake cgroup mount under root: `files` maps paths to contents; returns the arguments
    of cpu_limit."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    (root / "self-cgroup").write_text(membership)
    return str(root / "fs"), str(root / "self-cgroup")


@pytest.mark.parametrize("membership,files,want", [
    ("0::/a/b\n", {"fs/a/b/cpu.max": "150000 100000\n"}, 2),            # v2: ceil(1.5)
    ("0::/a/b\n", {"fs/a/b/cpu.max": "max 100000\n"}, None),
    ("0::/a/b\n", {"fs/a/b/cpu.max": "max 100000\n", "fs/a/cpu.max": "300000 100000"}, 3),
    ("0::/a/b\n", {"fs/a/b/cpu.max": "400000 100000\n", "fs/a/cpu.max": "50000 100000"}, 1),
    ("0::/host/path\n", {"fs/cpu.max": "200000 100000\n"}, 2),           # container's own root
    ("0::/\n", {"fs/unified/cpu.max": "300000 100000\n"}, 3),            # hybrid layout
    ("4:cpu,cpuacct:/docker/x\n1:memory:/y\n",
     {"fs/cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000\n",
      "fs/cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"}, 3),      # v1
    ("3:cpu:/\n", {"fs/cpu/cpu.cfs_quota_us": "-1\n",
                   "fs/cpu/cpu.cfs_period_us": "100000\n"}, None),       # v1, no quota
    ("0::/a\n", {"fs/a/cpu.max": "garbage"}, None),
    ("0::/a\n", {}, None),
])
def test_cgroup_cpu_limit(tmp_path, membership, files, want):
    from lepton.cgroup import cpu_limit
    assert cpu_limit(*fake_cgroups(tmp_path, membership, files)) == want


def test_cgroup_cpu_limit_without_cgroups(tmp_path):
    from lepton.cgroup import cpu_limit
    assert cpu_limit(str(tmp_path / "none"), str(tmp_path / "no-such-file")) is None


def test_default_thread_count_honours_affinity_and_quota(monkeypatch):
    from lepton import config
    monkeypatch.delenv("LEPTON_NUM_THREADS", raising=False)
    monkeypatch.setattr(config, "cpu_limit", lambda: 1)
    assert config.current().threads == 1
    monkeypatch.setattr(config, "cpu_limit", lambda: None)
    assert config.current().threads == len(os.sched_getaffinity(0))
    monkeypatch.setenv("LEPTON_NUM_THREADS", "3")        # an explicit count is the user's
    assert config.current().threads == 3
