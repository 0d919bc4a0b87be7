"""Neural ops (PyTorch conventions) traced and compared with direct NumPy float64 references."""
import math

import numpy as np
import pytest

import lepton
import lepton.frontends as lp
from frontend_check import check, ops_of, rand, run
from lepton.ir import OpError


def np_log_softmax(x, axis=-1):
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("shape,axis", [((7, 13), -1), ((7, 13), 0), ((2, 1, 5), 1), ((4,), 0),
                                        ((3, 4, 5), -2)])
def test_softmax_and_log_softmax(shape, axis):
    x = rand(*shape, low=-5, high=5)
    check(lambda x: lp.softmax(x, axis), x, ref=lambda x: np.exp(np_log_softmax(x, axis)))
    check(lambda x: lp.log_softmax(x, axis), x, ref=lambda x: np_log_softmax(x, axis))


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    out, _ = check(lp.softmax, x, ref=lambda x: np.exp(np_log_softmax(x)))
    assert np.isfinite(out).all()
    out, _ = check(lp.log_softmax, x, ref=np_log_softmax)
    assert np.isfinite(out).all()


def test_softmax_of_ints_is_f32():
    check(lp.softmax, np.arange(6).reshape(2, 3), ref=lambda x: np.exp(np_log_softmax(x)),
          dtype=np.float32)


def test_gelu_forms():
    x = rand(5, 9, low=-5, high=5)
    erf = np.vectorize(math.erf)
    check(lp.gelu, x, ref=lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))))
    check(lambda x: lp.gelu(x, approximate=True), x,
          ref=lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))))


def np_layer_norm(x, w=None, b=None, eps=1e-5):
    y = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


@pytest.mark.parametrize("shape", [(7, 13), (2, 3, 8), (1, 1)])
def test_layer_norm(shape):
    x = rand(*shape) * 3 + 1
    w, b = rand(shape[-1], seed=1), rand(shape[-1], seed=2)
    check(lp.layer_norm, x, ref=np_layer_norm, rtol=1e-4, atol=1e-5)
    check(lp.layer_norm, x, w, b, ref=np_layer_norm, rtol=1e-4, atol=1e-5)
    check(lambda x, w: lp.layer_norm(x, w, eps=0.1), x, w,
          ref=lambda x, w: np_layer_norm(x, w, eps=0.1), rtol=1e-4, atol=1e-5)


