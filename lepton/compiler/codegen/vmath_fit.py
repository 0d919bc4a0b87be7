"""Derives the polynomial coefficients used by vmath.py (a development tool, not used at run time).

    python -m lepton.compiler.codegen.vmath_fit        # needs mpmath; prints the COEFFS table

Each entry is a weighted minimax polynomial found by the Remez exchange algorithm in 80-digit
arithmetic: minimise max |w(t) (f(t) - sum c_k t^k)| over [a, b]. The printed max error is the
one of the exact-coefficient polynomial; rounding the coefficients to float32 adds about one ulp,
which tests/test_vmath.py measures on the compiled code.
"""
from __future__ import annotations

try:
    import mpmath as mp
except ImportError as e:  # only this development script needs mpmath
    raise ImportError("vmath_fit needs mpmath: pip install mpmath") from e

mp.mp.dps = 120
TINY = mp.mpf("1e-40")


def _nz(t):
    """The quotients below have removable singularities at 0: evaluate them a hair away."""
    return t if abs(t) > TINY else TINY


def _q_exp(r):      # e^r = 1 + r + r^2 Q(r)
    r = _nz(r)
    return (mp.exp(r) - 1 - r) / r ** 2


def _t_log(z):      # log(1+f) = 2 atanh(s) = 2s + s R, R(z) = z T(z), z = s^2
    s = mp.sqrt(_nz(z))
    return (2 * mp.atanh(s) / s - 2) / s ** 2


def _s_sin(z):      # sin r = r + r^3 S(r^2)
    r = mp.sqrt(_nz(z))
    return (mp.sin(r) - r) / r ** 3


def _c_cos(z):      # cos r = 1 - r^2/2 + r^4 C(r^2)
    z = _nz(z)
    return (mp.cos(mp.sqrt(z)) - 1 + z / 2) / z ** 2


def _e_erf(z):      # erf x = x E(x^2)
    x = mp.sqrt(_nz(z))
    return mp.erf(x) / x


def _p_erfc(lo, hi):
    """erfc x = exp(-x^2) P(u) on [lo, hi], u = (x - mid) / half in [-1, 1]: P(u) = erfcx(x);
    weighted by exp(-x^2) because erf = 1 - erfc needs erfc to an absolute, not relative, error."""
    mid, half = mp.mpf(lo + hi) / 2, mp.mpf(hi - lo) / 2
    return (lambda u: mp.erfc(mid + half * u) * mp.exp((mid + half * u) ** 2), -1, 1,
            lambda u: mp.exp(-(mid + half * u) ** 2))


LN2H = mp.log(2) / 2 * mp.mpf("1.0001")   # |r| <= ln2/2 after reduction (a hair of margin)
PI4 = mp.pi / 4 * mp.mpf("1.0001")        # |r| <= pi/4
S_MAX = mp.mpf("0.17158")                 # s = f/(2+f) for f in [sqrt(1/2)-1, sqrt(2)-1]
ONE = lambda t: 1                         # noqa: E731 (plain absolute error)

# (name, dtype) -> (function, a, b, weight, degree). A degree is the smallest whose error, once
# scaled as in vmath.py (e.g. exp's r^2 Q(r) error is at most 0.12 times Q's), stays well below
# half an ulp of the dtype.
FITS = {
    ("exp", "f32"): (_q_exp, -LN2H, LN2H, ONE, 4),
    ("exp", "f64"): (_q_exp, -LN2H, LN2H, ONE, 10),
    ("log", "f32"): (_t_log, 0, S_MAX ** 2, ONE, 2),
    ("log", "f64"): (_t_log, 0, S_MAX ** 2, ONE, 6),
    ("sin", "f32"): (_s_sin, 0, PI4 ** 2, ONE, 2),
    ("sin", "f64"): (_s_sin, 0, PI4 ** 2, ONE, 5),
    ("cos", "f32"): (_c_cos, 0, PI4 ** 2, ONE, 2),
    ("cos", "f64"): (_c_cos, 0, PI4 ** 2, ONE, 5),
    ("erf_small", "f32"): (_e_erf, 0, 1, lambda z: 1 / _e_erf(z), 6),
    ("erf_small", "f64"): (_e_erf, 0, 1, lambda z: 1 / _e_erf(z), 11),
    ("erfc", "f32"): (*_p_erfc(1, 4), 7),
    ("erfc", "f64"): (*_p_erfc(1, 6), 20),
}


def _ref_value(coeffs, t):
    acc = mp.mpf(0)
    for c in reversed(coeffs):
        acc = acc * t + c
    return acc


def remez(f, a, b, w, degree, iters=40, grid=3000):
    """Weighted minimax polynomial of `degree` for f on [a, b]; returns (coeffs, max error)."""
    a, b = mp.mpf(a), mp.mpf(b)
    n = degree + 1
    ref = [(a + b) / 2 - (b - a) / 2 * mp.cos(mp.pi * i / n) for i in range(n + 1)]
    pts = [a + (b - a) * i / (grid - 1) for i in range(grid)]
    fw = [(f(t), w(t)) for t in pts]
    coeffs, err_max = None, None
    for _ in range(iters):
        rows = [[t ** k for k in range(n)] + [(-1) ** i / w(t)] for i, t in enumerate(ref)]
        sol = mp.lu_solve(mp.matrix(rows), mp.matrix([f(t) for t in ref]))
        coeffs, level = [sol[k] for k in range(n)], abs(sol[n])
        errs = [wt * (ft - _ref_value(coeffs, t)) for t, (ft, wt) in zip(pts, fw)]
        # one extremum per run of equal sign, then keep n+1 alternating ones with the largest
        runs, start = [], 0
        for i in range(1, grid + 1):
            if i == grid or mp.sign(errs[i]) != mp.sign(errs[start]):
                j = max(range(start, i), key=lambda k: abs(errs[k]))
                runs.append(j)
                start = i
        while len(runs) > n + 1:
            drop = min(range(len(runs)), key=lambda k: abs(errs[runs[k]]))
            # dropping an inner extremum merges its neighbours' runs: keep the larger of them
            if 0 < drop < len(runs) - 1:
                del runs[drop]
                k = drop - 1 if abs(errs[runs[drop - 1]]) < abs(errs[runs[drop]]) else drop
                del runs[k]
            else:
                del runs[drop]
        err_max = max(abs(e) for e in errs)
        if len(runs) < n + 1:
            break
        ref = [pts[j] for j in runs]
        if err_max <= level * (1 + mp.mpf("1e-4")):
            break
    return coeffs, err_max


def main():
    print("COEFFS = {")
    for (name, dt), (f, a, b, w, deg) in FITS.items():
        coeffs, err = remez(f, a, b, w, deg)
        print(f"    # max weighted error {mp.nstr(err, 3)}")
        print(f"    ({name!r}, {dt!r}): {tuple(float(c) for c in coeffs)!r},")
    print("}")


if __name__ == "__main__":
    main()
