"""Control flow (lp.scan, lp.fori_loop, lp.while_loop, lp.cond): results against NumPy loops,
interpreted and compiled; pytrees, reverse, captures, nesting; IR round trips and verifier
errors; carry errors naming the line; passes inside bodies; gradients against finite
differences (test_control_grad.py)."""
import numpy as np
import pytest

import lepton as lp
from lepton.compiler.passes.constant_fold import constant_fold
from lepton.compiler.passes.cse import cse
from lepton.compiler.passes.dce import dce
from lepton.compiler.pipeline import run_pipeline
from lepton.frontends.pytree import tree_flatten
from lepton.ir import Graph, TensorType, float32, interpret, parse, verify
from lepton.ir.verifier import VerifyError

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 4)).astype(np.float32) * 0.5


def R(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def both(fn, *args):
    """fn's results interpreted (from its traced graph, after a round trip through the text)
    and compiled; checks they agree and returns them."""
    g = lp.trace(fn, *args)
    verify(g)
    g2 = parse(str(g))
    assert g2 == g and str(g2) == str(g)
    interpreted = interpret(g2, *args)
    compiled = tree_flatten(lp.compile(fn)(*args))[0]
    assert len(compiled) == len(interpreted)
    for a, b in zip(interpreted, compiled):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    return interpreted


def rnn_ref(h, xs, b, reverse=False):
    ys = [None] * len(xs)
    for t in (range(len(xs) - 1, -1, -1) if reverse else range(len(xs))):
        h = np.tanh(h @ W + xs[t] + b)
        ys[t] = h.sum()
    return h, np.array(ys, np.float32)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_rnn_with_captured_weight_matches_numpy(reverse):
    def f(h0, xs, b):
        def step(h, x):
            h = lp.tanh(h @ W + x + b)  # W: a captured array, b: an outer tensor
            return h, h.sum()
        return lp.scan(step, h0, xs, reverse=reverse)
    args = (R(4), R(6, 4), R(4))
    h, ys = both(f, *args)
    rh, rys = rnn_ref(*args, reverse=reverse)
    np.testing.assert_allclose(h, rh, rtol=1e-5)
    np.testing.assert_allclose(ys, rys, rtol=1e-5)


def test_scan_pytrees_and_length_without_xs():
    def f(a, xs):
        def step(c, x):
            s = c["s"] + x["u"] * x["v"][0]
            return {"s": s, "n": c["n"] + 1}, (s, [x["u"] * 2.0])
        c, (ss, [us]) = lp.scan(step, {"s": a, "n": 0}, {"u": xs, "v": xs[:, None]})
        _, twos = lp.scan(lambda c, _: (c + 1.0, c), 0.0, None, length=3)
        return c["s"], c["n"], ss, us, twos
    a, xs = R(), R(5)
    s, n, ss, us, twos = both(f, a, xs)
    np.testing.assert_allclose(ss, a + np.cumsum(xs * xs), rtol=1e-5)
    assert n == 5 and n.dtype == np.int64 and np.allclose(s, ss[-1])
    np.testing.assert_allclose(us, 2 * xs)
    np.testing.assert_array_equal(twos, [0, 1, 2])


def test_nested_scan_and_cond_inside_scan():
    def f(m):
        def row(acc, r):
            inner, _ = lp.scan(lambda c, x: (c + x * acc, None), 0.0 * acc, r)
            flip = lp.cond(inner > 0, lambda v: v * 2.0, lambda v: -v, inner)
            return acc + 0.5, flip
        return lp.scan(row, m[0, 0], m)
    m = R(3, 4)
    acc, flips = both(f, m)
    a, want = m[0, 0], []
    for r in m:
        inner = float(np.sum(r * a))
        want.append(inner * 2 if inner > 0 else -inner)
        a = a + 0.5
    np.testing.assert_allclose(flips, want, rtol=1e-5)
    np.testing.assert_allclose(acc, a)


def test_fori_loop_and_cond():
    def f(x, p):
        y = lp.fori_loop(1, 5, lambda i, c: c * 0.5 + i.astype(lp.float32) * x, x)
        z = lp.cond(p, lambda a, b: a + b, lambda a, b: a - b, y, x)
        return y, z
    x = R(3)
    for p in (np.array(True), np.array(False)):
        y, z = both(f, x, p)
        want = x
        for i in range(1, 5):
            want = want * 0.5 + i * x
        np.testing.assert_allclose(y, want, rtol=1e-5)
        np.testing.assert_allclose(z, want + x if p else want - x, rtol=1e-5)


@pytest.mark.parametrize("x0", [200.0, 50.0, 2.0, 0.5])  # 0, 1, 4 and 6 steps
def test_while_loop_compiled_matches_interpreter(x0):
    def f(x, k):
        return lp.while_loop(lambda c: c[0][0] < 100.0,
                             lambda c: (c[0] * k + x * 0.0, c[1] + 1), (x, 0))
    x, k = np.array([x0, x0], np.float32), np.float32(3.0)
    g = lp.trace(f, x, k)
    assert parse(str(g)) == g
    v, n = both(f, x, k)
    steps = 0
    while x0 < 100.0:
        x0, steps = x0 * 3.0, steps + 1
    np.testing.assert_allclose(v, [x0, x0])
    assert n == steps


def test_llvm_ir_of_a_scan_does_not_grow_with_its_length():
    def f(n):
        def g(h, xs):
            return lp.scan(lambda c, x: (lp.tanh(c @ W + x), lp.sum(c)), h, xs)
        return lp.compile(g).lower(R(2, 4), R(n, 2, 4))
    short, long = f(10), f(1000)
    assert "step" in short.llvm_ir
    assert abs(len(long.llvm_ir) - len(short.llvm_ir)) < 0.02 * len(short.llvm_ir)
    hs = R(2, 4)
    xs = R(1000, 2, 4) * 0.1
    h, ys = long.run([hs, xs])
    for t in range(1000):
        ys_t, hs = np.sum(hs), np.tanh(hs @ W + xs[t])
        assert np.isclose(ys[t], ys_t, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(h, hs, rtol=1e-4, atol=1e-5)


def test_failing_check_only_in_the_branch_taken():
    def f(p, x, i):
        return lp.cond(p, lambda x, i: x[i], lambda x, i: x[0] + 0 * i.astype(lp.float32), x, i)
    x = R(3)
    bad = np.int64(7)  # out of range for x
    assert lp.compile(f)(np.array(False), x, bad) == x[0]
    assert lp.compile(f)(np.array(True), x, np.int64(-1)) == x[-1]
    line = f.__code__.co_firstlineno + 1
    at = rf"op 'getitem' at test_control_flow.py:{line}\b"
    with pytest.raises(IndexError, match=r"\[-3, 3\) in " + at):
        lp.compile(f)(np.array(True), x, bad)


def test_failing_check_inside_a_scan_stops_with_its_message():
    def f(x, idx):
        return lp.scan(lambda c, i: (c + x[i], c), lp.zeros((), lp.float32), idx)
    x = R(4)
    c, ys = lp.compile(f)(x, np.array([0, 3, -1]))
    np.testing.assert_allclose(c, x[0] + x[3] + x[-1], rtol=1e-6)
    line = f.__code__.co_firstlineno + 1
    at = rf"op 'getitem' at test_control_flow.py:{line}\b"
    with pytest.raises(IndexError, match=r"\[-4, 4\) in " + at):
        lp.compile(f)(x, np.array([0, 4, 1]))


def test_carries_passed_through_and_results_read_twice():
    def f(a, b, xs):
        (p, q, r), ys = lp.scan(lambda c, x: ((c[1], c[0], c[2]), (x, c[2], x * c[0])),
                                (a, b, a + 1.0), xs)
        return p, q, r, ys[0], ys[1], ys[2], p * 2.0
    for n in (0, 1, 2, 5):
        both(f, R(3), R(3), R(n, 3))
    both(lambda a, b: lp.cond(a.sum() > 0, lambda u, v: (u, u, v), lambda u, v: (v, u, u),
                              a, b), R(3), R(3))


def test_carry_type_change_names_op_leaf_and_line():
    with pytest.raises(TypeError, match=r"carry\[1\] is f32\[3\] in init.*f32\[2,3\] in op "
                                        r"'scan' at test_control_flow.py:\d+"):
        lp.trace(lambda x: lp.scan(lambda c, _: ((c[0], c[1] + x[:2, None]), None), (x, x),
                                   None, length=2), R(3))
    with pytest.raises(TypeError, match="structure.*fori_loop"):
        lp.trace(lambda x: lp.fori_loop(0, 2, lambda i, c: (c, c), x), R(3))
    with pytest.raises(TypeError, match="different types.*cond"):
        lp.trace(lambda x: lp.cond(x.sum() > 0, lambda a: a, lambda a: a[:2], x), R(3))
    with pytest.raises(ValueError, match="leading length.*scan"):
        lp.trace(lambda x, y: lp.scan(lambda c, z: (c, z), 0.0, (x, y)), R(3), R(4))


def test_verifier_checks_region_signatures_and_insides():
    g = lp.trace(lambda c, xs: lp.scan(lambda c, x: (lp.exp(c) + x, c), c, xs), R(3), R(4, 3))
    body = g.nodes[2].attrs["body"]
    body.inputs[1].type = TensorType(float32, (5,))
    with pytest.raises(VerifyError, match=r"scan.*region 'body' input 1 is f32\[5\]"):
        verify(g)
    body.inputs[1].type = TensorType(float32, (3,))
    body.nodes[2].type = TensorType(float32, (9,))
    with pytest.raises(VerifyError, match="in region 'body'.*stored type"):
        verify(g)


def _scan_graph():
    def f(c, xs):
        def step(c, x):
            k = lp.exp(lp.constant(np.float32(0.0)))   # folds to 1 inside the body
            a, b = lp.sin(x) * k, lp.sin(x) * k       # one value after CSE
            return c + a + b, (a, b * 2.0)
        c, (ys, unused) = lp.scan(step, c, xs)
        return c, ys
    return lp.trace(f, R(3), R(4, 3))


def test_passes_run_inside_bodies():
    g = _scan_graph()

    def body_ops(h):
        return [v.op for v in h.nodes[2].attrs["body"].nodes if v.op != "input"]
    assert body_ops(g).count("exp") == 1 and body_ops(g).count("sin") == 2
    assert "exp" not in body_ops(constant_fold(g))
    assert body_ops(cse(g)).count("sin") == 1
    # the ys nobody reads (the second) leaves the scan and its body (b * 2.0 goes)
    d = dce(g)
    verify(d)
    assert len(d.nodes[2].type.types) == 2 and len(g.nodes[2].type.types) == 3
    assert len(d.nodes[2].attrs["body"].outputs) == 2
    opt, _ = run_pipeline(g, verify_each=True)
    assert body_ops(opt).count("sin") == 1 and "exp" not in body_ops(opt)
    args = (R(3), R(4, 3))
    for a, b in zip(interpret(g, *args), interpret(opt, *args)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_identical_scans_merge_under_cse():
    def f(c, xs):
        a = lp.scan(lambda c, x: (c * x, None), c, xs)[0]
        b = lp.scan(lambda c, x: (c * x, None), c, xs)[0]
        return a + b
    g = lp.trace(f, R(3), R(4, 3))
    assert sum(v.op == "scan" for v in cse(g).nodes) == 1


def test_hand_built_graph_round_trip_with_every_control_op():
    t = TensorType(float32, (2,))
    body, cnd, yes, no = Graph("body"), Graph("cond"), Graph("yes"), Graph("no")
    a, b = body.input(t), body.input(t)
    body.set_outputs([body.add("add", [a, b])])
    a, b = cnd.input(t), cnd.input(t)
    cnd.set_outputs([cnd.add("lt", [cnd.add("sum", [b], axes=(0,), keepdims=False),
                                    cnd.add("sum", [a], axes=(0,), keepdims=False)])])
    yes.set_outputs([yes.add("exp", [yes.input(t)])])
    no.set_outputs([no.input(t)])
    g = Graph("all")
    k, x = g.input(t), g.input(t)
    w = g.add("while_loop", [k, x], cond=cnd, body=body, num_consts=1, loc="m.py:1")
    p = g.add("gt", [g.add("sum", [x], axes=(0,), keepdims=False),
                     g.add("constant", [], value=np.float32(0))])
    c = g.add("cond", [p, g.add("get", [w], index=0)], true_branch=yes, false_branch=no)
    g.set_outputs([g.add("get", [c], index=0)])
    text = str(g)
    assert "    body = graph @body(" in text and "true_branch = graph @yes(" in text
    g2 = parse(text)
    assert g2 == g and str(g2) == text
    verify(g2)
    args = (np.array([3.0, 3.0], np.float32), np.array([0.5, 0.25], np.float32))
    np.testing.assert_allclose(interpret(g2, *args)[0], np.exp([3.5, 3.25]), rtol=1e-6)
