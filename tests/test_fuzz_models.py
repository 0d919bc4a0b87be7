"""Adversarial end-to-end tests: random models built through the public API (fuzz_nn.programs
draws them from the steps of fuzz_ops.py), compiled with lp.compile and compared with the
reference interpreter on the traced graph, with one and two threads; the traced graph against
the same steps written with NumPy (fuzz_numpy.py); gradients and Hessian-vector products of
random scalar losses, compiled vs interpreted (and vs finite differences when all is f64);
random lp.nn models compiled and trained one SGD step (fuzz_modules.py); wrong calls, which must
raise TypeError/ValueError, never crash; inputs in unusual memory layouts.

Hunting: LEPTON_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz_models.py -x
(with --hypothesis-seed=N to vary, LEPTON_FUZZ_STEPS=16 for longer models,
LEPTON_FUZZ_THREADS=1,3,5 for other thread counts); a failure prints the model as Python-like lines.
Regressions found this way are the explicit tests at the end of this file.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lepton as lp
from lepton.runtime.jit import openmp_available

from fuzz_modules import build, model_specs
from fuzz_nn import FUSION_KINDS, programs
from fuzz_numpy import replay
from fuzz_program import tree_map

N = int(os.environ.get("LEPTON_FUZZ_EXAMPLES", "0"))
STEPS = int(os.environ.get("LEPTON_FUZZ_STEPS", "8"))       # steps per model at most
FUZZ = settings(deadline=None, derandomize=N == 0, print_blob=True, report_multiple_bugs=False,
                suppress_health_check=list(HealthCheck))
BIG = 32 * 1024      # elements of work above which a kernel is split across threads
THREADS = os.environ.get("LEPTON_FUZZ_THREADS", "1,2").split(",")   # counts to compare


def _examples(default: int):
    return settings(FUZZ, max_examples=N or default)


# -- comparison --------------------------------------------------------------------------------
TOL = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-8}


def assert_same(got, want, what="", tol=None):
    """got (compiled) equals want (interpreter): exactly for ints and bools; for floats the same
    NaN and infinity positions and the finite values close relative to the output's scale
    (tol: the relative tolerance, by default the output dtype's; a graph that computes in f32
    somewhere needs f32's even for an f64 output)."""
    assert isinstance(got, np.ndarray), f"{what}: got a {type(got).__name__}, not an array"
    assert got.dtype == want.dtype and got.shape == want.shape, \
        f"{what}: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}"
    if want.dtype.kind != "f":
        bad = np.flatnonzero(got != want)
        assert not bad.size, (f"{what}: {bad.size} of {want.size} differ, first at flat "
                              f"{bad[0]}: got {got.flat[bad[0]]}, want {want.flat[bad[0]]}")
        return
    tol = tol or TOL[want.dtype]
    finite = np.isfinite(want)
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN positions differ"
    assert np.array_equal(got[~finite & ~np.isnan(want)], want[~finite & ~np.isnan(want)]), \
        f"{what}: infinities differ"
    assert np.isfinite(got[finite]).all(), f"{what}: got non-finite values where want is finite"
    scale = max(1.0, float(np.abs(want[finite]).max())) if finite.any() else 1.0
    bad = np.abs(got[finite] - want[finite]) > tol * (scale + np.abs(want[finite]))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {want.size} differ (scale "
                             f"{scale:g}); first: got {got[finite][k]!r}, want "
                             f"{want[finite][k]!r}")


def graph_tolerance(g) -> float:
    """f32's tolerance when any value of g is f32 (its rounding reaches f64 outputs), else f64's."""
    return TOL[np.dtype(np.float32 if any(v.type.dtype.name == "f32" for v in g.nodes)
                        else np.float64)]


def _leaves(tree):
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in _leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in _leaves(v)]
    return [tree]


def _as_arrays(args):
    """Call-time arguments as the interpreter takes them (Python scalars as lp.compile does)."""
    kinds = {float: np.float32, int: np.int64, bool: np.bool_}
    return [np.asarray(a, kinds[type(a)]) if type(a) in kinds else a for a in args]


