"""Shape ops and indexing on traced tensors against NumPy: results, the IR they produce, and
errors."""
import numpy as np
import pytest

import lepton.frontends as lp
from frontend_check import check, ops_of, rand, run
from lepton.ir import OpError

X = rand(2, 3, 4, 5)


def same(fn, *args, ref=None):
    """fn traced must equal fn (or ref) run by NumPy on the same arrays, dtype included."""
    return check(fn, *args, ref=ref or fn, dtype=(ref or fn)(*args).dtype, rtol=0, atol=0)


@pytest.mark.parametrize("key", [
    0, -1, (1, 2), (slice(None), 0), (Ellipsis, 1), (0, Ellipsis, -1), (None,), (None, 1, None),
    (slice(1, None), slice(None, None, -1)), (slice(None, None, -2), Ellipsis, slice(3, 0, -1)),
    (slice(-100, None, -1),), (slice(5, 1),), (slice(None, None, 3), None, 2, slice(1, -1, 2)),
    (Ellipsis, None), (), (Ellipsis,), (1, 2, 3, 4), (slice(-3, 100),),
    # one integer array/list, alone and with ints, slices and None (NumPy's placement rules)
    np.array([1, 0, 1]), ([1, -1],), (slice(None), np.array([[0, 2], [1, 1]])),
    (0, slice(None), np.array([1, 0])), (slice(None), 0, np.array([1, 0])),
    (0, None, np.array([1, 0])), (np.array([1, 0]), None, 0), (None, 0, np.array([1, 0])),
    (Ellipsis, np.array([1, 0]), 0), (0, np.array([2, 1]), None),
    (np.array([1, 0]), slice(None), 0),
    (1, np.array(2)), (slice(None), np.array([True, False, True])),
])
def test_getitem_matches_numpy(key):
    same(lambda x: x[key], X)


def test_getitem_with_a_traced_index_tensor():
    idx = np.array([[3, 0], [-1, 2]], np.int32)
    same(lambda x, i: x[:, 1, i], X, idx, ref=lambda x, i: x[:, 1, i])
    same(lambda x, i: x[0, :, i], X, idx, ref=lambda x, i: x[0, :, i])
    same(lambda x, i: x[i], rand(5), np.int64(3), ref=lambda x, i: x[i])


def test_getitem_ir_is_canonical():
    _, g = run(lambda x: x[:, ::-1], rand(3, 4))
    v = g.nodes[1]
    assert v.op == "slice" and v.attrs == {"starts": (0, 3), "stops": (3, -1), "steps": (1, -1)}
    _, g = run(lambda x: x[...], rand(3, 4))
    assert ops_of(g) == []
    _, g = run(lambda x: x[1], rand(3, 4))
    assert ops_of(g) == ["slice", "reshape"]


def test_getitem_errors():
    x = rand(3, 4)
    with pytest.raises(IndexError, match=r"index 3 is out of bounds.*test_frontend_shapes.py:\d+"):
        lp.trace(lambda x: x[3], x)
    with pytest.raises(IndexError, match="too many indices"):
        lp.trace(lambda x: x[0, 0, 0], x)
    with pytest.raises(IndexError, match="single ellipsis"):
        lp.trace(lambda x: x[..., 0, ...], x)
    with pytest.raises(IndexError, match="only one integer"):
        lp.trace(lambda x: x[[0], [1]], x)
    with pytest.raises(IndexError, match="out of bounds"):
        lp.trace(lambda x: x[:, np.array([4])], x)
    with pytest.raises(ValueError, match="step cannot be zero"):
        lp.trace(lambda x: x[::0], x)
    with pytest.raises(TypeError, match="boolean masks"):
        lp.trace(lambda x: x[x > 0], x)
    with pytest.raises(TypeError, match="Python int"):
        lp.trace(lambda x, i: x[i:], x, np.int64(1))
    with pytest.raises(TypeError, match="unsupported index"):
        lp.trace(lambda x: x["a"], x)


def test_reshape_and_methods():
    same(lambda x: x.reshape(6, -1), X)
    same(lambda x: x.reshape((-1,)), X)
    same(lambda x: lp.reshape(x, (2, 3, 20)), X, ref=lambda x: np.reshape(x, (2, 3, 20)))
    same(lambda x: x.reshape(()), rand(1, 1))
    same(lambda x: x.flatten(), X)
    same(lambda x: x.ravel(), rand(3, 1))
    _, g = run(lambda x: x.reshape(2, 3, 4, 5), X)
    assert ops_of(g) == []
    with pytest.raises(OpError, match=r"cannot reshape.*'reshape' at test_frontend_shapes"):
        lp.trace(lambda x: x.reshape(7, -1), X)
    with pytest.raises(OpError, match="'reshape'"):
        lp.trace(lambda x: x.reshape(7, 3), X)
    with pytest.raises(OpError, match="at most one -1"):
        lp.trace(lambda x: x.reshape(-1, -1), X)


