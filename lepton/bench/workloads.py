"""The benchmark workloads of BENCHMARKS.md, each written four ways: a Lepton model (`lp.*` ops),
a float32 NumPy implementation (the "NumPy" column, written as a careful NumPy user would), a
float64 NumPy reference (the oracle every implementation is checked against before it is timed),
and fixed-seed inputs. The peers' versions live in `peers.py`, keyed by the same ids.

    >>> w = WORKLOADS["W5"]
    >>> args = w.make_inputs()                  # float32 arrays, same every run
    >>> verify(w, w.numpy_impl(*args), w.reference(*args), args).ok     # check.py
    True

Every model takes its tensors as positional arguments (activations first, then weights, in the
order of `arg_names`) so that every framework receives exactly the same arrays; it returns one
array, or a tuple (W6). Linear weights
are (in, out) so `x @ w + b` reads the same in every framework. Scalars and masks that are part
of the model (W3's a and b, W8's causal mask) are closed over, as a user would write them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import lepton as lp

# W3's scalars: fixed, Python floats, so they must not widen the f32 tensor.
W3_A, W3_B = 0.75, -0.25
LN_EPS = 1e-5
W8_HEADS = 4


@dataclass(frozen=True)
class Workload:
    """One benchmark. `unit` is how the table prints its time ("ms", or "us" for the call row)."""
    id: str
    title: str                        # the workload in words (lepton bench's legend)
    arg_names: tuple[str, ...]
    make_inputs: Callable[[], tuple[np.ndarray, ...]]
    model: Callable                   # Lepton: traced tensors in, traced tensor out
    numpy_impl: Callable              # float32 arrays in, float32 array out
    reference: Callable               # same inputs, computed in float64
    tol: float = 1e-3                 # see `check`
    unit: str = "ms"
    attrs: dict = field(default_factory=dict)   # shared constants the peers need (a, b, eps...)
    # What is compared with the reference, when not the outputs themselves: a function of (the
    # outputs as float64 arrays, the inputs) applied alike to outputs and reference (W6 compares
    # the gradients recovered from its parameter updates).
    compare: Callable | None = None
    # Seconds of compile in some framework (jax's and torch.compile's of W9 take 10-40 s):
    # `lepton bench --quick` leaves it out unless named with --only.
    heavy: bool = False


def _f64(args):
    return [np.asarray(a, dtype=np.float64) for a in args]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _linear_params(rng, n_in: int, n_out: int):
    """PyTorch's default init range (uniform +-1/sqrt(in)), weight stored (in, out)."""
    bound = 1.0 / math.sqrt(n_in)
    w = rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
    b = rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
    return w, b


# ---- the call-overhead row: one call of a trivial compiled function -----------------------------

def _call_overhead() -> Workload:
    return Workload(
        id="call", title="call overhead: x + 1 on f32[1]", arg_names=("x",),
        make_inputs=lambda: (np.array([2.5], dtype=np.float32),),
        model=lambda x: x + 1.0,
        numpy_impl=lambda x: x + np.float32(1.0),
        reference=lambda x: np.asarray(x, np.float64) + 1.0,
        unit="us")


# ---- W1, W2: MLP 784-512-512-10 with ReLU ------------------------------------------------------

def _mlp_model(x, w1, b1, w2, b2, w3, b3):
    h = lp.relu(x @ w1 + b1)
    h = lp.relu(h @ w2 + b2)
    return h @ w3 + b3


def _mlp_numpy(x, w1, b1, w2, b2, w3, b3):
    # In-place bias and ReLU: one temporary per layer instead of three.
    h = x @ w1
    h += b1
    np.maximum(h, 0, out=h)
    h2 = h @ w2
    h2 += b2
    np.maximum(h2, 0, out=h2)
    y = h2 @ w3
    y += b3
    return y


def _mlp_reference(*args):
    x, w1, b1, w2, b2, w3, b3 = _f64(args)
    h = np.maximum(x @ w1 + b1, 0.0)
    h = np.maximum(h @ w2 + b2, 0.0)
    return h @ w3 + b3


