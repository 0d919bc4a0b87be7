"""Benchmarks of the GEMM, conv and pool kernels against NumPy (one thread), in one run.

    python tests/bench_gemm_conv.py

Prints, per case, the kernel's compile time (jit_compile), its best time, and NumPy's best time
(np.matmul; for conv a NumPy im2col + matmul; for pools a reshape/max or the op reference).
Not a test: timings depend on the machine and on its load.
"""
import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"   # before NumPy loads OpenBLAS: one core each

import ctypes  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from llvmlite import ir  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lepton.compiler.codegen.conv import emit_conv2d, emit_pool2d  # noqa: E402
from lepton.compiler.codegen.gemm import emit_matmul  # noqa: E402
from lepton.ir.ops import OPS  # noqa: E402
from lepton.ir.types import TensorType  # noqa: E402
from lepton.runtime.jit import jit_compile  # noqa: E402


def best_of(f, reps, budget=1.0):
    ts, start = [], time.perf_counter()
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget and len(ts) >= 5:
            break
    return min(ts)


def compiled(emit, arrays):
    """emit(module) -> Kernel; returns (call, compile seconds)."""
    m = ir.Module()
    k = emit(m)
    t = time.perf_counter()
    lib = jit_compile(str(m))
    ct = time.perf_counter() - t
    raw = np.zeros(k.scratch_bytes + 128, np.uint8)
    sp = (raw.ctypes.data + 63) // 64 * 64
    fn = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * (len(arrays) + 1))(lib.address(k.fn.name))
    ptrs = [a.ctypes.data for a in arrays] + [sp]

    def call():
        fn(*ptrs)
    call.keep = (lib, raw, arrays)
    return call, ct


def bench_matmul(m, k, n, dt=np.float32, trans_a=False, trans_b=False):
    """C = op(A) @ op(B); a transposed operand is stored transposed (A as K x M, B as N x K)
    and NumPy gets the same transposed views."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dt)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dt)
    av, bv = (a.T if trans_a else a), (b.T if trans_b else b)
    c = np.empty((m, n), dt)
    call, ct = compiled(lambda mod: emit_matmul(mod, "mm", TensorType.of(a), TensorType.of(b),
                                                TensorType.of(c), trans_a=trans_a,
                                                trans_b=trans_b), [c, a, b])
    reps = 2000 if m * k * n < 1e7 else 20
    t = best_of(call, reps)
    ref = av.astype(np.float64) @ bv
    err = np.abs(c - ref).max() / np.abs(ref).max()
    tn = best_of(lambda: np.matmul(av, bv), reps)
    fl = 2 * m * k * n
    what = f"{m}x{k}{'^T' if trans_a else ''} @ {k}x{n}{'(^T)' if trans_b else ''}"
    print(f"matmul {what:24s} {np.dtype(dt).name}: compile {ct:.3f} s | lepton {t * 1e6:9.1f} us "
          f"{fl / t / 1e9:6.1f} GFLOP/s | numpy {tn * 1e6:9.1f} us {fl / tn / 1e9:6.1f} GFLOP/s | "
          f"ratio {t / tn:.2f} | rel err {err:.1e}")


def bench_transposed():
    """The transposed-operand cases next to their plain forms (same run)."""
    for m, k, n in [(128, 784, 256), (256, 128, 10), (1, 784, 512), (256, 784, 512),
                    (1024, 1024, 1024)]:
        bench_matmul(m, k, n)
        bench_matmul(m, k, n, trans_a=True)
        bench_matmul(m, k, n, trans_b=True)


def np_conv(x, w, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    v = sliding_window_view(xp, (kh, kw), axis=(2, 3))
    ho, wo = v.shape[2:4]
    col = v.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, ho * wo)
    return np.matmul(w.reshape(o, -1), col).reshape(n, o, ho, wo)


def bench_conv(xs, ws, pad):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    attrs = dict(stride=(1, 1), padding=(pad, pad), dilation=(1, 1), groups=1)
    ot = OPS["conv2d"].infer([TensorType.of(x), TensorType.of(w)], attrs)
    out = np.empty(ot.shape, np.float32)
    call, ct = compiled(lambda mod: emit_conv2d(mod, "cv", TensorType.of(x), TensorType.of(w), ot,
                                                (1, 1), (pad, pad), (1, 1), 1), [out, x, w])
    t = best_of(call, 200)
    tn = best_of(lambda: np_conv(x, w, pad), 200)
    err = np.abs(out - np_conv(x.astype(np.float64), w, pad)).max()
    fl = 2 * np.prod(ot.shape) * np.prod(ws[1:])
    print(f"conv2d x{xs} w{ws} pad {pad}: compile {ct:.3f} s | lepton {t * 1e3:.3f} ms "
          f"{fl / t / 1e9:6.1f} GFLOP/s | numpy im2col+matmul {tn * 1e3:.3f} ms | ratio {t / tn:.2f} "
          f"| abs err {err:.1e}")


def bench_pool(kind, xs, k):
    x = np.random.default_rng(0).standard_normal(xs).astype(np.float32)
    attrs = dict(kernel=(k, k), stride=(k, k), padding=(0, 0))
    ot = OPS[f"{kind}_pool2d"].infer([TensorType.of(x)], attrs)
    out = np.empty(ot.shape, np.float32)
    call, ct = compiled(lambda mod: emit_pool2d(mod, "pl", kind, TensorType.of(x), ot, (k, k),
                                                (k, k), (0, 0)), [out, x])
    t = best_of(call, 500)
    n, c, h, w = xs
    r = x.reshape(n, c, h // k, k, w // k, k)
    tn = best_of(lambda: r.max(axis=(3, 5)) if kind == "max" else r.mean(axis=(3, 5)), 500)
    print(f"{kind}_pool2d x{xs} k{k}: compile {ct:.3f} s | lepton {t * 1e6:.1f} us | "
          f"numpy reshape+{kind} {tn * 1e6:.1f} us | ratio {t / tn:.2f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["transposed"]:
        bench_transposed()
        sys.exit()
    bench_matmul(1024, 1024, 1024)
    bench_matmul(256, 784, 512)
    bench_matmul(1, 784, 512)
    bench_matmul(128, 784, 256)
    bench_matmul(1024, 1024, 1024, np.float64)
    bench_conv((32, 1, 28, 28), (32, 1, 3, 3), 1)
    bench_conv((32, 32, 14, 14), (64, 32, 3, 3), 1)
    bench_pool("max", (32, 32, 28, 28), 2)
    bench_pool("max", (32, 64, 14, 14), 2)
    bench_pool("avg", (32, 32, 28, 28), 2)
