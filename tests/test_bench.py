"""lepton.bench: the workloads' NumPy versions against their float64 references, the checker,
the timer (driven by a fake clock), bench_one's verdicts, the worker protocol with crashes and
hangs, and the table."""
import stat
import sys

import numpy as np
import pytest

from lepton.bench import WORKLOADS, check, format_table, select
from lepton.bench.check import as_outputs, verify
from lepton.bench.harness import FrameworkRun, Report, resolve_peers
from lepton.bench.supervisor import WorkerProcess
from lepton.bench.report import fmt_time, rows
from lepton.bench.runners import LeptonRunner, Prepared, Runner
from lepton.bench.timing import Result, Settings, bench_one, measure


# ---- the workloads ----------------------------------------------------------------------------

@pytest.mark.parametrize("wid", list(WORKLOADS))
def test_numpy_implementation_matches_float64_reference(wid):
    w = WORKLOADS[wid]
    args = w.make_inputs()
    assert all(a.dtype == (np.int64 if name == "labels" else np.float32)
               for name, a in zip(w.arg_names, args))
    assert len(args) == len(w.arg_names)
    out = w.numpy_impl(*args)
    ref = w.reference(*args)
    assert all(r.dtype == np.float64 for r in as_outputs(ref))
    verdict = verify(w, out, ref, args)
    assert verdict.ok, verdict.detail
    # The inputs are a fixed seed: the same arrays every time.
    again = w.make_inputs()
    assert all(np.array_equal(a, b) for a, b in zip(args, again))


def test_shapes_are_those_of_benchmarks_md():
    shapes = {wid: [a.shape for a in WORKLOADS[wid].make_inputs()] for wid in WORKLOADS
              if wid != "W3"}
    assert shapes["W1"][:2] == [(1, 784), (784, 512)] and shapes["W1"][-2] == (512, 10)
    assert shapes["W2"][0] == (256, 784)
    assert shapes["W4"] == [(4096, 1024), (1024,), (1024,)]
    assert shapes["W5"] == [(1024, 1024), (1024, 1024)]
    assert shapes["W7"][:3] == [(32, 1, 28, 28), (32, 1, 3, 3), (32,)]
    assert shapes["W7"][3] == (64, 32, 3, 3) and shapes["W7"][5] == (3136, 10)
    assert shapes["W8"][0] == (128, 256) and shapes["W8"][3] == (256, 768)
    assert shapes["W6"] == [(128, 784), (128,), (784, 256), (256,), (256, 10), (10,)]
    assert WORKLOADS["W3"].make_inputs()[0].shape == (1 << 24,)
    # W9: x (T, B, I), PyTorch's LSTM layouts; W10: 12 blocks of W8's 12 parameters + final LN
    assert shapes["W9"] == [(64, 32, 128), (32,), (1024, 128), (1024, 256), (1024,), (10, 256),
                            (10,)]
    assert len(shapes["W10"]) == 1 + 12 * 12 + 2 and shapes["W10"][0] == (128, 256)
    assert shapes["W11"][:3] == [(32, 3, 32, 32), (32,), (32, 3, 3, 3)]
    assert shapes["W11"][5] == (64, 32, 3, 3) and shapes["W11"][8] == (4096, 10)


def test_quick_leaves_out_the_heavy_workloads_unless_named(monkeypatch, tmp_path):
    from lepton.bench import harness
    seen = []

    class Worker:                 # records what would be measured, measures nothing
        def __init__(self, name, *a):
            self.version = ""

        def start(self, timeout_s):
            return None

        def run(self, wid, timeout_s):
            seen.append(wid)
            return Result(wid, "NumPy", "ok")

        def close(self):
            pass
    monkeypatch.setattr(harness, "WorkerProcess", Worker)
    monkeypatch.setattr(harness, "save_reference", lambda w, d: None)
    report = harness.run(peers="none", quick=True, lepton=False)
    assert {"W9", "W10", "W11"}.isdisjoint(seen) and "W8" in seen
    assert any("W9, W10, W11: skipped under --quick" in n for n in report.notes)
    seen.clear()
    harness.run(only="W9", peers="none", quick=True, lepton=False)
    assert seen == ["W9"]