def _mlp(wid: str, batch: int, what: str) -> Workload:
    def make_inputs():
        rng = _rng(1 if batch == 1 else 2)
        x = rng.standard_normal((batch, 784), dtype=np.float32)
        return (x, *_linear_params(rng, 784, 512), *_linear_params(rng, 512, 512),
                *_linear_params(rng, 512, 10))
    return Workload(wid, f"MLP 784-512-512-10, ReLU, batch {batch}, {what}",
                    ("x", "w1", "b1", "w2", "b2", "w3", "b3"), make_inputs,
                    _mlp_model, _mlp_numpy, _mlp_reference)


# ---- W3: gelu_tanh(x*a + b)*0.5 + x on 16M floats -----------------------------------------------

_GELU_C = math.sqrt(2.0 / math.pi)


def _w3_model(x):
    return lp.gelu(x * W3_A + W3_B, approximate=True) * 0.5 + x


def _w3_numpy(x):
    # 0.5*gelu(z) = 0.25*z*(1 + tanh(c*(z + 0.044715 z^3))), with two 64 MiB temporaries reused
    # in place; the 0.5 of the workload folds into the 0.25.
    z = x * np.float32(W3_A)
    z += np.float32(W3_B)
    t = z * z
    t *= np.float32(0.044715 * _GELU_C)
    t += np.float32(_GELU_C)
    t *= z
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= z
    t *= np.float32(0.25)
    t += x
    return t


def _w3_reference(x):
    x = np.asarray(x, np.float64)
    z = x * W3_A + W3_B
    gelu = 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z * z * z)))
    return gelu * 0.5 + x


def _w3() -> Workload:
    return Workload("W3", "elementwise: gelu_tanh(x*a + b)*0.5 + x, x of 16M floats, a, b scalars",
                    ("x",),
                    lambda: (_rng(3).standard_normal(1 << 24, dtype=np.float32) * 2,),
                    _w3_model, _w3_numpy, _w3_reference, attrs={"a": W3_A, "b": W3_B})


# ---- W4: layer_norm over the last axis of 4096x1024 --------------------------------------------

def _w4_model(x, w, b):
    return lp.layer_norm(x, w, b, eps=LN_EPS)


def _layer_norm_numpy(x, w, b, eps=LN_EPS):
    mean = x.mean(axis=-1, keepdims=True)
    xc = x - mean
    var = np.einsum("ij,ij->i", xc, xc)[:, None]    # sum of squares without a squared temporary
    var *= np.float32(1.0 / x.shape[-1])
    var += np.float32(eps)
    np.sqrt(var, out=var)
    np.reciprocal(var, out=var)
    xc *= var
    xc *= w
    xc += b
    return xc


def _layer_norm_reference(x, w, b, eps=LN_EPS):
    x, w, b = _f64((x, w, b))
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _w4() -> Workload:
    def make_inputs():
        rng = _rng(4)
        return (rng.standard_normal((4096, 1024), dtype=np.float32) * 3 + 1,
                rng.uniform(0.5, 1.5, 1024).astype(np.float32),
                rng.uniform(-0.5, 0.5, 1024).astype(np.float32))
    return Workload("W4", "layer_norm over the last axis of 4096x1024, with weight and bias",
                    ("x", "weight", "bias"),
                    make_inputs, _w4_model, _layer_norm_numpy, _layer_norm_reference,
                    attrs={"eps": LN_EPS})


# ---- W5: matmul 1024^3 -------------------------------------------------------------------------

def _w5() -> Workload:
    def make_inputs():
        rng = _rng(5)
        return (rng.standard_normal((1024, 1024), dtype=np.float32),
                rng.standard_normal((1024, 1024), dtype=np.float32))
    return Workload("W5", "matmul 1024x1024 @ 1024x1024", ("a", "b"), make_inputs,
                    lambda a, b: a @ b, lambda a, b: a @ b,
                    lambda a, b: np.asarray(a, np.float64) @ np.asarray(b, np.float64))


