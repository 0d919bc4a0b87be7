"""W11: one training step of a BatchNorm CNN on CIFAR-shaped input. x (32, 3, 32, 32):
conv3x3(3->32, pad 1, no bias) + BatchNorm (batch statistics, eps 1e-5) + ReLU + maxpool 2,
conv3x3(32->64, pad 1, no bias) + BatchNorm + ReLU + maxpool 2, linear 4096 -> 10 (weight
(in, out)), cross-entropy, SGD lr 0.1 on every parameter (conv weights, BatchNorm weights and
biases, linear). The step returns (loss, new parameters...) in every framework; BatchNorm's
running statistics are not part of it (they do not change the step's result).

Here: the Lepton model, and one NumPy version of the step with its backward written out, run in
float32 for the NumPy column and in float64 as the oracle.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import lepton as lp

N, CIN, HW, C1, C2, CLASSES = 32, 3, 32, 32, 64, 10
LR = 0.1
EPS = 1e-5
ARGS = ("x", "labels", "conv1_w", "bn1_w", "bn1_b", "conv2_w", "bn2_w", "bn2_b", "fc_w", "fc_b")


def make_inputs():
    r = np.random.default_rng(11)

    def u(bound, *shape):
        return r.uniform(-bound, bound, shape).astype(np.float32)
    feat = C2 * (HW // 4) ** 2
    return (r.standard_normal((N, CIN, HW, HW), dtype=np.float32),
            r.integers(0, CLASSES, N).astype(np.int64),
            u(1 / math.sqrt(CIN * 9), C1, CIN, 3, 3),
            r.uniform(0.8, 1.2, C1).astype(np.float32), u(0.1, C1),
            u(1 / math.sqrt(C1 * 9), C2, C1, 3, 3),
            r.uniform(0.8, 1.2, C2).astype(np.float32), u(0.1, C2),
            u(1 / math.sqrt(feat), feat, CLASSES), u(1 / math.sqrt(feat), CLASSES))


def _loss(params, x, labels):
    c1, g1, b1, c2, g2, b2, fw, fb = params

    def block(h, w, g, b):
        h = lp.batch_norm(lp.conv2d(h, w, padding=1), None, None, g, b, training=True, eps=EPS)
        return lp.max_pool2d(lp.relu(h), 2)
    h = block(block(x, c1, g1, b1), c2, g2, b2)
    return lp.cross_entropy(h.reshape(h.shape[0], -1) @ fw + fb, labels)


def model(x, labels, *params):
    loss, grads = lp.value_and_grad(_loss)(params, x, labels)
    return (loss, *(p - LR * g for p, g in zip(params, grads)))


# ---- NumPy, forward and backward by hand -------------------------------------------------------

def _conv(x, w):
    """3x3, stride 1, pad 1, NCHW; also returns the windows the backward needs."""
    win = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    return np.tensordot(win, w, axes=((1, 4, 5), (1, 2, 3))).transpose(0, 3, 1, 2), win


def _conv_backward(dy, w, win, need_dx: bool):
    dw = np.tensordot(dy, win, axes=((0, 2, 3), (0, 2, 3)))           # (O, C, 3, 3)
    if not need_dx:
        return dw, None
    n, _, hh, ww = dy.shape
    dxp = np.zeros((n, w.shape[1], hh + 2, ww + 2), dy.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, :, i:i + hh, j:j + ww] += np.einsum("nohw,oc->nchw", dy, w[:, :, i, j])
    return dw, dxp[:, :, 1:-1, 1:-1]


def _bn(y, g, b):
    mu = y.mean(axis=(0, 2, 3), keepdims=True)
    inv = 1 / np.sqrt(y.var(axis=(0, 2, 3), keepdims=True) + y.dtype.type(EPS))
    xhat = (y - mu) * inv
    return xhat * g[:, None, None] + b[:, None, None], (xhat, inv)


def _bn_backward(dout, g, saved):
    xhat, inv = saved
    m = dout.size // dout.shape[1]
    dg, db = (dout * xhat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))
    dxhat = dout * g[:, None, None]
    dy = (m * dxhat - dxhat.sum(axis=(0, 2, 3), keepdims=True)
          - xhat * (dxhat * xhat).sum(axis=(0, 2, 3), keepdims=True)) * (inv / m)
    return dy, dg, db


def _windows(a):
    n, c, hh, ww = a.shape
    return a.reshape(n, c, hh // 2, 2, ww // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, hh // 2, ww // 2, 4)


def _pool_backward(dp, idx, shape):
    n, c, hh, ww = shape
    da = np.zeros((n, c, hh // 2, ww // 2, 4), dp.dtype)
    np.put_along_axis(da, idx[..., None], dp[..., None], axis=-1)
    return da.reshape(n, c, hh // 2, ww // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(shape)


def step_numpy(x, labels, c1, g1, b1, c2, g2, b2, fw, fb):
    """The step with its backward by hand, in the dtype of the arguments."""
    dt = x.dtype.type
    saved, h = [], x
    for w, g, b in ((c1, g1, b1), (c2, g2, b2)):
        y, win = _conv(h, w)
        z, bn = _bn(y, g, b)
        a = np.maximum(z, 0)
        wins = _windows(a)
        idx = wins.argmax(axis=-1)
        saved.append((w, g, win, bn, z, idx, a.shape))
        h = np.take_along_axis(wins, idx[..., None], axis=-1)[..., 0]
    n = x.shape[0]
    flat = h.reshape(n, -1)
    logits = flat @ fw + fb
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = np.log(s[:, 0]).mean() - logits[rows, labels].mean()
    dl = e / s
    dl[rows, labels] -= 1
    dl *= dt(1.0 / n)
    grads = [flat.T @ dl, dl.sum(axis=0)]
    dh = (dl @ fw.T).reshape(h.shape)
    for k, (w, g, win, bn, z, idx, shape) in reversed(list(enumerate(saved))):
        da = _pool_backward(dh, idx, shape) * (z > 0)
        dy, dg, db = _bn_backward(da, g, bn)
        dw, dh = _conv_backward(dy, w, win, need_dx=k > 0)
        grads[:0] = [dw, dg, db]
    params = (c1, g1, b1, c2, g2, b2, fw, fb)
    return (np.asarray(loss, x.dtype), *(p - dt(LR) * gr for p, gr in zip(params, grads)))


def reference(x, labels, *params):
    return step_numpy(np.asarray(x, np.float64), labels,
                      *(np.asarray(p, np.float64) for p in params))


# ---- the peers ---------------------------------------------------------------------------------

def torch_step(torch):
    F = torch.nn.functional

    def step(x, labels, *params):
        with torch.enable_grad():
            ps = [p.detach().requires_grad_() for p in params]
            c1, g1, b1, c2, g2, b2, fw, fb = ps

            def block(h, w, g, b):
                h = F.batch_norm(F.conv2d(h, w, padding=1), None, None, g, b, training=True,
                                 eps=EPS)
                return F.max_pool2d(torch.relu(h), 2)
            h = block(block(x, c1, g1, b1), c2, g2, b2)
            loss = F.cross_entropy(torch.addmm(fb, h.flatten(1), fw), labels)
            grads = torch.autograd.grad(loss, ps)
        return (loss.detach(), *(p.detach() - LR * gr for p, gr in zip(ps, grads)))
    return step


def jax_step(jax):
    jnp, lax = jax.numpy, jax.lax

    def loss_fn(params, x, labels):
        c1, g1, b1, c2, g2, b2, fw, fb = params

        def block(h, w, g, b):
            y = lax.conv_general_dilated(h, w, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
            mu = y.mean(axis=(0, 2, 3), keepdims=True)
            var = jnp.square(y - mu).mean(axis=(0, 2, 3), keepdims=True)
            y = (y - mu) * lax.rsqrt(var + EPS) * g[:, None, None] + b[:, None, None]
            return lax.reduce_window(jax.nn.relu(y), -jnp.inf, lax.max, (1, 1, 2, 2),
                                     (1, 1, 2, 2), "VALID")
        h = block(block(x, c1, g1, b1), c2, g2, b2)
        logp = jax.nn.log_softmax(h.reshape(h.shape[0], -1) @ fw + fb, axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()

    def step(x, labels, *params):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, labels)
        return (loss, *(p - LR * g for p, g in zip(params, grads)))
    return step