def test_w6_check_sees_a_wrong_gradient():
    # The updates are small next to the parameters: W6 compares the gradients recovered from
    # them, so a gradient 1% off (or a parameter left alone) is WRONG although a plain check of
    # the updated parameter would pass.
    w = WORKLOADS["W6"]
    args = w.make_inputs()
    ref = w.reference(*args)
    loss, w1, b1, w2, b2 = w.numpy_impl(*args)
    stale = verify(w, (loss, args[2], b1, w2, b2), ref, args)
    assert not stale.ok and stale.detail.startswith("output 1:")
    off = w1 + np.float32(0.01) * (w1 - args[2])          # 1% more of the update
    assert check(off, ref[1], w.tol).ok          # the plain check of p' does not see it
    assert not verify(w, (loss, off, b1, w2, b2), ref, args).ok
    assert "3 outputs, expected 5" in verify(w, (loss, w1, b1), ref, args).detail
    assert verify(w, (loss, w1, b1, w2, b2), ref, args).ok


def test_w8_reference_is_causal():
    # Changing the last token must not change any earlier row of the block's output.
    w = WORKLOADS["W8"]
    args = list(w.make_inputs())
    before = w.reference(*args)
    args[0] = args[0].copy()
    args[0][-1] += 1.0
    after = w.reference(*args)
    assert np.allclose(before[:-1], after[:-1])
    assert not np.allclose(before[-1], after[-1])


def test_select_orders_and_rejects():
    assert [w.id for w in select("w5, W1")] == ["W1", "W5"]
    assert [w.id for w in select(["call"])] == ["call"]
    with pytest.raises(ValueError, match="unknown workload W99"):
        select("W1,W99")


# ---- the checker ------------------------------------------------------------------------------

def test_check_rejects_wrong_shape_dtype_values_and_nan():
    ref = np.linspace(-3, 3, 12).reshape(3, 4)
    good = ref.astype(np.float32)
    assert check(good, ref, 1e-6).ok
    assert "shape" in check(good.reshape(4, 3), ref, 1e-3).detail
    assert "dtype" in check(ref, ref, 1e-3).detail
    bad = good.copy()
    bad[1, 2] += 0.1
    v = check(bad, ref, 1e-3)
    assert not v.ok and v.error > 1e-3
    nan = good.copy()
    nan[0, 0] = np.nan
    assert "non-finite" in check(nan, ref, 1e-3).detail


# ---- timing with a fake clock -----------------------------------------------------------------

class FakeClock:
    """Time advances only when the function under test says so."""
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_measure_takes_the_median_after_warmup():
    clock = FakeClock()
    durations = iter([5.0] * 2 + [0.010, 0.030, 0.020, 0.011, 0.900] * 20)   # 2 warm-ups first

    def call():
        clock.now += next(durations)
    s = Settings(warmup=2, min_samples=5, max_samples=5, budget_s=0.0)
    t = measure(call, s, clock)
    assert t.samples == 5 and t.inner == 1
    assert t.median_s == pytest.approx(0.020)


def test_measure_batches_calls_shorter_than_a_sample():
    clock = FakeClock()
    calls = []

    def call():
        calls.append(1)
        clock.now += 2.0 ** -20          # ~1 µs, exact in binary so the count is exact
    s = Settings(warmup=1, warmup_s=0.0, min_samples=4, max_samples=4, budget_s=0.0,
                 min_sample_s=2.0 ** -14)
    t = measure(call, s, clock)
    assert t.inner == 64
    assert len(calls) == 1 + 4 * 64
    assert t.median_s == pytest.approx(2.0 ** -20)


def test_warm_up_lasts_at_least_its_time():
    clock = FakeClock()
    calls = []

    def call():
        calls.append(1)
        clock.now += 2.0 ** -7           # exact in binary
    s = Settings(warmup=1, warmup_s=10 * 2.0 ** -7, min_samples=1, max_samples=1, budget_s=0.0,
                 min_sample_s=0.0)
    measure(call, s, clock)
    assert len(calls) == 10 + 1          # warm-up calls for warmup_s, then one sample