# ---- W6: one training step: MLP 784-256-10, batch 128, cross-entropy, backward, SGD ------------
# step(x, labels, w1, b1, w2, b2) -> (loss, w1', b1', w2', b2'), the parameters after one SGD
# step (lr 0.1) returned as new arrays, in every framework. The check compares the loss and the
# gradients recovered from the updates, (p - p') / lr: the updates are small next to the
# parameters, and a gradient 1% off changes p' by less than the tolerance of a check of p'.

W6_LR = 0.1


def _w6_loss(params, x, labels):
    w1, b1, w2, b2 = params
    return lp.cross_entropy(lp.relu(x @ w1 + b1) @ w2 + b2, labels)


def _w6_model(x, labels, w1, b1, w2, b2):
    params = (w1, b1, w2, b2)
    loss, grads = lp.value_and_grad(_w6_loss)(params, x, labels)
    return (loss, *(p - W6_LR * g for p, g in zip(params, grads)))


def _w6_numpy(x, labels, w1, b1, w2, b2):
    n = x.shape[0]
    rows = np.arange(n)
    h = x @ w1
    h += b1
    np.maximum(h, 0, out=h)
    z = h @ w2
    z += b2
    # softmax cross-entropy and its gradient from one shifted exponential
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = np.float32(np.log(s[:, 0]).mean() - z[rows, labels].mean())
    e /= s
    e[rows, labels] -= 1
    e *= np.float32(1.0 / n)                # d loss / d logits
    dw2 = h.T @ e
    db2 = e.sum(axis=0)
    dh = e @ w2.T
    dh *= h > 0                             # ReLU's gradient
    dw1 = x.T @ dh
    db1 = dh.sum(axis=0)
    lr = np.float32(W6_LR)
    return (np.asarray(loss), w1 - lr * dw1, b1 - lr * db1, w2 - lr * dw2, b2 - lr * db2)


def _w6_reference(x, labels, w1, b1, w2, b2):
    x, w1, b1, w2, b2 = _f64((x, w1, b1, w2, b2))
    n = x.shape[0]
    hp = x @ w1 + b1
    h = np.maximum(hp, 0)
    z = h @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.eye(z.shape[1])[labels]
    loss = -np.mean(np.sum(onehot * np.log(p), axis=1))
    dz = (p - onehot) / n
    dh = (dz @ w2.T) * (hp > 0)
    grads = (x.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0))
    return (np.asarray(loss), *(p - W6_LR * g for p, g in zip((w1, b1, w2, b2), grads)))


def _w6_compare(outs, args):
    loss, *new = outs
    return (loss, *((np.asarray(p, np.float64) - q) / W6_LR for p, q in zip(args[2:], new)))


def _w6() -> Workload:
    def make_inputs():
        rng = _rng(6)
        x = rng.standard_normal((128, 784), dtype=np.float32)
        labels = rng.integers(0, 10, 128).astype(np.int64)
        return (x, labels, *_linear_params(rng, 784, 256), *_linear_params(rng, 256, 10))
    return Workload("W6", "training step: MLP 784-256-10, batch 128, cross-entropy, forward + "
                    "backward + SGD lr 0.1",
                    ("x", "labels", "w1", "b1", "w2", "b2"), make_inputs, _w6_model,
                    _w6_numpy, _w6_reference, compare=_w6_compare, attrs={"lr": W6_LR})


# ---- W7: the convnet ---------------------------------------------------------------------------

def _w7_model(x, c1w, c1b, c2w, c2b, fw, fb):
    h = lp.max_pool2d(lp.relu(lp.conv2d(x, c1w, c1b, padding=1)), 2)
    h = lp.max_pool2d(lp.relu(lp.conv2d(h, c2w, c2b, padding=1)), 2)
    n, c, hh, ww = h.shape
    return h.reshape(n, c * hh * ww) @ fw + fb


def _conv3x3_numpy(x, w, b):
    """conv 3x3, stride 1, padding 1, NCHW, as im2col + one GEMM (tensordot calls BLAS)."""
    n, c, hh, ww = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))          # n, c, h, w, 3, 3 (a view)
    y = np.tensordot(win, w, axes=((1, 4, 5), (1, 2, 3)))        # n, h, w, out
    y += b
    return y.transpose(0, 3, 1, 2)