def np_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pair = lambda v: (v, v) if isinstance(v, int) else v
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                r, c = i * dh, j * dw
                patch = xs[:, :, r:r + sh * (ho - 1) + 1:sh, c:c + sw * (wo - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch,
                                                         w[g * og:(g + 1) * og, :, i, j])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


CONV = [dict(), dict(stride=2), dict(padding=1), dict(padding=(2, 0), stride=(1, 2)),
        dict(dilation=2, padding=2), dict(groups=2), dict(groups=4, stride=(2, 1), padding=1)]


@pytest.mark.parametrize("kw", CONV)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv2d(kw, with_bias):
    groups = kw.get("groups", 1)
    x, w = rand(2, 4, 7, 6), rand(8, 4 // groups, 3, 3, seed=1)
    if with_bias:
        b = rand(8, seed=2)
        _, g = check(lambda x, w, b: lp.conv2d(x, w, b, **kw), x, w, b,
                     ref=lambda x, w, b: np_conv2d(x, w, b, **kw), rtol=1e-4, atol=1e-5)
        assert ops_of(g) == ["conv2d", "reshape", "add"]
    else:
        check(lambda x, w: lp.conv2d(x, w, **kw), x, w, ref=lambda x, w: np_conv2d(x, w, **kw),
              rtol=1e-4, atol=1e-5)


def test_conv2d_errors():
    x, w = rand(1, 3, 5, 5), rand(4, 3, 3, 3)
    with pytest.raises(OpError, match=r"'conv2d' at test_frontend_nn.py:\d+"):
        lp.trace(lambda x, w: lp.conv2d(x, w), x, rand(4, 2, 3, 3))
    with pytest.raises(OpError, match="bias must have shape"):
        lp.trace(lambda x, w: lp.conv2d(x, w, np.zeros(3, np.float32)), x, w)
    with pytest.raises(TypeError, match="pair of ints"):
        lp.trace(lambda x, w: lp.conv2d(x, w, stride=(1, 2, 3)), x, w)


def np_pool(x, k, s, p, kind):
    pair = lambda v: (v, v) if isinstance(v, int) else v
    (kh, kw), (ph, pw) = pair(k), pair(p)
    sh, sw = pair(k if s is None else s)
    n, c, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * sh - ph, j * sw - pw
            win = x[:, :, max(r0, 0):r0 + kh, max(c0, 0):c0 + kw]   # padding excluded
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.mean(axis=(2, 3))
    return out


POOL = [(2, None, 0), (3, 1, 1), ((2, 3), (1, 2), (1, 1)), (3, 2, 0), (1, None, 0)]


@pytest.mark.parametrize("k,s,p", POOL)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools(k, s, p, kind):
    x = rand(2, 3, 7, 6, low=-3, high=-1)   # all negative: padding must not win a max
    f = lp.max_pool2d if kind == "max" else lp.avg_pool2d
    check(lambda x: f(x, k, s, p), x, ref=lambda x: np_pool(x, k, s, p, kind), rtol=1e-5)


def test_pool_errors():
    with pytest.raises(OpError, match="'max_pool2d'"):
        lp.trace(lambda x: lp.max_pool2d(x, 2, padding=2), rand(1, 1, 4, 4))
    with pytest.raises(OpError, match="'avg_pool2d'"):
        lp.trace(lambda x: lp.avg_pool2d(x, 2), rand(4, 4))


def np_cross_entropy(logits, labels):
    return -np_log_softmax(logits)[np.arange(len(labels)), labels].mean()


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
def test_cross_entropy(label_dtype):
    logits = rand(7, 13, low=-4, high=4)
    labels = np.array([0, 12, 3, 3, 5, 11, 1], label_dtype)
    out, g = check(lp.cross_entropy, logits, labels, ref=np_cross_entropy)
    assert out.shape == () and "take" not in ops_of(g)
    # labels given as a constant array rather than an argument
    check(lambda z: lp.cross_entropy(z, labels), logits, ref=lambda z: np_cross_entropy(z, labels))


def test_cross_entropy_is_stable_and_checks_inputs():
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0]], np.float32)
    out, _ = check(lp.cross_entropy, logits, np.array([1, 0]), ref=np_cross_entropy)
    assert np.isfinite(out)
    with pytest.raises(TypeError, match="int32 or int64"):
        lp.trace(lp.cross_entropy, logits, np.array([1.0, 0.0], np.float32))
    with pytest.raises(OpError, match="labels must have shape"):
        lp.trace(lp.cross_entropy, logits, np.array([1, 0, 1]))
    with pytest.raises(OpError, match=r"\(N, C\)"):
        lp.trace(lp.cross_entropy, logits[0], np.array([1]))
    with pytest.raises(IndexError, match="labels must lie"):
        lp.trace(lambda z: lp.cross_entropy(z, np.array([2, 0])), logits)


def test_cross_entropy_traced_in_a_training_style_function():
    def loss(params, x, y):
        h = lp.relu(x @ params["w1"] + params["b1"])
        return lp.cross_entropy(h @ params["w2"], y)
    params = {"w1": rand(5, 8), "b1": rand(8, seed=1), "w2": rand(8, 3, seed=2)}
    x, y = rand(4, 5, seed=3), np.array([0, 2, 1, 2])
    out, _ = run(loss, params, x, y)
    h = np.maximum(x.astype(np.float64) @ params["w1"] + params["b1"], 0)
    np.testing.assert_allclose(out, np_cross_entropy(h @ params["w2"], y), rtol=1e-5)


@pytest.mark.parametrize("shape,axis", [((3, 0), -1), ((0, 4), 0), ((2, 0, 5), 1), ((0,), 0),
                                        ((0, 3), -1)])
def test_softmax_family_over_an_empty_axis(shape, axis):
    """Empty results like NumPy/SciPy: softmax and log_softmax keep the input's (empty) shape,
    logsumexp of an empty axis is -inf (the log of an empty sum); compiled and interpreted."""
    x = np.zeros(shape, np.float32)
    n = shape[axis]
    empty = np.zeros(shape, np.float32)
    if n == 0:
        lse = np.full(np.delete(shape, axis % len(shape)), -np.inf, np.float32)
    else:   # the axis is not empty (another one is): NumPy computes it
        lse = np.log(np.exp(x.astype(np.float64)).sum(axis=axis)).astype(np.float32)
    for fn, want in ((lambda x: lp.softmax(x, axis), empty),
                     (lambda x: lp.log_softmax(x, axis), empty),
                     (lambda x: lp.logsumexp(x, axis), lse),
                     (lambda x: lp.logsumexp(x, axis, keepdims=True), np.expand_dims(lse, axis))):
        for got in (run(fn, x)[0], lepton.compile(fn)(x)):
            assert got.shape == want.shape and got.dtype == np.float32
            np.testing.assert_array_equal(got, want)


def test_logsumexp_over_all_axes_of_an_empty_array_is_minus_inf():
    x = np.zeros((2, 0), np.float32)
    for got in (run(lp.logsumexp, x)[0], lepton.compile(lp.logsumexp)(x)):
        assert got.shape == () and got == -np.inf