def test_transpose_forms():
    same(lambda x: x.T, X)
    same(lambda x: x.transpose(), X)
    same(lambda x: x.transpose(1, 0, 3, 2), X)
    same(lambda x: x.transpose((-1, 0, 1, 2)), X)
    same(lambda x: lp.transpose(x, (2, 0, 1, 3)), X, ref=lambda x: np.transpose(x, (2, 0, 1, 3)))
    same(lambda x: x.mT, X)
    same(lambda x: x.swapaxes(0, -1), X)
    same(lambda x: x.T, np.float32(3))
    _, g = run(lambda x: x.transpose(0, 1, 2, 3), X)
    assert ops_of(g) == []
    with pytest.raises(OpError, match="'transpose'"):
        lp.trace(lambda x: x.transpose(0, 0, 1, 2), X)


def test_broadcast_expand_squeeze():
    v = rand(3, 1)
    same(lambda x: lp.broadcast_to(x, (2, 3, 4)), v, ref=lambda x: np.broadcast_to(x, (2, 3, 4)))
    same(lambda x: lp.broadcast_to(x, 5), np.float32(2), ref=lambda x: np.broadcast_to(x, 5))
    with pytest.raises(OpError, match="'broadcast_to'"):
        lp.trace(lambda x: lp.broadcast_to(x, (2, 2)), v)
    for axis in [0, -1, 2, (0, 3), (-1, 1)]:
        same(lambda x: lp.expand_dims(x, axis), v, ref=lambda x: np.expand_dims(x, axis))
    w = rand(1, 3, 1, 2)
    for axis in [None, 0, -2, (0, 2)]:
        same(lambda x: lp.squeeze(x, axis), w, ref=lambda x: np.squeeze(x, axis))
    same(lambda x: x.squeeze(), w)
    with pytest.raises(OpError, match="cannot squeeze axis 1"):
        lp.trace(lambda x: lp.squeeze(x, 1), w)


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_concatenate(axis):
    a, b = rand(2, 3), rand(2, 3, seed=4)
    same(lambda a, b: lp.concatenate([a, b, a], axis), a, b,
         ref=lambda a, b: np.concatenate([a, b, a], axis))


def test_concatenate_promotes_and_checks():
    a, b = rand(2, 3), np.ones((1, 3), np.float64)
    out, _ = check(lambda a: lp.concatenate((a, b)), a, ref=lambda a: np.concatenate((a, b)),
                   dtype=np.float64)
    with pytest.raises(OpError, match="'concatenate'"):
        lp.trace(lambda a: lp.concatenate([a, a.T]), a)
    with pytest.raises(OpError, match="zero-dimensional"):
        lp.trace(lambda a: lp.concatenate([a.sum(), a.sum()]), a)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack(axis):
    a, b = rand(2, 3), rand(2, 3, seed=4)
    same(lambda a, b: lp.stack([a, b], axis), a, b, ref=lambda a, b: np.stack([a, b], axis))


def test_stack_shape_mismatch():
    with pytest.raises(OpError, match="same shape"):
        lp.trace(lambda a: lp.stack([a, a[:1]]), rand(2, 3))


@pytest.mark.parametrize("spec,axis", [(2, 0), (3, 1), (1, -1), ([1, 3], 1), ([0, 2, 2], 1),
                                       ([-1], 0), ([5, 10], 1)])
def test_split(spec, axis):
    x = rand(4, 6)
    out, _ = run(lambda x: lp.split(x, spec, axis), x)
    expected = np.split(x, spec, axis)
    assert isinstance(out, list) and len(out) == len(expected)
    for o, e in zip(out, expected):
        np.testing.assert_array_equal(o, e)


def test_split_unequal_sections():
    with pytest.raises(OpError, match="equal sections"):
        lp.trace(lambda x: lp.split(x, 4, 1), rand(4, 6))


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_take(axis):
    x = rand(3, 4)
    idx = np.array([[0, 2], [-1, 1]])
    same(lambda x: lp.take(x, idx, axis), x, ref=lambda x: np.take(x, idx, axis))
    same(lambda x, i: lp.take(x, i, axis), x, idx.astype(np.int32),
         ref=lambda x, i: np.take(x, i, axis))
    same(lambda x: x.take(1, axis), x, ref=lambda x: x.take(1, axis))


def test_take_errors():
    with pytest.raises(IndexError, match="out of bounds"):
        lp.trace(lambda x: lp.take(x, [5], 0), rand(3, 4))
    with pytest.raises(TypeError, match="integers"):
        lp.trace(lambda x: lp.take(x, x, 0), rand(3, 4))