def _relu_pool2_numpy(y):
    # relu then 2x2 max pool == 2x2 max pool then relu (both monotone); pool first: 4x less work.
    n, c, hh, ww = y.shape
    p = y.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))
    return np.maximum(p, 0, out=p)


def _w7_numpy(x, c1w, c1b, c2w, c2b, fw, fb):
    h = _relu_pool2_numpy(_conv3x3_numpy(x, c1w, c1b))
    h = _relu_pool2_numpy(_conv3x3_numpy(h, c2w, c2b))
    y = h.reshape(h.shape[0], -1) @ fw
    y += fb
    return y


def _w7_reference(*args):
    x, c1w, c1b, c2w, c2b, fw, fb = _f64(args)

    def conv(x, w, b):          # the definition, one kernel tap at a time
        n, c, hh, ww = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        y = np.zeros((n, w.shape[0], hh, ww)) + b[None, :, None, None]
        for i in range(3):
            for j in range(3):
                y += np.einsum("nchw,oc->nohw", xp[:, :, i:i + hh, j:j + ww], w[:, :, i, j])
        return y

    def pool(y):
        n, c, hh, ww = y.shape
        return y.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=(3, 5))

    h = pool(np.maximum(conv(x, c1w, c1b), 0))
    h = pool(np.maximum(conv(h, c2w, c2b), 0))
    return h.reshape(h.shape[0], -1) @ fw + fb


def _w7() -> Workload:
    def make_inputs():
        rng = _rng(7)

        def conv_params(cin, cout):
            bound = 1.0 / math.sqrt(cin * 9)
            return (rng.uniform(-bound, bound, (cout, cin, 3, 3)).astype(np.float32),
                    rng.uniform(-bound, bound, cout).astype(np.float32))
        return (rng.standard_normal((32, 1, 28, 28), dtype=np.float32),
                *conv_params(1, 32), *conv_params(32, 64), *_linear_params(rng, 3136, 10))
    return Workload("W7", "convnet on 32x1x28x28: 2x (conv3x3 + ReLU + maxpool 2), "
                    "linear 3136->10",
                    ("x", "conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc_w", "fc_b"),
                    make_inputs, _w7_model, _w7_numpy, _w7_reference)


# ---- W8: a pre-LN transformer block, 4-head causal attention -----------------------------------
# y = x + attn(ln1(x)); out = y + fc2(gelu_tanh(fc1(ln2(y)))). QKV is one fused (256, 768) weight;
# the causal mask is an additive constant (0 on and below the diagonal, -1e9 above) built once.
# GELU is the tanh form (GPT-2's) because NumPy has no vectorised erf.

W8_ARGS = ("x", "ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",
           "ln2_w", "ln2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b")


def causal_mask(t: int, dtype=np.float32) -> np.ndarray:
    """Additive mask: 0 where key <= query, -1e9 elsewhere."""
    return np.triu(np.full((t, t), -1e9, dtype=dtype), k=1)


def _w8_model(x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b,
              fc1_w, fc1_b, fc2_w, fc2_b, causal=True):
    t, d = x.shape
    hd = d // W8_HEADS
    qkv = lp.layer_norm(x, ln1_w, ln1_b, eps=LN_EPS) @ qkv_w + qkv_b
    q = qkv[:, 0:d].reshape(t, W8_HEADS, hd).transpose(1, 0, 2)
    k = qkv[:, d:2 * d].reshape(t, W8_HEADS, hd).transpose(1, 2, 0)
    v = qkv[:, 2 * d:3 * d].reshape(t, W8_HEADS, hd).transpose(1, 0, 2)
    s = (q @ k) * (1.0 / math.sqrt(hd))
    p = lp.softmax(s + causal_mask(t) if causal else s, axis=-1)
    a = (p @ v).transpose(1, 0, 2).reshape(t, d)
    y = x + (a @ proj_w + proj_b)
    h = lp.gelu(lp.layer_norm(y, ln2_w, ln2_b, eps=LN_EPS) @ fc1_w + fc1_b, approximate=True)
    return y + (h @ fc2_w + fc2_b)


