"""vmath against NumPy in float64: each function, for float32 and float64, compiled into a loop
kernel `void k(T* out, T* in)` and run on a dense grid, a sweep of magnitudes from the smallest
denormal to the largest float (both signs) and the special values. Also: the float32 kernels
vectorise (as wide as LLVM vectorises a plain loop on this host) and call no libm function,
which is the point of vmath."""
import functools
import math
import re

import numpy as np
import pytest
from llvmlite import ir

import lepton as lp
from kernels import call_kernel, scale_loop
from lepton.compiler.codegen import vmath
from lepton.compiler.codegen.loops import for_range, new_function

LL = {np.float32: ir.FloatType(), np.float64: ir.DoubleType()}
DTS = [np.float32, np.float64]
NAMES = sorted(vmath.FUNCTIONS)

_erf = np.frompyfunc(math.erf, 1, 1)


def _sigmoid(x):
    t = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + t), t / (1 + t))


REFERENCE = {
    "exp": lambda dt: np.exp,
    "log": lambda dt: np.log,
    "tanh": lambda dt: np.tanh,
    "sigmoid": lambda dt: _sigmoid,
    "erf": lambda dt: lambda x: _erf(x).astype(np.float64),
    "sin": lambda dt: np.sin,
    "cos": lambda dt: np.cos,
}

# Allowed error in units of the last place of the correctly rounded result, a little above the
# measured maxima (f32: exp 1.02, log 0.86, erf 1.10, sin/cos 1.47, sigmoid 2.09, tanh 2.24;
# f64, against NumPy's own float64 result: 1 ulp, sigmoid 2, tanh 3, sin/cos 7 at |x| ~ 1e15).
ULPS = {np.float32: {"exp": 1.5, "log": 1.5, "erf": 1.5, "sin": 2, "cos": 2, "sigmoid": 3,
                     "tanh": 3},
        np.float64: {"exp": 2, "log": 2, "erf": 2, "sin": 16, "cos": 16, "sigmoid": 3,
                     "tanh": 4}}

# Where each function does something interesting, per dtype.
GRID = {
    "exp": {np.float32: (-110, 95), np.float64: (-760, 720)},
    "log": {np.float32: (0, 4), np.float64: (0, 4)},
    "tanh": {np.float32: (-12, 12), np.float64: (-25, 25)},
    "sigmoid": {np.float32: (-120, 120), np.float64: (-760, 760)},
    "erf": {np.float32: (-7, 7), np.float64: (-9, 9)},
    "sin": {np.float32: (-1e4, 1e4), np.float64: (-1e4, 1e4)},
    "cos": {np.float32: (-1e4, 1e4), np.float64: (-1e4, 1e4)},
}


def special_values(dt):
    fi = np.finfo(dt)
    tiny = fi.smallest_subnormal
    v = [0.0, 1.0, 0.5, 2.0, np.inf, np.nan, tiny, 3 * tiny, tiny * 2 ** 20, fi.smallest_normal,
         fi.smallest_normal * 0.75, fi.tiny * 2, 1e-30, 1e30, fi.max, 3.0e38, 1e300,
         math.log(float(fi.max)), math.log(float(fi.smallest_subnormal)), math.pi / 2, math.pi]
    with np.errstate(over="ignore"):   # 3e38 and 1e300 become inf in float32: wanted
        v = np.array(v, dtype=np.float64).astype(dt)
        v = np.concatenate([v, np.nextafter(v, dt(np.inf)), np.nextafter(v, dt(-np.inf))])
    return np.concatenate([v, -v])


def inputs(name, dt):
    rng = np.random.default_rng(1)
    lo, hi = GRID[name][dt]
    fi = np.finfo(dt)
    mags = np.exp(np.linspace(math.log(fi.smallest_subnormal), math.log(fi.max), 20001))
    mags = np.clip(mags, fi.smallest_subnormal, fi.max)   # exp(log(max)) may round above max
    parts = [np.linspace(lo, hi, 200001), np.linspace(-2, 2, 40001), mags, -mags,
             special_values(dt).astype(np.float64)]
    if name in ("sin", "cos"):
        # both reductions (Cody-Waite up to SINCOS_MAX, Payne-Hanek beyond) up to the largest float
        limit = vmath.SINCOS_MAX["f32" if dt == np.float32 else "f64"]
        big = np.exp(rng.uniform(math.log(limit), math.log(float(fi.max)), 40000))
        parts += [rng.uniform(-limit, limit, 20000), np.minimum(big, fi.max), -big]
    if name == "log":
        one = dt(1.0)
        parts.append(one + np.arange(-200, 200) * np.finfo(dt).eps / 2)
    return np.concatenate([p.astype(dt) for p in parts])


