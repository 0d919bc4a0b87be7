"""W9 of BENCHMARKS.md: one LSTM training step. LSTM(input 128, hidden 256), 64 steps, batch 32,
x (T, B, I), PyTorch's gate order (i, f, g, o) and layouts (w_ih (4H, I), w_hh (4H, H)), one
bias of 4H (b_ih + b_hh folded), the input projection as one GEMM before the loop, a linear head
to 10 classes on the last hidden state, cross-entropy, SGD lr 0.1 on every parameter. The step
returns (loss, w_ih', w_hh', b', w_out', b_out'), new arrays, in every framework.

Here: the Lepton model (the time loop is `lp.scan`), and one NumPy version of the step with its
backward written out (BPTT), run in float32 for the NumPy column and in float64 as the oracle.
"""
from __future__ import annotations

import numpy as np

import lepton as lp

T, B, I, H, C = 64, 32, 128, 256, 10
LR = 0.1
ARGS = ("x", "labels", "w_ih", "w_hh", "b", "w_out", "b_out")


def make_inputs():
    r = np.random.default_rng(9)
    s = np.float32(1 / np.sqrt(H))        # PyTorch's LSTM and Linear init range for these sizes

    def u(*shape):
        return r.uniform(-s, s, shape).astype(np.float32)
    x = r.standard_normal((T, B, I), dtype=np.float32)
    labels = r.integers(0, C, B).astype(np.int64)
    return x, labels, u(4 * H, I), u(4 * H, H), u(4 * H), u(C, H), u(C)


def _loss(params, x, labels):
    w_ih, w_hh, b, w_out, b_out = params
    t, n, i = x.shape
    hid = w_hh.shape[1]
    xp = (x.reshape(t * n, i) @ w_ih.T + b).reshape(t, n, 4 * hid)

    def cell(carry, z):
        h, c = carry
        z = z + h @ w_hh.T
        ig, fg = lp.sigmoid(z[:, :hid]), lp.sigmoid(z[:, hid:2 * hid])
        gg, og = lp.tanh(z[:, 2 * hid:3 * hid]), lp.sigmoid(z[:, 3 * hid:])
        c = fg * c + ig * gg
        return (og * lp.tanh(c), c), None
    zeros = lp.zeros((n, hid), dtype=x.dtype)
    (h, _), _ = lp.scan(cell, (zeros, zeros), xp)
    return lp.cross_entropy(h @ w_out.T + b_out, labels)


def model(x, labels, w_ih, w_hh, b, w_out, b_out):
    params = (w_ih, w_hh, b, w_out, b_out)
    loss, grads = lp.value_and_grad(_loss)(params, x, labels)
    return (loss, *(p - LR * g for p, g in zip(params, grads)))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def step_numpy(x, labels, w_ih, w_hh, b, w_out, b_out):
    """The step with its backward by hand, in the dtype of the arguments."""
    dt = x.dtype.type
    t, n, i = x.shape
    hid = w_hh.shape[1]
    xp = (x.reshape(t * n, i) @ w_ih.T + b).reshape(t, n, 4 * hid)
    h = np.zeros((n, hid), x.dtype)
    c = np.zeros((n, hid), x.dtype)
    hs, cs, acts = np.empty((t, n, hid), x.dtype), np.empty((t, n, hid), x.dtype), []
    for s in range(t):
        hs[s], cs[s] = h, c                 # the state each step starts from
        z = h @ w_hh.T
        z += xp[s]
        ig, fg, og = (_sigmoid(z[:, k * hid:(k + 1) * hid]) for k in (0, 1, 3))
        gg = np.tanh(z[:, 2 * hid:3 * hid])
        c = fg * c + ig * gg
        tc = np.tanh(c)
        h = og * tc
        acts.append((ig, fg, gg, og, tc))
    logits = h @ w_out.T + b_out
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    ssum = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = np.log(ssum[:, 0]).mean() - logits[rows, labels].mean()
    dlogits = e / ssum
    dlogits[rows, labels] -= 1
    dlogits *= dt(1.0 / n)
    dw_out, db_out = dlogits.T @ h, dlogits.sum(axis=0)
    dh = dlogits @ w_out
    dc = np.zeros_like(dh)
    dz = np.empty((t, n, 4 * hid), x.dtype)
    for s in reversed(range(t)):
        ig, fg, gg, og, tc = acts[s]
        dc += dh * og * (1 - tc * tc)
        dz[s, :, 0:hid] = dc * gg * ig * (1 - ig)
        dz[s, :, hid:2 * hid] = dc * cs[s] * fg * (1 - fg)
        dz[s, :, 2 * hid:3 * hid] = dc * ig * (1 - gg * gg)
        dz[s, :, 3 * hid:] = dh * tc * og * (1 - og)
        dc *= fg
        dh = dz[s] @ w_hh
    dz2 = dz.reshape(t * n, 4 * hid)
    grads = (dz2.T @ x.reshape(t * n, i), dz2.T @ hs.reshape(t * n, hid), dz2.sum(axis=0),
             dw_out, db_out)
    params = (w_ih, w_hh, b, w_out, b_out)
    return (np.asarray(loss, x.dtype), *(p - dt(LR) * g for p, g in zip(params, grads)))