def check_model(prog, threads=None, monkeypatch=None):
    """Compiles prog's model and compares it with the interpreter: with one and two threads
    when some value is big enough to be split, on two argument sets in a row (the second call
    reuses output buffers the first did not keep, the first's outputs are held meanwhile), and
    checks that no argument was written to."""
    calls = [prog.arguments(), prog.arguments(prog.seed + 1)]
    g = lp.trace(prog.model, *calls[0])
    wants = [lp.ir.interpret(g, *_as_arrays(args)) for args in calls]
    big = any(v.type.size >= BIG for v in g.nodes)
    tol = graph_tolerance(g)
    runs = THREADS if big and openmp_available() else [None]
    for t in threads or runs:
        if t is not None:
            monkeypatch.setenv("LEPTON_NUM_THREADS", t)
        f = lp.compile(prog.model)
        outs = []
        for args in calls:
            before = [np.copy(a) for a in args]
            outs.append(f(*args))
            for k, (a, b) in enumerate(zip(args, before)):
                assert np.array_equal(a, b, equal_nan=True), f"argument {k} was overwritten"
        for c, (out, want) in enumerate(zip(outs, wants)):
            got = _leaves(out)
            assert len(got) == len(want)
            for k, (a, b) in enumerate(zip(got, want)):
                assert_same(a, b, f"call {c}, output {k} (threads={t})", tol)
            # The pytree comes back with the model's structure.
            assert tree_map(lambda _: 0, out) == tree_map(lambda _: 0, prog.outputs)
    return g


# -- forward models ----------------------------------------------------------------------------
@_examples(60)
@given(data=st.data())
def test_random_models_match_the_interpreter(data, monkeypatch):
    specials = data.draw(st.sampled_from([False, False, False, True]), label="specials")
    prog = data.draw(programs(max_steps=STEPS, specials=specials), label="program")
    with np.errstate(all="ignore"):
        check_model(prog, monkeypatch=monkeypatch)


@_examples(40)
@given(data=st.data())
def test_random_fused_chains_on_big_tensors(data, monkeypatch):
    """Elementwise chains, reductions and epilogues on tensors big enough for threads."""
    specials = data.draw(st.sampled_from([False, False, False, True]), label="specials")
    prog = data.draw(programs(max_steps=STEPS, kinds=FUSION_KINDS, big=0.6, specials=specials),
                     label="program")
    with np.errstate(all="ignore"):
        check_model(prog, monkeypatch=monkeypatch)


@_examples(300)
@given(data=st.data())
def test_random_models_follow_numpy(data):
    """The frontend's semantics: the traced graph (run by the interpreter) computes what the
    same steps written with NumPy compute: the same shapes, and values within f32 rounding
    (dtypes may differ where Lepton's rules do: i32 + f32 is f32 here, f64 in NumPy)."""
    prog = data.draw(programs(max_steps=STEPS), label="program")
    args = prog.arguments()
    arrays = _as_arrays(args)
    got = lp.ir.interpret(lp.trace(prog.model, *args), *arrays)
    with np.errstate(all="ignore"):
        want = replay(prog, arrays)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, f"output {k}: shape {a.shape}, NumPy gives {b.shape}"
        if a.dtype.kind in "biu" and b.dtype.kind in "biu":
            assert np.array_equal(a, b), f"output {k}: {a} != NumPy's {b}"
        else:
            assert_same(a.astype(np.float64), b.astype(np.float64), f"output {k}",
                        TOL[np.dtype(np.float32)])


# -- gradients ---------------------------------------------------------------------------------
def _loss_fn(prog, args):
    """A scalar loss of the program's outputs: sum_k sum(out_k * c_k), c_k fixed random."""
    g = lp.trace(prog.model, *args)
    rng = np.random.default_rng(prog.seed + 7)
    weights = [rng.standard_normal(o.type.shape).astype(o.type.dtype.np) for o in g.outputs]

    def loss(*xs):
        outs = _leaves(prog.model(*xs))
        return sum(lp.sum(o * w) for o, w in zip(outs, weights))
    return loss, g


def _finite_difference(loss_graph, args, argnums, grads, rng):
    """Checks <grad, v> against (L(x + h v) - L(x - h v)) / 2h for a random direction v."""
    h = 1e-6
    vs = [rng.standard_normal(args[i].shape) for i in argnums]
    plus, minus = list(args), list(args)
    for i, v in zip(argnums, vs):
        plus[i], minus[i] = args[i] + h * v, args[i] - h * v
    lp_, lm = (float(lp.ir.interpret(loss_graph, *a)[0]) for a in (plus, minus))
    fd = (lp_ - lm) / (2 * h)
    an = sum(float(np.sum(g * v)) for g, v in zip(grads, vs))
    if not (np.isfinite(fd) and np.isfinite(an)):
        return  # a NaN loss (var with ddof=1 of one element) has no derivative to check
    assert abs(fd - an) <= 1e-4 * (1 + abs(fd) + abs(an)), f"finite difference {fd} vs {an}"


