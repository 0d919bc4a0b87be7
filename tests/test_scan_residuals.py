"""The scan rewrites for gradients (passes/scan_residuals.py, passes/scan_weights.py): a backward
loop reads the products its forward loop computed, per-step weight-gradient sums leave the loop,
loop weights are read transposed; results unchanged (float64 references, the interpreter)."""
import numpy as np
import pytest

import lepton as lp
from lepton.bench import lstm


def _rewrites(f) -> dict:
    out = {}
    for p in f.stats()["passes"]:
        for k, n in p["rewrites"].items():
            out[k] = out.get(k, 0) + n
    return out


def _scans(f):
    from lepton.ir.graph import Graph  # noqa: F401  (the graph's values)
    g = f._result().graph
    return [v for v in g.nodes if v.op == "scan"]


def _matmuls(scan) -> int:
    return sum(v.op == "matmul" for v in scan.attrs["body"].nodes)


def _small_lstm(dtype, t=5, b=3, i=4, h=6, c=3, seed=0):
    r = np.random.default_rng(seed)

    def u(*shape):
        return r.uniform(-0.5, 0.5, shape).astype(dtype)
    return (r.standard_normal((t, b, i)).astype(dtype), r.integers(0, c, b).astype(np.int64),
            u(4 * h, i), u(4 * h, h), u(4 * h), u(c, h), u(c))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_step_matches_bptt_and_each_backward_step_does_one_gemm(dtype):
    args = _small_lstm(dtype)
    f = lp.compile(lstm.model, check=True)     # also checked against the interpreter
    out = f(*args)
    ref = lstm.reference(*args)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for o, r in zip(out, ref):
        np.testing.assert_allclose(np.asarray(o, np.float64), r, rtol=tol, atol=tol)
    rw = _rewrites(f)
    assert rw.get("saved_products") == 1 and rw.get("hoisted_accumulations") == 1
    assert rw.get("transposed_weights") == 1
    fwd, bwd = _scans(f)
    # forward: h @ W_hh.T; backward: dz @ W_hh only (no rematerialised h @ W_hh.T, no dW_hh)
    assert _matmuls(fwd) == 1 and _matmuls(bwd) == 1
    assert bwd.attrs["num_carry"] == 2       # dh, dc: the dW_hh accumulator left the loop


def test_a_hoisted_sum_of_products_with_a_nonzero_start():
    r = np.random.default_rng(1)
    xs = r.standard_normal((7, 3, 4))
    ys = r.standard_normal((7, 3, 5))
    a0 = r.standard_normal((5, 4))

    def f(xs, ys, a0):
        def body(carry, xy):
            acc, k = carry
            x, y = xy
            z = lp.tanh(y) * k
            return (acc + (x.T @ z).T, k + 1.0), z
        (acc, k), zs = lp.scan(body, (a0, 1.0), (xs, ys))
        return acc, zs
    g = lp.compile(f, check=True)
    acc, zs = g(xs, ys, a0)
    want_z = np.tanh(ys) * np.arange(1, 8)[:, None, None]
    np.testing.assert_allclose(zs, want_z, rtol=1e-12)
    np.testing.assert_allclose(acc, a0 + np.einsum("tbi,tbj->ji", xs, want_z), rtol=1e-12)
    assert _rewrites(g).get("hoisted_accumulations") == 1
    (scan,) = _scans(g)
    assert scan.attrs["num_carry"] == 1 and _matmuls(scan) == 0


def test_an_accumulator_read_in_the_body_stays_in_the_loop():
    r = np.random.default_rng(2)
    xs = r.standard_normal((6, 3, 4))

    def f(xs):
        def body(acc, x):
            new = acc + x.T @ x
            return new, lp.sum(acc)          # acc is read again: not a plain sum
        return lp.scan(body, lp.zeros((4, 4), dtype=lp.float64), xs)
    g = lp.compile(f, check=True)
    acc, sums = g(xs)
    outer = np.einsum("tbi,tbj->tij", xs, xs)
    np.testing.assert_allclose(acc, outer.sum(0), rtol=1e-12)
    np.testing.assert_allclose(sums, np.concatenate([[0.0], np.cumsum(outer.sum((1, 2)))[:-1]]),
                               rtol=1e-12, atol=1e-12)
    assert "hoisted_accumulations" not in _rewrites(g)


def test_loop_weights_read_transposed_only_for_enough_steps():
    r = np.random.default_rng(3)
    w = r.standard_normal((8, 5))

    def run(n):
        xs = r.standard_normal((n, 2, 8))

        def f(xs, w):
            return lp.scan(lambda h, x: (lp.tanh(x @ w + h), h), lp.zeros((2, 5), dtype=lp.float64), xs)
        g = lp.compile(f, check=True)
        h, hs = g(xs, w)
        want = np.zeros((2, 5))
        for t in range(n):
            want = np.tanh(xs[t] @ w + want)
        np.testing.assert_allclose(h, want, rtol=1e-12)
        return _rewrites(g).get("transposed_weights", 0)
    assert run(6) == 1
    assert run(2) == 0


def test_gradient_through_two_scans_sharing_weights():
    # Two forward scans over the same weight; each backward scan saves its own products.
    r = np.random.default_rng(4)
    xs = r.standard_normal((5, 2, 3))
    w = r.standard_normal((3, 3)) * 0.5

    def loss(w, xs):
        def cell(h, x):
            h = lp.tanh(x + h @ w)
            return h, h
        h1, hs = lp.scan(cell, lp.zeros((2, 3), dtype=lp.float64), xs)
        h2, _ = lp.scan(cell, h1, hs * 0.5)
        return lp.sum(h2 * h2)
    g = lp.compile(lp.grad(loss), check=True)
    got = g(w, xs)

    def num(w):
        def run(h, seq):
            outs = []
            for x in seq:
                h = np.tanh(x + h @ w)
                outs.append(h)
            return h, np.stack(outs)
        h1, hs = run(np.zeros((2, 3)), xs)
        h2, _ = run(h1, hs * 0.5)
        return np.sum(h2 * h2)
    eps, want = 1e-6, np.zeros_like(w)
    for idx in np.ndindex(*w.shape):
        d = np.zeros_like(w)
        d[idx] = eps
        want[idx] = (num(w + d) - num(w - d)) / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
