"""LLVM modules compiled on several compile threads (lepton/runtime/compile_threads.py): the same
object code as one thread, every model correct, other threads still serialised by llvmlite's
lock, and concurrent compiles from user threads safe."""
from __future__ import annotations

import locale
import os
import threading

import numpy as np
import pytest

import lepton as lp
from lepton.runtime import compile_threads, jit
from lepton.runtime.routines import split_routines


def _mlp(x, w1, w2):
    h = lp.relu(x @ w1)
    return lp.softmax(lp.layer_norm(h) @ w2, axis=-1)


def _args(n=48, d=64, h=96, seed=0):
    r = np.random.default_rng(seed)
    return (r.standard_normal((n, d), dtype=np.float32),
            r.standard_normal((d, h), dtype=np.float32) * 0.1,
            r.standard_normal((h, d), dtype=np.float32) * 0.1)


def _reference(x, w1, w2):
    x, w1, w2 = (a.astype(np.float64) for a in (x, w1, w2))
    h = np.maximum(x @ w1, 0)
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
    z = h @ w2
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _jobs():
    args = _args()
    ir = lp.compile(_mlp, example_args=args).llvm_ir()
    model, routines = split_routines(ir)
    return [(r.ir, jit.ROUTINE_LEVEL) for r in routines] + [(model, jit.MODEL_LEVEL)]


def test_compile_threads_make_the_same_objects_as_one_thread():
    jobs = _jobs()
    assert len(jobs) >= 2
    before = locale.setlocale(locale.LC_CTYPE)
    one = compile_threads.compile_all(jobs, threads=1)
    for _ in range(5):
        assert compile_threads.compile_all(jobs * 2, threads=4) == one * 2
    # (llvmlite sets and restores the process's locale around printing a module: done at
    # once by two threads, "C" stayed behind and later text I/O in the process became ASCII)
    assert locale.setlocale(locale.LC_CTYPE) == before


def test_models_compiled_on_compile_threads_are_correct(monkeypatch, tmp_path):
    for cache in ("0", "1"):
        monkeypatch.setenv("LEPTON_CACHE", cache)
        monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path / cache))
        monkeypatch.setenv("LEPTON_COMPILE_THREADS", "3")
        for seed, n in enumerate((5, 48, 130)):
            args = _args(n=n, seed=seed)
            f = lp.compile(_mlp, example_args=args)
            np.testing.assert_allclose(f(*args), _reference(*args), rtol=2e-4, atol=2e-5)


def test_user_threads_compiling_at_once_each_get_correct_code(monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE", "0")
    monkeypatch.setenv("LEPTON_COMPILE_THREADS", "2")
    errors, results = [], {}

    def work(k):
        try:
            args = _args(n=16 + 8 * k, d=32 + 16 * (k % 3), seed=k)
            f = lp.compile(_mlp, example_args=args)
            results[k] = np.abs(f(*args) - _reference(*args)).max()
        except Exception as e:   # noqa: BLE001 (reported below)
            errors.append(e)
    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(results) == 4
    assert max(results.values()) < 1e-4


def test_the_lock_lets_only_a_running_job_through():
    class Counting:
        taken = 0

        def acquire(self, *a, **k):
            self.taken += 1
            return True

        def release(self):
            self.taken -= 1
    real = Counting()
    lock = compile_threads._Lock(real)
    lock.acquire()
    assert real.taken == 1          # an ordinary thread takes llvmlite's lock
    lock.release()
    compile_threads._job.running = True
    try:
        lock.acquire()
        assert real.taken == 0      # a thread running its own job passes
        lock.release()
    finally:
        compile_threads._job.running = False


def test_a_bad_module_raises_in_the_caller():
    good = _jobs()[0]
    with pytest.raises(RuntimeError, match="parsing error"):
        compile_threads.compile_all([good, ("define void @f( {", 2)], threads=2)


def test_bad_compile_thread_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEPTON_COMPILE_THREADS", "many")
    with pytest.raises(ValueError, match="LEPTON_COMPILE_THREADS"):
        lp.compile(lambda x: x + 1, example_args=(np.ones(3, np.float32),))


def test_compile_threads_default_to_the_cpus_not_the_kernel_threads(monkeypatch):
    from lepton import config
    monkeypatch.delenv("LEPTON_COMPILE_THREADS", raising=False)
    monkeypatch.setenv("LEPTON_NUM_THREADS", "1")
    monkeypatch.setattr(config, "cpu_limit", lambda: None)
    assert config.current().compile_threads == min(8, len(os.sched_getaffinity(0)))
    monkeypatch.setattr(config, "cpu_limit", lambda: 1)
    assert config.current().compile_threads == 1
    monkeypatch.setenv("LEPTON_COMPILE_THREADS", "12")     # an explicit count is the user's
    assert config.current().compile_threads == 12