def _gelu_tanh_numpy(z):
    t = z * z
    t *= np.float32(0.044715 * _GELU_C)
    t += np.float32(_GELU_C)
    t *= z
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= z
    t *= np.float32(0.5)
    return t


def _softmax_numpy(s):
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s


def _w8_numpy(x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b,
              fc1_w, fc1_b, fc2_w, fc2_b, causal=True, _mask={}):
    t, d = x.shape
    hd = d // W8_HEADS
    mask = _mask.get(t)
    if mask is None:
        mask = _mask[t] = causal_mask(t)
    qkv = _layer_norm_numpy(x, ln1_w, ln1_b) @ qkv_w
    qkv += qkv_b
    heads = qkv.reshape(t, 3, W8_HEADS, hd).transpose(1, 2, 0, 3)   # 3, heads, t, hd
    q, k, v = heads[0], heads[1], heads[2]
    s = q @ k.transpose(0, 2, 1)
    s *= np.float32(1.0 / math.sqrt(hd))
    if causal:
        s += mask
    a = _softmax_numpy(s) @ v
    y = a.transpose(1, 0, 2).reshape(t, d) @ proj_w
    y += proj_b
    y += x
    h = _layer_norm_numpy(y, ln2_w, ln2_b) @ fc1_w
    h += fc1_b
    m = _gelu_tanh_numpy(h) @ fc2_w
    m += fc2_b
    m += y
    return m


def _w8_reference(*args, causal=True):
    x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b = \
        _f64(args)
    t, d = x.shape
    hd = d // W8_HEADS
    qkv = _layer_norm_reference(x, ln1_w, ln1_b) @ qkv_w + qkv_b
    q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(t, W8_HEADS, hd).transpose(1, 0, 2)
               for i in range(3))
    s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
    if causal:
        s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    y = x + (p @ v).transpose(1, 0, 2).reshape(t, d) @ proj_w + proj_b
    z = _layer_norm_reference(y, ln2_w, ln2_b) @ fc1_w + fc1_b
    h = 0.5 * z * (1.0 + np.tanh(_GELU_C * (z + 0.044715 * z ** 3)))
    return y + h @ fc2_w + fc2_b


def _w8() -> Workload:
    def make_inputs():
        rng = _rng(8)
        d = 256

        def ln_params():
            return (rng.uniform(0.8, 1.2, d).astype(np.float32),
                    rng.uniform(-0.1, 0.1, d).astype(np.float32))
        return (rng.standard_normal((128, d), dtype=np.float32), *ln_params(),
                *_linear_params(rng, d, 3 * d), *_linear_params(rng, d, d), *ln_params(),
                *_linear_params(rng, d, 4 * d), *_linear_params(rng, 4 * d, d))
    return Workload("W8", "transformer block, x 128x256: pre-LN causal self-attention (4 heads), "
                    "MLP 256-1024-256 GELU",
                    W8_ARGS, make_inputs, _w8_model, _w8_numpy, _w8_reference,
                    attrs={"heads": W8_HEADS, "eps": LN_EPS})


# ---- W9: an LSTM training step (lstm.py) -------------------------------------------------------

def _update_compare(first_param: int, lr: float):
    """Compares the loss and the gradients recovered from the updates, (p - p') / lr (as W6)."""
    def compare(outs, args):
        loss, *new = outs
        return (loss, *((np.asarray(p, np.float64) - q) / lr
                        for p, q in zip(args[first_param:], new)))
    return compare


def _w9() -> Workload:
    from . import lstm
    return Workload("W9", "training step: LSTM(128, 256), 64 steps, batch 32, head to 10 classes, "
                    "cross-entropy, SGD", lstm.ARGS, lstm.make_inputs,
                    lstm.model, lstm.step_numpy, lstm.reference,
                    compare=_update_compare(2, lstm.LR), attrs={"lr": lstm.LR}, heavy=True)


