"""ONNX's attention, normalisation and loss ops over traced Lepton ops: Attention (opset 23/24,
with the KV cache, grouped-query heads, masks, causal and sliding windows, softcap),
RMSNormalization, InstanceNormalization, GroupNormalization, MeanVarianceNormalization,
LpNormalization, NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Attention follows the ONNX reference (onnx/reference/ops/op_attention.py): Q and K are both
scaled by sqrt(scale), masks are an additive bias (0 or -inf), and a query row whose bias is
-inf everywhere gives 0.
"""
from __future__ import annotations

import math

import numpy as np

from ...ir.types import int64
from .. import nn_ops, ops, shapes
from ..tensor import Tensor, cast, constant


def _c(x: Tensor, v) -> Tensor:
    return constant(np.array(v, x.dtype.np))


def _safe_softmax(x: Tensor) -> Tensor:
    """Softmax along the last axis; a row of -inf gives 0, not NaN."""
    m = ops.max(x, -1, keepdims=True)
    m = ops.where(m == _c(x, -np.inf), _c(x, 0), m)
    e = ops.exp(x - m)
    s = ops.sum(e, -1, keepdims=True)
    return e / ops.where(s == _c(x, 0), _c(x, 1), s)


def _heads(x: Tensor, heads: int) -> Tensor:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hidden = x.shape
    return ops.transpose(x.reshape(b, s, heads, hidden // heads), (0, 2, 1, 3))


def attention(n) -> list[Tensor]:
    q, k, v = n.x(0), n.x(1), n.x(2)
    mask, past_k, past_v, nonpad = n.opt(3), n.opt(4), n.opt(5), n.opt(6)
    if q.ndim != k.ndim or q.ndim != v.ndim or q.ndim not in (3, 4):
        n.invalid(f"Q, K, V must all be 3-d or 4-d, got {q.type}, {k.type}, {v.type}")
    if (past_k is None) != (past_v is None):
        n.invalid("past_key and past_value must be given together")
    if n.attr("softmax_precision") is not None and n.attr("softmax_precision") not in (1, 11):
        n.unsupported("softmax_precision other than float/double is not supported")
    rank3 = q.ndim == 3
    if rank3:
        hq, hkv = n.attr("q_num_heads"), n.attr("kv_num_heads")
        if hq is None or hkv is None:
            n.invalid("3-d inputs need q_num_heads and kv_num_heads")
        q, k, v = _heads(q, hq), _heads(k, hkv), _heads(v, hkv)
    scale = n.attr("scale")
    scale = 1 / math.sqrt(q.shape[3]) if scale is None else scale
    root = _c(q, math.sqrt(scale))
    present_k = k if past_k is None else ops.concatenate([past_k, k], 2)
    present_v = v if past_v is None else ops.concatenate([past_v, v], 2)
    k, v = present_k, present_v
    sq, skv = q.shape[2], k.shape[2]
    neg_inf, zero = _c(q, -np.inf), _c(q, 0)

    bias = None   # additive, (.., sq, skv); None means zeros
    if mask is not None:
        pad = skv - mask.shape[-1]
        if pad > 0:   # a shorter mask is padded with "masked"
            fill = ops.full(mask.shape[:-1] + (pad,), False if mask.dtype.name == "bool"
                            else -np.inf, mask.dtype)
            mask = ops.concatenate([mask, fill], -1)
        bias = ops.where(mask, zero, neg_inf) if mask.dtype.name == "bool" else mask
    offset = past_k.shape[2] if past_k is not None else 0
    if nonpad is not None and past_k is None:   # per batch: nonpad_kv_seqlen[b] - sq
        offset = (cast(nonpad, int64) - sq).reshape(-1, 1, 1, 1)
    i = constant(np.arange(sq, dtype=np.int64).reshape(sq, 1))
    j = constant(np.arange(skv, dtype=np.int64).reshape(1, skv))
    allowed = []
    if n.attr("is_causal", 0):
        allowed.append(j <= i + offset)
    left, right = n.attr("left_window_size", -1), n.attr("right_window_size", -1)
    if left >= 0:
        allowed.append(i + offset - j <= left)
    if right >= 0:
        allowed.append(j - (i + offset) <= right)
    if nonpad is not None:
        lens = cast(nonpad, int64).reshape(-1, 1, 1, 1)
        allowed.append(j < lens)
    for a in allowed:
        term = ops.where(a, zero, neg_inf)
        bias = term if bias is None else bias + term

    hq, hk = q.shape[1], k.shape[1]
    if hq != hk:
        if hq % hk:
            n.invalid(f"{hq} query heads do not divide among {hk} key/value heads")
        rep = np.repeat(np.arange(hk), hq // hk)   # interleaved: h0, h0, h1, h1...
        k, v = ops.take(k, rep, axis=1), ops.take(v, rep, axis=1)
    qk = ops.matmul(q * root, ops.swapaxes(k * root, -1, -2))
    softcap = n.attr("softcap", 0.0)
    if softcap and softcap > 0:
        qk = ops.tanh(qk / softcap) * softcap
    mode = n.attr("qk_matmul_output_mode", 0)
    with_bias = qk if bias is None else qk + bias
    p = _safe_softmax(with_bias)
    if bias is not None:   # rows where every key is masked give 0
        dead = ops.max(ops.broadcast_to(bias, np.broadcast_shapes(bias.shape, (sq, skv))), -1,
                       keepdims=True) == neg_inf
        p = ops.where(dead, zero, p)
    qk_out = {0: qk, 1: qk, 2: with_bias, 3: p}.get(mode)
    if qk_out is None:
        n.invalid(f"qk_matmul_output_mode must be 0..3, got {mode}")
    y = ops.matmul(p, v)
    if rank3:
        y = ops.transpose(y, (0, 2, 1, 3))
        y = y.reshape(y.shape[0], y.shape[1], -1)
    outs = [y, present_k, present_v, qk_out]
    return outs[:max(n.n_outputs, 1)]


# -- normalisations ----------------------------------------------------------------------------
def rms_norm(n) -> Tensor:
    x, scale = n.x(0), n.x(1)
    axis = shapes.norm_axis(n.attr("axis", -1), x.ndim, n.op_type)
    axes = tuple(range(axis, x.ndim))
    inv = ops.rsqrt(ops.mean(ops.square(x), axes, keepdims=True) + n.attr("epsilon", 1e-5))
    return x * inv * scale


def _normalise(x: Tensor, axes, eps) -> Tensor:
    mu = ops.mean(x, axes, keepdims=True)
    d = x - mu
    return d * ops.rsqrt(ops.mean(ops.square(d), axes, keepdims=True) + eps)


def instance_norm(n) -> Tensor:
    x, scale, bias = n.x(0), n.x(1), n.x(2)
    y = _normalise(x, tuple(range(2, x.ndim)), n.attr("epsilon", 1e-5))
    shape = (x.shape[1],) + (1,) * (x.ndim - 2)
    return y * scale.reshape(shape) + bias.reshape(shape)


def group_norm(n) -> Tensor:
    x, scale, bias = n.x(0), n.x(1), n.x(2)
    g = n.attr("num_groups")
    b, c = x.shape[:2]
    xg = x.reshape((b, g, c // g) + x.shape[2:])
    y = _normalise(xg, tuple(range(2, xg.ndim)), n.attr("epsilon", 1e-5)).reshape(x.shape)
    shape = (c,) + (1,) * (x.ndim - 2)
    if scale.shape[0] != c:   # opset 18: one scale per group
        scale = ops.broadcast_to(scale.reshape(g, 1), (g, c // g)).reshape(c)
        bias = ops.broadcast_to(bias.reshape(g, 1), (g, c // g)).reshape(c)
    return y * scale.reshape(shape) + bias.reshape(shape)


def mean_variance_norm(n) -> Tensor:
    x = n.x(0)
    axes = tuple(n.attr("axes", [0, 2, 3]))
    mu = ops.mean(x, axes, keepdims=True)
    d = x - mu
    return d / (ops.sqrt(ops.mean(ops.square(d), axes, keepdims=True)) + 1e-9)


def lp_norm(n) -> Tensor:
    x = n.x(0)
    axis, p = n.attr("axis", -1), n.attr("p", 2)
    if p == 1:
        norm = ops.sum(ops.abs(x), axis, keepdims=True)
    elif p == 2:
        norm = ops.sqrt(ops.sum(ops.square(x), axis, keepdims=True))
    else:
        n.invalid(f"p must be 1 or 2, got {p}")
    zero = norm == _c(x, 0)   # a zero norm gives 0, not 0/0
    return ops.where(zero, _c(x, 0), x / ops.where(zero, _c(x, 1), norm))


# -- losses ------------------------------------------------------------------------------------
def _nll(n, logp: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    """NegativeLogLikelihoodLoss on log-probabilities (N, C, d...) and targets (N, d...)."""
    c = logp.shape[1]
    ignore = n.attr("ignore_index")
    t = cast(target, int64)
    classes = constant(np.arange(c, dtype=np.int64).reshape((c,) + (1,) * (t.ndim - 1)))
    hot = ops.expand_dims(t, 1) == classes                       # (N, C, d...)
    zero = _c(logp, 0)
    picked = ops.sum(ops.where(hot, logp, zero), 1, logp.dtype)   # (N, d...)
    w = None
    if weight is not None:
        wc = weight.reshape((c,) + (1,) * (t.ndim - 1))
        w = ops.sum(ops.where(hot, wc, zero), 1, logp.dtype)
    if ignore is not None:
        keep = cast(t != ignore, logp.dtype)
        w = keep if w is None else w * keep
    loss = -picked if w is None else -picked * w
    red = n.attr("reduction", "mean")
    if red == "none":
        return loss
    if red == "sum":
        return ops.sum(loss, None, loss.dtype)
    if red != "mean":
        n.invalid(f"unknown reduction '{red}'")
    if w is None:
        return ops.mean(loss)
    return ops.sum(loss, None, loss.dtype) / ops.sum(w, None, loss.dtype)


def nll_loss(n) -> Tensor:
    return _nll(n, n.x(0), n.x(1), n.opt(2))


def softmax_cross_entropy(n) -> list[Tensor]:
    scores = n.x(0)
    logp = nn_ops.log_softmax(scores, 1)
    loss = _nll(n, logp, n.x(1), n.opt(2))
    return [loss, logp][:max(n.n_outputs, 1)]
