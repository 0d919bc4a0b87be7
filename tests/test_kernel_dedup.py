"""Kernels that are the same up to their buffers compile to one function, called once per group
with that group's own pointers (lower.py, kernel_key.py)."""
import numpy as np

import lepton as lp
from lepton.compiler.codegen.kernel_key import correspondence, group_key
from lepton.compiler.fusion import partition
from lepton.compiler.pipeline import run_pipeline


def _block(x, p):
    h = lp.layer_norm(x, p["g"], p["b"])
    return x + lp.gelu(h @ p["w1"] + p["b1"]) @ p["w2"]


def _stack(x, ps):
    for p in ps:
        x = _block(x, p)
    return lp.sum(x * x)


def _params(n, d=16, seed=0):
    r = np.random.default_rng(seed)
    return [dict(g=r.random(d, dtype=np.float32) + .5, b=r.random(d, dtype=np.float32),
                 w1=r.standard_normal((d, 4 * d), dtype=np.float32) * .1,
                 b1=r.random(4 * d, dtype=np.float32),
                 w2=r.standard_normal((4 * d, d), dtype=np.float32) * .1) for _ in range(n)]


def _x(d=16):
    return np.random.default_rng(1).random((8, d), dtype=np.float32)


def test_deep_stack_emits_the_kernels_of_two_blocks():
    x = _x()
    stats = {}
    for n in (2, 9):
        f = lp.compile(_stack, check=True)       # compared with the interpreter at the call
        f(x, _params(n))
        stats[n] = f.stats()
    assert stats[9]["kernels"] > stats[2]["kernels"]
    # the first block's layer norm and the last reduction are the only kernels not repeated
    assert stats[9]["kernel_functions"] == stats[2]["kernel_functions"] < stats[2]["kernels"]
    assert len(set(stats[9]["kernel_ops"])) == stats[9]["kernel_functions"]


def test_the_grad_of_a_stack_is_deduplicated_and_right():
    x, ps = _x(), _params(6)
    g = lp.compile(lp.grad(_stack, argnums=1), check=True)
    got = g(x, ps)
    s = g.stats()
    assert s["kernel_functions"] < s["kernels"] / 3
    assert np.all(np.isfinite(got[0]["w1"]))


def test_operands_keep_their_positions_when_swapped():
    """Both groups compute `sub $0, $1`; the second is called with its operands swapped."""
    def f(x, y, w):
        return (x - y) @ w, (y - x) @ w

    x, y = _x(), _x() * 3
    w = np.eye(16, dtype=np.float32)
    cf = lp.compile(f, check=True)
    a, b = cf(x, y, w)
    np.testing.assert_allclose(a, x - y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, y - x, rtol=1e-5, atol=1e-6)


def test_immediates_are_part_of_the_key():
    """Blocks that differ only in a scalar constant are different functions."""
    def f(x, w, scales):
        for s in scales:
            x = lp.relu(x @ w) * s
        return x

    x, w = _x(), np.eye(16, dtype=np.float32)
    same, other = lp.compile(f, static_argnums=2), lp.compile(f, static_argnums=2)
    ys = same(x, w, (2.0, 2.0, 2.0))
    yo = other(x, w, (2.0, 3.0, 5.0))
    np.testing.assert_allclose(ys, np.maximum(x, 0) * 8, rtol=1e-5)
    np.testing.assert_allclose(yo, np.maximum(x, 0) * 30, rtol=1e-5)
    assert same.stats()["kernel_functions"] < other.stats()["kernel_functions"]


def test_key_names_wiring_and_correspondence_maps_groups():
    def f(x, y):
        a = lp.exp(x) + y
        return lp.exp(y) + x, a

    x = _x()
    g, _ = run_pipeline(lp.trace(f, x, x))
    groups = [grp for grp in partition(g) if grp.kind == "rows"]
    keys = [group_key(grp) for grp in groups]
    assert len(groups) == 2 and keys[0] == keys[1]
    assert "$0:f32[8,16]" in keys[0] and "$1:f32[8,16]" in keys[0]
    corr = correspondence(groups[0], groups[1])
    x_in, y_in = g.inputs
    assert corr[x_in] is y_in and corr[y_in] is x_in
    assert group_key(groups[0], noalias=False) != keys[0]
    assert group_key(groups[0], threads=4) != keys[0]