def test_measure_runs_until_the_budget_is_spent():
    clock = FakeClock()

    def call():
        clock.now += 0.01
    t = measure(call, Settings(warmup=1, min_samples=3, max_samples=1000, budget_s=0.5), clock)
    assert 49 <= t.samples <= 51


class NumpyAsCompiled(Runner):
    """A stand-in for a compiler: 'compiles' by taking the NumPy implementation; counts calls."""
    name = "fake"

    def __init__(self, clock, call_s=0.002, compile_s=0.25, corrupt=False, fail=False,
                 cpu=None, threads=1):
        self.clock, self.call_s, self.compile_s = clock, call_s, compile_s
        self.corrupt, self.fail, self.calls = corrupt, fail, 0
        self.cpu, self.threads = cpu, threads

    def prepare(self, workload, args):
        if self.fail:
            raise RuntimeError("cannot lower op 'frobnicate'\nsecond line")
        self.clock.now += self.compile_s

        def call():
            self.calls += 1
            self.clock.now += self.call_s
            if self.cpu is not None:
                self.cpu.now += self.call_s * self.threads
            y = workload.numpy_impl(*args)
            return y + 1 if self.corrupt else y
        return Prepared(call, np.asarray)


def _w(wid):
    w = WORKLOADS[wid]
    args = w.make_inputs()
    return w, args, w.reference(*args)


def test_bench_one_times_a_correct_result():
    clock, cpu = FakeClock(), FakeClock()
    runner = NumpyAsCompiled(clock, cpu=cpu, threads=2)     # computes on two CPUs
    w, args, ref = _w("W8")
    r = bench_one(runner, w, args, ref, Settings(warmup=1, warmup_s=0.0, min_samples=5,
                                                  max_samples=5, budget_s=0.0, min_sample_s=0.0),
                  clock, cpu)
    assert r.status == "ok" and r.framework == "fake" and r.workload == "W8"
    assert r.ms == pytest.approx(2.0)
    assert r.cpu_per_wall == pytest.approx(2.0)
    assert r.compile_s == pytest.approx(0.25)
    assert r.samples == 5 and runner.calls == 1 + 1 + 5     # check, warm-up, samples


def test_bench_one_never_times_a_wrong_result():
    clock = FakeClock()
    runner = NumpyAsCompiled(clock, corrupt=True)
    w, args, ref = _w("W1")
    r = bench_one(runner, w, args, ref, Settings.quick_mode(), clock, None)
    assert r.status == "wrong" and r.ms is None and "relative error" in r.detail
    assert runner.calls == 1


def test_bench_one_reports_errors_in_one_line():
    clock = FakeClock()
    w, args, ref = _w("W1")
    r = bench_one(NumpyAsCompiled(clock, fail=True), w, args, ref, Settings.quick_mode(), clock,
                  None)
    assert r.status == "error"
    assert r.detail == "RuntimeError: cannot lower op 'frobnicate'"


def test_lepton_runner_on_the_call_workload():
    runner = LeptonRunner()
    if runner.unavailable():
        pytest.skip(runner.unavailable())
    runner.setup()
    w, args, ref = _w("call")
    r = bench_one(runner, w, args, ref, Settings.quick_mode())
    assert r.status == "ok", r.detail
    assert r.compile_s > 0 and 0 < r.ms < 1.0


# ---- peers, in this process, on the most involved workload -----------------------------------

@pytest.mark.parametrize("peer,module", [("torch", "torch"), ("jax", "jax"),
                                         ("onnxruntime", "onnxruntime")])