def build(name, dt, n):
    """A module with `void k(T* out, T* in)` applying vmath's `name` to n elements."""
    mod = ir.Module()
    ptr = LL[dt].as_pointer()
    fn, b = new_function(mod, "k", [ptr, ptr], ["out", "in"])
    out, inp = fn.args
    with for_range(b, n) as i:
        b.store(vmath.FUNCTIONS[name](b, b.load(b.gep(inp, [i]))), b.gep(out, [i]))
    b.ret_void()
    return mod


@functools.cache
def run(name, dt):
    x = inputs(name, dt)
    y = np.full_like(x, 7.0)
    lib = call_kernel(build(name, dt, len(x)), "k", y, x)
    return x, y, lib


@pytest.mark.parametrize("dt", DTS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_accuracy_and_special_values(name, dt):
    x, y, _ = run(name, dt)
    with np.errstate(all="ignore"):
        ref = REFERENCE[name](dt)(x.astype(np.float64))
        rounded = ref.astype(dt)
    nan = np.isnan(rounded)
    assert np.array_equal(np.isnan(y), nan), \
        f"{name}: nan mismatch at x={x[np.isnan(y) != nan][:5]}, y={y[np.isnan(y) != nan][:5]}"
    inf = np.isinf(rounded)
    wrong = inf & (y != rounded)
    assert not wrong.any(), f"{name}: want inf at x={x[wrong][:5]}, got {y[wrong][:5]}"
    zero = (rounded == 0) | (y == 0)
    bad_sign = zero & (np.signbit(y) != np.signbit(rounded))
    assert not bad_sign.any(), f"{name}: sign of zero wrong at x={x[bad_sign][:5]}"
    fin = ~nan & ~inf
    ulp = np.spacing(np.abs(rounded[fin])).astype(np.float64)
    err = np.abs(y[fin].astype(np.float64) - ref[fin]) / ulp
    limit = ULPS[dt][name]
    k = int(np.argmax(err))
    assert err[k] <= limit, (f"{name}[{dt.__name__}]: {err[k]:.2f} ulp at x={x[fin][k]!r}: "
                             f"got {y[fin][k]!r}, want {ref[fin][k]!r}")


def test_exact_special_values():
    """The IEEE cases spelled out (the sweep above covers them too, this names them)."""
    cases = {
        "exp": [(-np.inf, 0.0), (np.inf, np.inf), (1000.0, np.inf), (-1000.0, 0.0), (0.0, 1.0)],
        "log": [(0.0, -np.inf), (-0.0, -np.inf), (-1.0, np.nan), (np.inf, np.inf), (1.0, 0.0),
                (-np.inf, np.nan)],
        "tanh": [(np.inf, 1.0), (-np.inf, -1.0), (50.0, 1.0), (-0.0, -0.0)],
        "sigmoid": [(np.inf, 1.0), (-np.inf, 0.0), (1000.0, 1.0), (-1000.0, 0.0), (0.0, 0.5)],
        "erf": [(np.inf, 1.0), (-np.inf, -1.0), (10.0, 1.0), (-0.0, -0.0)],
        "sin": [(np.inf, np.nan), (-0.0, -0.0), (0.0, 0.0)],
        "cos": [(np.inf, np.nan), (-np.inf, np.nan), (0.0, 1.0)],
    }
    for name, pairs in cases.items():
        for dt in DTS:
            x = np.array([p[0] for p in pairs] + [np.nan], dtype=dt)
            want = np.array([p[1] for p in pairs] + [np.nan], dtype=dt)
            y = np.empty_like(x)
            call_kernel(build(name, dt, len(x)), "k", y, x)
            np.testing.assert_array_equal(y, want, err_msg=f"{name}[{dt.__name__}]")
            num = ~np.isnan(want)    # a nan's sign bit means nothing
            assert np.array_equal(np.signbit(y[num]), np.signbit(want[num])), \
                f"{name}[{dt.__name__}]: sign of {y} (want {want})"


def test_log_of_denormals():
    for dt in DTS:
        x = np.array([np.finfo(dt).smallest_subnormal * k for k in (1, 2, 3, 1000, 12345)], dt)
        y = np.empty_like(x)
        call_kernel(build("log", dt, len(x)), "k", y, x)
        np.testing.assert_allclose(y, np.log(x.astype(np.float64)), rtol=4 * np.finfo(dt).eps)


# LLVM intrinsics that lower to libm calls (or are as slow): none may appear.
LIBM = re.compile(r"@(llvm\.)?(exp|exp2|log|log2|log10|pow|sin|cos|tan|tanh|erf|sinh|cosh|"
                  r"atan|asin|acos)[f.(]")


def widest_vector(ir_text: str, elem: str) -> int:
    return max(map(int, re.findall(rf"<(\d+) x {elem}>", ir_text)), default=1)


@functools.cache
def host_float_lanes() -> int:
    """How many float lanes LLVM vectorises a plain loop to on this host (AVX2: 8, AVX-512: 8
    or 16 depending on the CPU's preference, NEON: 4), asked by compiling one."""
    x = np.zeros(4096, np.float32)
    return widest_vector(call_kernel(scale_loop(4096), "k", np.empty_like(x), x).optimized_ir,
                         "float")


@pytest.mark.parametrize("name", NAMES)
def test_float32_kernel_vectorises_without_libm(name):
    lanes = host_float_lanes()
    assert lanes > 1
    ir_text = run(name, np.float32)[2].optimized_ir
    assert f"<{lanes} x float>" in ir_text, f"{name}: the loop did not vectorise to {lanes} lanes"
    callees = set(re.findall(r"call [^@]*@([\w.]+)", ir_text))
    assert not any(LIBM.search("@" + c + "(") for c in callees), f"{name} calls {callees}"
    # sin and cos call their own Payne-Hanek reduction (in the module, checked by the same regex)
    assert all(c.startswith(("llvm.", "lepton.")) for c in callees), f"{name} calls {callees}"


@pytest.mark.parametrize("dt,lanes", [(np.float32, 16), (np.float64, 8)], ids=["f32", "f64"])
def test_vector_values_match_scalar(dt, lanes):
    """The emitters also take <N x float> values and give what the scalar code gives."""
    x = np.random.default_rng(0).uniform(-30, 30, 4 * lanes).astype(dt)
    x[:8] = [0.0, np.inf, np.nan, -1e-40, 3e6, -1e30, 1e16, float(np.finfo(dt).max)]
    for name in NAMES:
        xin = np.abs(x) if name == "log" else x
        mod = ir.Module()
        vty = ir.VectorType(LL[dt], lanes)
        fn, b = new_function(mod, "k", [vty.as_pointer()] * 2)
        out, inp = fn.args
        align = x.itemsize   # NumPy only promises element alignment, LLVM assumes the vector's
        with for_range(b, len(x) // lanes) as i:
            y = vmath.FUNCTIONS[name](b, b.load(b.gep(inp, [i]), align=align))
            b.store(y, b.gep(out, [i]), align=align)
        b.ret_void()
        yv, ys = np.empty_like(x), np.empty_like(x)
        call_kernel(mod, "k", yv, xin)
        call_kernel(build(name, dt, len(x)), "k", ys, xin)
        np.testing.assert_array_equal(yv, ys, err_msg=name)


@pytest.mark.parametrize("dt", DTS, ids=["f32", "f64"])
def test_compiled_sin_cos_hold_for_every_finite_input(dt):
    """Through lp.compile: a sweep of magnitudes up to the largest float, both signs, against
    NumPy in float64; inf and nan give nan as in NumPy."""
    fi = np.finfo(dt)
    mags = np.exp(np.linspace(math.log(1e-3), math.log(float(fi.max)), 30001))
    x = np.concatenate([mags, -mags, [fi.max, -fi.max, np.inf, -np.inf, np.nan]]).astype(dt)
    f = lp.compile(lambda x: (lp.sin(x), lp.cos(x)))
    with np.errstate(invalid="ignore"):
        for got, want in zip(f(x), (np.sin(x.astype(np.float64)), np.cos(x.astype(np.float64)))):
            assert got.dtype == dt
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            ok = ~np.isnan(want)
            ulp = np.spacing(np.abs(want[ok].astype(dt))).astype(np.float64)
            assert (np.abs(got[ok] - want[ok]) / ulp).max() <= ULPS[dt]["sin"]


def test_rejects_non_float_values():
    mod = ir.Module()
    fn, b = new_function(mod, "k", [ir.IntType(32)])
    with pytest.raises(TypeError, match="float or double"):
        vmath.exp(b, fn.args[0])