@_examples(30)
@given(data=st.data())
def test_random_gradients_match_the_interpreter(data):
    prog = data.draw(programs(max_steps=STEPS - 2, grad=True), label="program")
    args = prog.arguments()
    argnums = tuple(k for k, a in enumerate(args) if a.dtype.kind == "f")
    if not argnums:
        return
    loss, g = _loss_fn(prog, args)
    df = lp.grad(loss, argnums=argnums)
    want = lp.ir.interpret(lp.trace(df, *args), *args)
    got = df(*args)
    assert len(got) == len(want)
    tol = graph_tolerance(g)
    for k, (a, b) in enumerate(zip(got, want)):
        assert_same(a, b, f"gradient {k}", tol)
    if all(v.type.dtype.name in ("f64", "i32", "i64", "bool") for v in g.nodes):
        lossg = lp.trace(loss, *args)
        _finite_difference(lossg, args, argnums, want, np.random.default_rng(prog.seed))


@_examples(8)
@given(data=st.data())
def test_random_hessian_vector_products(data):
    """grad of (grad . v): second-order rules (VJPs of the VJP graphs) compiled vs interpreted,
    and vs finite differences of the interpreted gradient when everything is f64."""
    prog = data.draw(programs(max_steps=5, grad=True), label="program")
    args = prog.arguments()
    if not args or args[0].dtype.kind != "f":
        return
    loss, g = _loss_fn(prog, args)
    v = np.random.default_rng(prog.seed).standard_normal(args[0].shape).astype(args[0].dtype)
    hvp = lp.grad(lambda *xs: lp.sum(lp.grad(loss, argnums=0)(*xs) * v), argnums=0)
    want = lp.ir.interpret(lp.trace(hvp, *args), *args)[0]
    assert_same(hvp(*args), want, "hvp", graph_tolerance(g))
    if graph_tolerance(g) == TOL[np.dtype(np.float64)] and np.isfinite(want).all():
        h, d = 1e-6, lp.trace(lp.grad(loss, argnums=0), *args)
        gp, gm = (lp.ir.interpret(d, args[0] + s * h * v, *args[1:])[0] for s in (1, -1))
        np.testing.assert_allclose((gp - gm) / (2 * h), want, rtol=1e-3,
                                   atol=1e-4 * (1 + np.abs(want).max()))


# -- lp.nn models and training steps -----------------------------------------------------------
def _xent(model, x, y):
    return lp.cross_entropy(model(x), y)


@_examples(6)
@given(spec=model_specs())
def test_random_modules_compile_and_train(spec):
    """lp.compile(model) and freeze=True vs the interpreter on model.apply; one SGD step updates
    every parameter by -lr * the interpreted gradient and returns the interpreted loss."""
    model, x, y = build(spec)
    params = {k: v.copy() for k, v in model.parameters().items()}
    want = lp.ir.interpret(lp.trace(model.apply, params, x), *_leaves([params, x]))[0]
    assert_same(lp.compile(model)(x), want, "compile(model)")
    assert_same(lp.compile(model, freeze=True)(x), want, "compile(model, freeze=True)")

    def loss_of(p, x, y):
        return _xent(lambda v: model.apply(p, v), x, y)
    vg = lp.value_and_grad(loss_of)
    loss, *grads = lp.ir.interpret(lp.trace(vg, params, x, y), *_leaves([params, x, y]))
    lr = 0.25
    got_loss = lp.optim.SGD(lr).step(model, _xent, x, y)
    assert got_loss == pytest.approx(float(loss), rel=1e-4, abs=1e-5)
    for (name, p), g in zip(sorted(params.items()), grads):
        assert_same(model.parameters()[name], p - lr * g, f"parameter {name} after a step")


# -- wrong calls and unusual array layouts -----------------------------------------------------
_NOT_ARRAYS = [None, "x", object(), ["a", "b"], [[1.0, 2.0], [3.0]], {"a": 1}, 1 + 2j,
               np.array(["x"]), np.zeros((2, 2), object), np.zeros(3, np.complex64),
               np.zeros(3, np.float16), np.zeros((2, 3), np.uint8), np.zeros(3, np.int8)]