def test_peer_computes_w6_w7_w8(peer, module, request):
    pytest.importorskip(module)
    if module == "onnxruntime":
        pytest.importorskip("onnx")
    from lepton.bench.runners import get_runner
    runner = get_runner(peer)
    if peer == "torch":  # its setup turns autograd off for the process: give it back after
        import torch
        request.addfinalizer(lambda grad=torch.is_grad_enabled(): torch.set_grad_enabled(grad))
    runner.setup()
    for wid in ("W6", "W7", "W8"):
        w, args, ref = _w(wid)
        if runner.unsupported(w):
            assert peer == "onnxruntime" and wid == "W6"
            continue
        p = runner.prepare(w, args)
        verdict = verify(w, p.fetch(p.call()), ref, args)
        assert verdict.ok, f"{peer} {wid}: {verdict.detail}"


@pytest.mark.parametrize("peer,module", [("torch", "torch"), ("jax", "jax"),
                                         ("onnxruntime", "onnxruntime")])
def test_peer_computes_w9_w10_w11(peer, module, request):
    pytest.importorskip(module)
    if module == "onnxruntime":
        pytest.importorskip("onnx")
    from lepton.bench.runners import get_runner
    runner = get_runner(peer)
    if peer == "torch":
        import torch
        request.addfinalizer(lambda grad=torch.is_grad_enabled(): torch.set_grad_enabled(grad))
    runner.setup()
    for wid in ("W9", "W10", "W11"):
        w, args, ref = _w(wid)
        if runner.unsupported(w):
            assert peer == "onnxruntime" and wid != "W10"
            continue
        p = runner.prepare(w, args)
        verdict = verify(w, p.fetch(p.call()), ref, args)
        assert verdict.ok, f"{peer} {wid}: {verdict.detail}"


def test_resolve_peers():
    assert resolve_peers("none", quick=False) == ([], [])
    assert resolve_peers("all", quick=True)[0] == ["torch", "torch.compile", "jax",
                                                   "onnxruntime"]
    chosen, notes = resolve_peers(None, quick=True)
    assert "torch.compile" not in chosen and "torch.compile" in notes[0]
    assert resolve_peers("ORT, inductor", quick=True)[0] == ["torch.compile", "onnxruntime"]
    with pytest.raises(ValueError, match="unknown peer"):
        resolve_peers("tensorflow", quick=False)


# ---- the worker process, and what happens when it crashes or hangs ----------------------------

def test_worker_process_stays_alive_across_workloads(tmp_path):
    w = WorkerProcess("NumPy", tmp_path, quick=True)
    try:
        assert w.start(timeout_s=60) is None
        assert w.version == np.__version__
        results = [w.run(wid, timeout_s=60) for wid in ("call", "W1")]
        assert [r.status for r in results] == ["ok", "ok"], [r.detail for r in results]
        assert results[1].ms > 0 and w.starts == 1 and w.alive
    finally:
        w.close()
    assert not w.alive


