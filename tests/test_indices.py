"""Indices are data: every gather (take, x[idx], Embedding, cross_entropy's labels, ONNX Gather)
checks its indices when the program runs, compiled and interpreted. In-range and negative
indices match NumPy; an index outside [-n, n) raises IndexError naming the op and the user's
line; a failed call returns nothing and the next good call works."""
import re
import sys

import numpy as np
import pytest

import lepton as lp
from lepton.ir import Graph, TensorType, float32, int64, interpret

rng = np.random.default_rng(7)
X = rng.standard_normal((5, 4)).astype(np.float32)


def line() -> int:
    """The caller's line number: a traced op on the same line is located there."""
    return sys._getframe(1).f_lineno


def raises_at(op: str, at: int, bound=None):
    """pytest.raises for the IndexError of op `op` located at this file's line `at`."""
    rng_text = re.escape(f"[-{bound}, {bound})") + ".*" if bound is not None else ""
    return pytest.raises(IndexError, match=rf"{rng_text}op '{op}' at test_indices\.py:{at}\b")


def both(fn, *args):
    """fn compiled and interpreted on args: (compiled outputs, interpreter outputs)."""
    got = lp.compile(fn)(*args)
    (want,) = interpret(lp.trace(fn, *args), *args)
    return got, want


# -- in range: NumPy's results -----------------------------------------------------------------
@pytest.mark.parametrize("dt", [np.int32, np.int64])
def test_take_matches_numpy_with_negative_indices(dt):
    idx = np.array([[0, -1], [4, -5], [2, 2]], dt)
    for axis, x in [(0, X), (1, X.T.copy()), (None, X)]:
        got, want = both(lambda x, i: lp.take(x, i, axis=axis), x, idx)
        np.testing.assert_array_equal(got, np.take(x, idx, axis=axis))
        np.testing.assert_array_equal(want, np.take(x, idx, axis=axis))


def test_integer_array_indexing_matches_numpy():
    idx = np.array([-4, 3, 0, -1])
    for fn in (lambda x, i: x[:, i], lambda x, i: x[i], lambda x, i: x[1:, None, i][::-1]):
        got, want = both(fn, X, idx)
        np.testing.assert_array_equal(got, fn(X, idx))
        np.testing.assert_array_equal(want, fn(X, idx))


def test_embedding_matches_numpy():
    emb = lp.nn.Embedding(7, 3, rng=np.random.default_rng(0))
    ids = np.array([[0, 6, -1], [-7, 3, 3]])
    np.testing.assert_array_equal(lp.compile(emb)(ids), emb.weight[ids])


# -- out of range: IndexError naming the op and the line, compiled and interpreted -------------
CASES = [  # (op named, bound, fn, good index, bad indices)
    ("take", 5, lambda: (lambda x, i: lp.take(x, i, axis=0), line()), [1, -5], [[0, 5], [-6]]),
    ("take", 20, lambda: (lambda x, i: lp.take(x, i), line()), [19, -20], [[20], [-21, 0]]),
    ("getitem", 4, lambda: (lambda x, i: x[:, i] * 2.0, line()), [3, -4], [[4], [1, -5]]),
]


@pytest.mark.parametrize("op,bound,make,good,bads", CASES, ids=["take", "take-flat", "getitem"])
def test_out_of_range_raises_naming_op_and_line(op, bound, make, good, bads):
    fn, at = make()
    f = lp.compile(fn)
    good = np.array(good)
    want = f(X, good).copy()
    for bad in bads:
        bad = np.array(bad)
        with raises_at(op, at, bound):
            f(X, bad)
        with raises_at(op, at):  # the interpreter names the bad index as well
            interpret(lp.trace(fn, X, bad), X, bad)
        np.testing.assert_array_equal(f(X, good), want)  # a good call still works


def test_constant_indices_are_checked_when_traced():
    with pytest.raises(IndexError, match=rf"out of bounds.*'take' at test_indices\.py:{line() + 1}"):
        lp.trace(lambda x: lp.take(x, [0, 5], axis=0), X)
    with pytest.raises(IndexError, match="out of bounds.*'getitem'"):
        lp.trace(lambda x: x[np.array([-6])], X)


def test_embedding_out_of_range():
    emb = lp.nn.Embedding(10, 3)
    f, at = lp.compile(lambda i: emb(i)), line()
    np.testing.assert_array_equal(f(np.array([9, -10])), emb.weight[[9, -10]])
    for bad in ([10], [-11], [3, 1 << 40]):
        with raises_at("Embedding", at, 10):
            f(np.array(bad))
    g = lp.trace(lambda i: emb(i), np.array([1]))
    with pytest.raises(IndexError, match="index 10 out of range.*'Embedding'"):
        interpret(g, np.array([10]))
    m, at = lp.compile(emb, example_args=(np.array([[1]]),)), line()  # traced here
    with raises_at("Embedding", at, 10):
        m(np.array([[12]]))


def test_two_gathers_each_name_their_own_line():
    def fn(x, i, j):
        a, at = lp.take(x, i, axis=0), line()
        b, bt = x[:, j], line()
        fn.lines = at, bt
        return a.sum() + b.sum()
    f = lp.compile(fn)
    ok = np.array([1])
    f(X, ok, ok)
    with raises_at("take", fn.lines[0], 5):
        f(X, np.array([7]), ok)
    with raises_at("getitem", fn.lines[1], 4):
        f(X, ok, np.array([7]))