def reference(x, labels, *params):
    return step_numpy(np.asarray(x, np.float64), labels,
                      *(np.asarray(p, np.float64) for p in params))


def torch_step(torch):
    """The step for PyTorch (eager or torch.compile): a Python loop over time, autograd."""
    F = torch.nn.functional

    def step(x, labels, w_ih, w_hh, b, w_out, b_out):
        with torch.enable_grad():
            params = [p.detach().requires_grad_() for p in (w_ih, w_hh, b, w_out, b_out)]
            w_ih, w_hh, b, w_out, b_out = params
            t, n, i = x.shape
            xp = torch.addmm(b, x.reshape(t * n, i), w_ih.t()).reshape(t, n, -1)
            h = c = x.new_zeros(n, w_hh.shape[1])
            for s in range(t):
                ig, fg, gg, og = torch.addmm(xp[s], h, w_hh.t()).chunk(4, dim=1)
                c = torch.sigmoid(fg) * c + torch.sigmoid(ig) * torch.tanh(gg)
                h = torch.sigmoid(og) * torch.tanh(c)
            loss = F.cross_entropy(torch.addmm(b_out, h, w_out.t()), labels)
            grads = torch.autograd.grad(loss, params)
        return (loss.detach(), *(p.detach() - LR * g for p, g in zip(params, grads)))
    return step


def jax_step(jax):
    """The step for jax.jit: the time loop is lax.scan."""
    jnp = jax.numpy

    def loss_fn(params, x, labels):
        w_ih, w_hh, b, w_out, b_out = params
        t, n, i = x.shape
        hid = w_hh.shape[1]
        xp = (x.reshape(t * n, i) @ w_ih.T + b).reshape(t, n, 4 * hid)

        def cell(carry, z):
            h, c = carry
            ig, fg, gg, og = jnp.split(z + h @ w_hh.T, 4, axis=1)
            c = jax.nn.sigmoid(fg) * c + jax.nn.sigmoid(ig) * jnp.tanh(gg)
            return (jax.nn.sigmoid(og) * jnp.tanh(c), c), None
        zeros = jnp.zeros((n, hid), x.dtype)
        (h, _), _ = jax.lax.scan(cell, (zeros, zeros), xp)
        logp = jax.nn.log_softmax(h @ w_out.T + b_out, axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()

    def step(x, labels, w_ih, w_hh, b, w_out, b_out):
        params = (w_ih, w_hh, b, w_out, b_out)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, labels)
        return (loss, *(p - LR * g for p, g in zip(params, grads)))
    return step