def _fake_python(tmp_path, body):
    """An executable standing in for `python -m lepton.bench.worker ...`."""
    script = tmp_path / "fakepython"
    script.write_text(body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_worker_crash_costs_one_cell_and_restarts(tmp_path):
    python = _fake_python(tmp_path, "#!/bin/sh\necho 'Segmentation fault' >&2\nexit 139\n")
    w = WorkerProcess("NumPy", tmp_path, python=python)
    results = [w.run(wid, timeout_s=30) for wid in ("W1", "W2")]
    assert [r.status for r in results] == ["crash", "crash"]
    assert "status 139" in results[0].detail and "Segmentation fault" in results[0].detail
    assert w.starts == 2


def test_worker_hang_at_start_is_a_timeout(tmp_path):
    python = _fake_python(tmp_path, "#!/bin/sh\nexec sleep 30\n")
    w = WorkerProcess("NumPy", tmp_path, python=python)
    assert w.run("W5", timeout_s=0.5).status == "timeout"
    assert not w.alive


def test_worker_hang_in_a_workload_is_a_timeout_then_it_restarts(tmp_path):
    # Says it is ready, then never answers: the cell times out, the next one starts it again.
    body = f"""#!{sys.executable}
import json, sys, time
out = sys.argv[sys.argv.index("--out") + 1]
with open(out, "a") as f:
    f.write(json.dumps({{"event": "info", "version": "9"}}) + "\\n")
time.sleep(30)
"""
    w = WorkerProcess("NumPy", tmp_path, python=_fake_python(tmp_path, body))
    results = [w.run(wid, timeout_s=1.0) for wid in ("W1", "W2")]
    assert [r.status for r in results] == ["timeout", "timeout"]
    assert "no answer within" in results[0].detail
    assert w.starts == 2 and w.version == "9"


def test_unavailable_framework(tmp_path):
    body = f"""#!{sys.executable}
import json, sys
out = sys.argv[sys.argv.index("--out") + 1]
with open(out, "a") as f:
    f.write(json.dumps({{"event": "unavailable", "detail": "jax is not installed"}}) + "\\n")
"""
    w = WorkerProcess("jax", tmp_path, python=_fake_python(tmp_path, body))
    assert w.start(timeout_s=30) == "unavailable: jax is not installed"
    r = w.run("W1", timeout_s=30)
    assert r.status == "unavailable" and r.detail == "jax is not installed"


# ---- the table --------------------------------------------------------------------------------

def _result(wid, fw, ms=None, status="ok", **kw):
    return Result(wid, fw, status, ms=ms, **kw)


def _report():
    ws = select("W1,W5,call")
    fws = [FrameworkRun("NumPy", "2.4", results={"W1": _result("W1", "NumPy", 4.0),
                                                 "W5": _result("W5", "NumPy", 10.0),
                                                 "call": _result("call", "NumPy", 0.0005)}),
           FrameworkRun("torch", "2.13", results={"W1": _result("W1", "torch", 1.0,
                                                                cpu_per_wall=1.9),
                                                  "W5": _result("W5", "torch", status="crash",
                                                                detail="worker exited")}),
           FrameworkRun("jax", note="jax is not installed"),
           FrameworkRun("Lepton", results={
               "W1": _result("W1", "Lepton", 2.0, compile_s=0.31, cpu_per_wall=0.5,
                             warm_s=0.004),
               "W5": _result("W5", "Lepton", status="wrong", detail="max relative error 1"),
               "call": _result("call", "Lepton", 0.002, compile_s=0.05)})]
    return Report(ws, fws, quick=True, notes=["torch.compile: skipped under --quick"])


def test_table_cells_ratios_and_footer():
    header, body = rows(_report())
    assert header == ["workload", "NumPy", "torch", "jax", "Lepton", "Lepton/NumPy",
                      "Lepton/fastest", "compile s", "warm ms"]
    assert body[0] == ["W1", "4.00", "1.00", "-", "2.00", "0.50", "2.00", "0.31", "4.0"]
    assert body[1] == ["W5", "10.0", "CRASH", "-", "WRONG", "-", "-", "-", "-"]
    assert body[2] == ["call (µs)", "0.500", "-", "-", "2.00", "4.00", "4.00", "0.05", "-"]
    text = format_table(_report())
    assert "jax: jax is not installed" in text
    assert "W5 Lepton WRONG: max relative error 1" in text
    assert "W5 torch CRASH: worker exited" in text
    assert "torch.compile: skipped under --quick" in text
    assert "more than one CPU busy while timed (CPU s per s): W1 torch (1.9)" in text
    assert "waited for a CPU (CPU s per s): W1 Lepton (0.50)" in text
    md = format_table(_report(), markdown=True)
    assert md.splitlines()[0].startswith("| workload | NumPy |")


def test_table_names_each_workload_in_words():
    # A legend under the table says what W1, W5 and the call row are (Workload.title).
    text = format_table(_report()).splitlines()
    assert "W1    MLP 784-512-512-10, ReLU, batch 1, inference" in text
    assert "W5    matmul 1024x1024 @ 1024x1024" in text
    assert "call  call overhead: x + 1 on f32[1]" in text
    md = format_table(_report(), markdown=True).splitlines()
    assert "| W5 | matmul 1024x1024 @ 1024x1024 |" in md
    assert all(w.title and len(w.title) < 100 for w in WORKLOADS.values())


def test_fmt_time_keeps_three_figures():
    assert [fmt_time(v) for v in (0.09123, 2.4249, 63.51, 201.4)] == \
        ["0.091", "2.42", "63.5", "201"]
