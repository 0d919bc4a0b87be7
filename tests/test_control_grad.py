"""Gradients through control flow against central finite differences (float64): scan (with
captured weights, reverse, pytrees), an LSTM cell scanned over 20 steps, fori_loop, cond,
grad of grad of a small scan, compiled gradients; while_loop refuses, naming itself."""
import numpy as np
import pytest

import lepton as lp
from lepton.compiler.autodiff import GradientError
from lepton.ir import interpret

RNG = np.random.default_rng(1)


def R(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


def fd_check(loss, args, h=1e-5, rtol=1e-6, atol=1e-9):
    """The interpreted gradient of scalar `loss` w.r.t. every argument against central finite
    differences along random directions."""
    g = lp.trace(lp.grad(loss, argnums=tuple(range(len(args)))), *args)
    grads = interpret(g, *args)
    f = lp.trace(loss, *args)

    def value(*a):
        return float(interpret(f, *a)[0])
    for i, gi in enumerate(grads):
        assert gi.shape == np.shape(args[i]) and gi.dtype == np.float64
        u = R(*np.shape(args[i]))
        plus, minus = list(args), list(args)
        plus[i], minus[i] = args[i] + h * u, args[i] - h * u
        fd = (value(*plus) - value(*minus)) / (2 * h)
        an = float(np.sum(gi * u))
        assert abs(fd - an) <= rtol * max(abs(fd), abs(an)) + atol, (i, an, fd)
    return grads


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_grad_with_consts_pytrees_and_ys(reverse):
    def loss(h0, xs, w, b):
        def step(c, x):
            h = lp.tanh(c["h"] @ w + x + b)
            return {"h": h, "n": c["n"] + 1}, (lp.sin(h), h * h)
        c, (s, q) = lp.scan(step, {"h": h0, "n": 0}, xs, reverse=reverse)
        return lp.sum(c["h"] * 1.5) + lp.sum(s * xs) + lp.sum(q)
    fd_check(loss, (R(4), R(5, 4), R(4, 4, scale=0.5), R(4)))


def lstm_loss(params, h0, c0, xs):
    wx, wh, b = params["wx"], params["wh"], params["b"]

    def cell(carry, x):
        h, c = carry
        z = x @ wx + h @ wh + b
        i, f, o, g = lp.split(z, 4, axis=-1)
        c = lp.sigmoid(f) * c + lp.sigmoid(i) * lp.tanh(g)
        h = lp.sigmoid(o) * lp.tanh(c)
        return (h, c), h
    (h, c), hs = lp.scan(cell, (h0, c0), xs)
    return lp.sum(hs * hs) + lp.sum(h * c)


def test_lstm_cell_scanned_over_20_steps():
    d, n = 3, 4
    params = {"wx": R(d, 4 * n, scale=0.4), "wh": R(n, 4 * n, scale=0.4), "b": R(4 * n)}
    h0, c0, xs = R(2, n), R(2, n), R(20, 2, d)

    def flat(wx, wh, b, h0, c0, xs):
        return lstm_loss({"wx": wx, "wh": wh, "b": b}, h0, c0, xs)
    fd_check(flat, (params["wx"], params["wh"], params["b"], h0, c0, xs))
    # the compiled gradient (native loops) agrees with the interpreted one
    want = interpret(lp.trace(lp.grad(lstm_loss), params, h0, c0, xs), params["b"],
                     params["wh"], params["wx"], h0, c0, xs)
    got = lp.grad(lstm_loss)(params, h0, c0, xs)
    for k, w in zip(["b", "wh", "wx"], want):
        np.testing.assert_allclose(got[k], w, rtol=1e-9, atol=1e-12)


def test_fori_loop_and_cond_grads():
    def loss(x, y):
        z = lp.fori_loop(0, 4, lambda i, c: lp.sin(c) * y + i.astype(lp.float64) * 0.1, x)
        w = lp.cond(lp.sum(z) > -100.0, lambda a, b: a * b, lambda a, b: a + b, z, y)
        v = lp.cond(lp.sum(z) > 100.0, lambda a: a * 3.0, lambda a: lp.exp(a), x)
        return lp.sum(w) + lp.sum(v)
    fd_check(loss, (R(3), R(3)))


def test_grad_of_grad_of_a_small_scan():
    def f(x):
        c, _ = lp.scan(lambda c, w: (lp.sin(c * w), None), x, lp.constant(np.array(
            [0.7, 1.3, 0.9])))
        return lp.sum(c)

    def df(x):
        return lp.sum(lp.grad(f)(x) * lp.cos(x))
    fd_check(df, (R(2),))


def test_while_loop_grad_names_while_loop():
    def loss(x):
        return lp.sum(lp.while_loop(lambda c: lp.sum(c) < 10.0, lambda c: c * 2.0, x))
    with pytest.raises(GradientError, match="while_loop at test_control_grad.py:\\d+"):
        lp.trace(lp.grad(loss), np.ones(2))


def test_gradient_runs_the_forward_scan_once():
    from lepton.compiler.passes.merge_scans import merge_scans
    from lepton.compiler.pipeline import run_pipeline
    params = {"wx": R(3, 16, scale=0.4), "wh": R(4, 16, scale=0.4), "b": R(16)}
    args = (params, R(2, 4), R(2, 4), R(5, 2, 3))
    g = lp.trace(lp.value_and_grad(lstm_loss), *args)
    assert sum(v.op == "scan" for v in g.nodes) == 3   # primal, residual-stacking, backward
    opt, records = run_pipeline(g, verify_each=True)
    assert sum(v.op == "scan" for v in opt.nodes) == 2
    assert any(r.name == "merge_scans" and r.rewrites == {"merge_scans": 1} for r in records)
    flat = (params["b"], params["wh"], params["wx"], *args[1:])
    for a, b in zip(interpret(g, *flat), interpret(opt, *flat)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert merge_scans(opt) is opt   # nothing left to merge