def test_check_mode_still_works():
    f, at = lp.compile(lambda x, i: lp.take(x, i, axis=1), check=True), line()
    np.testing.assert_array_equal(f(X, np.array([-1, 0])), X[:, [-1, 0]])
    with raises_at("take", at, 4):
        f(X, np.array([4]))


def test_gradients_check_their_indices_too():
    f, at = lp.compile(lp.grad(lambda x, i: lp.sum(lp.take(x, i, axis=0) ** 2))), line()
    np.testing.assert_allclose(f(X, np.array([0, -5])), np.where(np.arange(5)[:, None] == 0,
                                                               4 * X, 0), rtol=1e-6)
    with raises_at("take", at, 5):
        f(X, np.array([5]))


def test_constant_folding_keeps_a_failing_check():
    g = Graph("f")
    x = g.input(TensorType(float32, (5, 4)))
    bad = g.add("constant", [], value=np.array([1, 9], np.int64))
    i = g.add("check_index", [bad], bound=5, wrap=True, what="take", loc="model.py:3")
    g.set_outputs([g.add("take", [x, i], axis=0)])
    from lepton.compile import CompileResult
    res = CompileResult(g, None, None)
    assert "check_index" in str(res.graph)
    with pytest.raises(IndexError, match=r"\[-5, 5\) in op 'take' at model.py:3"):
        res.executable(X)


def test_status_table_survives_the_disk_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_CACHE_DIR", str(tmp_path))
    idx = np.array([0])
    lp.compile(lambda x, i: lp.take(x, i, axis=0), example_args=(X, idx))
    f, at = lp.compile(lambda x, i: lp.take(x, i, axis=0), example_args=(X, idx)), line()
    assert f.stats()["from_disk_cache"]
    with raises_at("take", at, 5):  # this program's line, not the cold compile's
        f(X, np.array([5]))


# -- cross_entropy: labels and ignore_index as PyTorch -----------------------------------------
def np_cross_entropy(z, labels, ignore_index=-100):
    keep = labels != ignore_index
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    picked = logp[np.arange(len(z)), np.where(keep, labels, 0)]
    with np.errstate(invalid="ignore"):
        return -(picked * keep).sum() / keep.sum()


@pytest.mark.parametrize("labels,ignore", [([2, 0, -100, 1], -100), ([2, 0, 1, 1], 1),
                                           ([-100] * 4, -100), ([3, 3, 0, 3], 3)])
def test_cross_entropy_ignore_index_as_pytorch(labels, ignore):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array(labels)
    fn = lambda z, t: lp.cross_entropy(z, t, ignore_index=ignore)  # noqa: E731
    got, want = both(fn, z, labels)
    ref = np_cross_entropy(z.astype(np.float64), labels, ignore)
    np.testing.assert_allclose(got, ref, rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(want, ref, rtol=1e-5, equal_nan=True)
    # the same labels given as a constant
    np.testing.assert_allclose(lp.compile(lambda z: fn(z, labels))(z), ref, rtol=1e-5,
                               equal_nan=True)


def test_cross_entropy_bad_labels_raise():
    z = rng.standard_normal((3, 4)).astype(np.float32)
    f, at = lp.compile(lambda z, t: lp.cross_entropy(z, t)), line()
    g = lp.trace(lambda z, t: lp.cross_entropy(z, t), z, np.array([0, 1, 2]))
    for bad in ([0, 4, 1], [-1, 0, 0], [-100, -101, 0]):  # negatives are not from the end
        with pytest.raises(IndexError, match=rf"\[0, 4\) in op 'cross_entropy' at "
                                             rf"test_indices\.py:{at}\b"):
            f(z, np.array(bad))
        with pytest.raises(IndexError, match="out of range.*'cross_entropy'"):
            interpret(g, z, np.array(bad))
    np.testing.assert_allclose(f(z, np.array([3, -100, 0])),
                               np_cross_entropy(z.astype(np.float64), np.array([3, -100, 0])),
                               rtol=1e-5)
    with pytest.raises(IndexError, match="labels must lie in"):
        lp.trace(lambda z: lp.cross_entropy(z, np.array([0, 4, -100])), z)


# -- ONNX Gather -------------------------------------------------------------------------------
def test_onnx_gather_checks_computed_indices():
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from lepton.compile import from_onnx as load
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="the_gather", axis=1)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 4]),
                      helper.make_tensor_value_info("i", TensorProto.INT64, [3])],
        [helper.make_empty_tensor_value_info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    f = load(model.SerializeToString())
    idx = np.array([-4, 3, -1])
    np.testing.assert_array_equal(f(X, idx)[0], np.take(X, idx, axis=1))
    for bad in ([4, 0, 0], [0, -5, 1]):
        with pytest.raises(IndexError, match=r"\[-4, 4\) in op 'Gather' at onnx Gather "
                                             r"'the_gather'"):
            f(X, np.array(bad))
    np.testing.assert_array_equal(f(X, idx)[0], np.take(X, idx, axis=1))