def _mutate(data, args, exe_inputs):
    """A wrong argument list for a function compiled for `args`, and what was changed."""
    how = data.draw(st.sampled_from(["more", "fewer", "dtype", "shape", "junk"]), label="how")
    bad = list(args)
    if how == "more" or not bad:
        return bad + [np.zeros(1, np.float32)], "more"
    k = data.draw(st.integers(0, len(bad) - 1), label="argument")
    a = np.asarray(bad[k])
    if how == "fewer":
        return bad[:k] + bad[k + 1:], how
    if how == "dtype":
        other = [d for d in (np.float32, np.float64, np.int32, np.int64, np.bool_) if d != a.dtype]
        bad[k] = a.astype(data.draw(st.sampled_from(other), label="dtype"))
    elif how == "shape":
        shape = data.draw(st.lists(st.integers(0, 4), max_size=3).filter(
            lambda s: tuple(s) != a.shape), label="shape")
        bad[k] = np.zeros(shape, a.dtype)
    else:
        bad[k] = data.draw(st.sampled_from(_NOT_ARRAYS), label="junk")
    return bad, how


@_examples(30)
@given(data=st.data())
def test_wrong_calls_raise_type_or_value_errors(data):
    prog = data.draw(programs(max_steps=3), label="program")
    args = _as_arrays(prog.arguments())
    f = lp.compile(prog.model)
    exe = f.lower(*args).executable
    bad, how = _mutate(data, args, exe.input_types)
    # The executable of one signature checks every argument before native code runs.
    with pytest.raises((TypeError, ValueError)):
        exe(*bad)
    # The compiled function either compiles the new signature (and computes what the
    # interpreter does) or refuses it with a clear exception. (None, lists and dicts are
    # pytrees, which the model itself would receive.)
    if any(isinstance(a, (type(None), list, dict)) for a in bad):
        return
    try:
        out = f(*bad)
    except (TypeError, ValueError, IndexError):
        return
    g = lp.trace(prog.model, *bad)
    want = lp.ir.interpret(g, *_as_arrays(bad))
    for k, (a, b) in enumerate(zip(_leaves(out), want)):
        assert_same(a, b, f"output {k} after a call with {how}", graph_tolerance(g))


def _layouts(a: np.ndarray, how: str) -> np.ndarray:
    """The same values as `a` in another memory layout."""
    if how == "fortran" and a.ndim >= 2:
        return np.asfortranarray(a)
    if how == "reversed" and a.ndim:
        return a[::-1].copy()[::-1]
    if how == "strided" and a.ndim:
        b = np.zeros((a.shape[0] * 2,) + a.shape[1:], a.dtype)
        b[::2] = a
        return b[::2]
    if how == "unaligned" and a.nbytes:
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        u = raw.view(a.dtype).reshape(a.shape)
        u[...] = a
        return u
    if how == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    return a


@_examples(20)
@given(data=st.data())
def test_inputs_in_any_memory_layout(data):
    prog = data.draw(programs(max_steps=4), label="program")
    args = _as_arrays(prog.arguments())
    g = lp.trace(prog.model, *args)
    want = lp.ir.interpret(g, *args)
    hows = data.draw(st.lists(st.sampled_from(["fortran", "reversed", "strided", "unaligned",
                                               "readonly", "same"]), min_size=len(args),
                              max_size=len(args)), label="layouts")
    f = lp.compile(prog.model)
    f(*args)
    out = f(*[_layouts(a, h) for a, h in zip(args, hows)])
    for k, (a, b) in enumerate(zip(_leaves(out), want)):
        assert_same(a, b, f"output {k}", graph_tolerance(g))
    for a, h in zip(args, hows):  # and the inputs are left as they were
        assert np.array_equal(_layouts(a, h), a, equal_nan=True)


# -- regressions found by the fuzzers ----------------------------------------------------------
def test_dot_with_an_empty_contraction():
    # lp.dot reshaped a to (-1, K), which cannot infer -1 when K == 0 (fixed in frontends/ops.py).
    a, b = np.zeros((1, 0), np.float32), np.ones((1, 0, 1), np.float32)
    np.testing.assert_array_equal(lp.compile(lambda a, b: lp.dot(a, b))(a, b), np.dot(a, b))