# ---- W10: 12 W8 blocks (non-causal, separate weights) and a final LayerNorm ---------------------

W10_BLOCKS = 12
_W8_PARAMS = W8_ARGS[1:]


def _w10_split(params):
    per = len(_W8_PARAMS)
    blocks = [params[i * per:(i + 1) * per] for i in range(W10_BLOCKS)]
    return blocks, params[-2:]


def _w10_model(x, *params):
    blocks, (w, b) = _w10_split(params)
    for p in blocks:
        x = _w8_model(x, *p, causal=False)
    return lp.layer_norm(x, w, b, eps=LN_EPS)


def _w10_numpy(x, *params):
    blocks, (w, b) = _w10_split(params)
    for p in blocks:
        x = _w8_numpy(x, *p, causal=False)
    return _layer_norm_numpy(x, w, b)


def _w10_reference(x, *params):
    blocks, (w, b) = _w10_split(params)
    for p in blocks:
        x = _w8_reference(x, *p, causal=False)
    return _layer_norm_reference(x, w, b)


def _w10() -> Workload:
    def make_inputs():
        rng = _rng(10)
        d = 256

        def ln_params():
            return (rng.uniform(0.8, 1.2, d).astype(np.float32),
                    rng.uniform(-0.1, 0.1, d).astype(np.float32))
        x = rng.standard_normal((128, d), dtype=np.float32)
        params = []
        for _ in range(W10_BLOCKS):
            params += [*ln_params(), *_linear_params(rng, d, 3 * d), *_linear_params(rng, d, d),
                       *ln_params(), *_linear_params(rng, d, 4 * d),
                       *_linear_params(rng, 4 * d, d)]
        return (x, *params, *ln_params())
    names = ("x", *(f"b{i}.{n}" for i in range(W10_BLOCKS) for n in _W8_PARAMS),
             "ln_f_w", "ln_f_b")
    return Workload("W10", f"{W10_BLOCKS} W8 blocks (non-causal, separate weights), final LayerNorm, "
                    "x 128x256", names, make_inputs, _w10_model,
                    _w10_numpy, _w10_reference, attrs={"heads": W8_HEADS, "eps": LN_EPS,
                                                       "blocks": W10_BLOCKS}, heavy=True)


# ---- W11: a BatchNorm CNN training step (bn_cnn.py) ---------------------------------------------

def _w11() -> Workload:
    from . import bn_cnn
    return Workload("W11", "training step: 2x (conv3x3 + BatchNorm + ReLU + maxpool 2) on "
                    "32x3x32x32, linear, SGD", bn_cnn.ARGS,
                    bn_cnn.make_inputs, bn_cnn.model, bn_cnn.step_numpy, bn_cnn.reference,
                    compare=_update_compare(2, bn_cnn.LR), attrs={"lr": bn_cnn.LR}, heavy=True)


WORKLOADS: dict[str, Workload] = {w.id: w for w in (
    _mlp("W1", 1, "inference"), _mlp("W2", 256, "inference"), _w3(), _w4(), _w5(), _w6(), _w7(),
    _w8(), _w9(), _w10(), _w11(), _call_overhead())}
"""All workloads by id, in table order; "call" is the call-overhead row (timed in µs)."""


def select(only: str | list[str] | None) -> list[Workload]:
    """Workloads named in `only` ("W1,W3" or a list; None: all), in table order.

    >>> [w.id for w in select("w3,W1")]
    ['W1', 'W3']
    """
    if only is None:
        return list(WORKLOADS.values())
    names = only.split(",") if isinstance(only, str) else list(only)
    wanted = {n.strip().upper() if n.strip().lower() != "call" else "call"
              for n in names if n.strip()}
    unknown = sorted(wanted - set(WORKLOADS))
    if unknown:
        raise ValueError(f"unknown workload {', '.join(unknown)}; "
                         f"known: {', '.join(WORKLOADS)}")
    return [w for w in WORKLOADS.values() if w.id in wanted]