def test_max_pool2d_of_integers_is_refused_at_the_users_line():
    # The IR accepted int pools, the kernel raised only when compiling and the reference
    # interpreter crashed (OverflowError: -inf padding in an int array); now the frontend refuses.
    x = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4)
    with pytest.raises(TypeError, match="max_pool2d"):
        lp.compile(lambda x: lp.max_pool2d(x, 3, 1, 1))(x)
    f = lp.compile(lambda x: lp.max_pool2d(x.astype(lp.float32), 3, 1, 1))
    np.testing.assert_array_equal(f(x), lp.ir.interpret(lp.trace(f.fn, x), x)[0])


def test_interpreter_pads_integer_max_pool_with_the_lowest_integer():
    g = lp.ir.Graph("g")
    x = g.input(lp.ir.types.TensorType(lp.int32, (1, 1, 2, 2)))
    g.set_outputs([g.add("max_pool2d", [x], kernel=(3, 3), stride=(1, 1), padding=(1, 1))])
    a = np.array([[[[-5, -7], [-9, -6]]]], np.int32)
    np.testing.assert_array_equal(lp.ir.interpret(g, a)[0], np.full((1, 1, 2, 2), -5))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sin_cos_of_large_arguments(dtype):
    # Found as cos((exp(exp(2)) + 0.5) ** 2) = cos(2.62e6): NaN compiled, -0.9989 interpreted.
    x = np.array([2.62e6, -8e6, 1e8, 3e38], dtype)
    f = lp.compile(lambda x: (lp.sin(x), lp.cos(x)))
    for got, want in zip(f(x), (np.sin(x), np.cos(x))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_matmul_of_bool_matrices():
    # The IR and the interpreter took bool @ bool, the GEMM codegen raised "no kernel element
    # type for dtype bool" when compiling; the frontend now computes it as ints != 0 (NumPy's
    # OR of ANDs).
    rng = np.random.default_rng(0)
    a, b = rng.random((4, 5)) < 0.3, rng.random((2, 5, 3)) < 0.3
    got = lp.compile(lambda a, b: a @ b)(a, b)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, a @ b)


class _Tied(lp.nn.Module):
    """An embedding reused as the output layer: one array under two parameter names."""

    def __init__(self):
        super().__init__()
        self.emb = lp.nn.Embedding(5, 3, rng=np.random.default_rng(0))
        self.out = lp.nn.Linear(3, 5, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, idx):
        return self.out(self.emb(idx))


class _Shared(lp.nn.Module):
    """The same model written with one parameter."""

    def __init__(self, w):
        super().__init__()
        self.w = w.copy()

    def forward(self, idx):
        return lp.take(self.w, idx, axis=0) @ self.w.T


@pytest.mark.parametrize("make_opt", [lambda: lp.optim.SGD(0.5, momentum=0.9),
                                      lambda: lp.optim.Adam(0.1)], ids=["sgd", "adam"])
def test_tied_weights_train_as_one_parameter(make_opt):
    # Each name got its own partial gradient and the last in-place copy won, so a tied
    # embedding lost the output layer's gradient (fixed in optim.py: the names' gradients are
    # summed).
    idx, y = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4])
    tied = _Tied()
    shared = _Shared(tied.emb.weight)
    loss_fn = lambda model, i, y: lp.cross_entropy(model(i), y)  # noqa: E731
    opt_t, opt_s = make_opt(), make_opt()
    for _ in range(3):
        lt, ls = opt_t.step(tied, loss_fn, idx, y), opt_s.step(shared, loss_fn, idx, y)
        assert lt == pytest.approx(ls, rel=1e-5)
    assert tied.out.weight is tied.emb.weight
    np.testing.assert_allclose(tied.emb.weight, shared.w, rtol=1e-5, atol=1e-6)


def test_check_mode_accepts_f32_rounding_seen_through_a_cast():
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    lp.compile(lambda x: lp.exp(x).astype(lp.float64), check=True)(x)


def test_a_python_int_too_big_for_int64_is_a_value_or_type_error():
    f = lp.compile(lambda x: x * 2)
    with pytest.raises((TypeError, ValueError)):
        f(2 ** 70)


def test_an_empty_list_index_selects_nothing():
    # np.asarray([]) is float64, which the frontend refused ("indices must be integers");
    # NumPy reads it as no indices (fixed in frontends/shapes.py).
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    f = lp.compile(lambda x: (x[[]], x[:, []] * 2, lp.take(x, [], axis=1)))
    for got, want in zip(f(x), (x[[]], x[:, []] * 2, np.take(x, [], axis=1))):
        assert got.shape == want.shape and got.dtype == want.dtype
