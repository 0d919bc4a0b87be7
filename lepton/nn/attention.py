"""MultiheadAttention, PyTorch's layer: its arguments, parameter names, layouts, initialisation,
masks and results.

    >>> mha = MultiheadAttention(64, 8, batch_first=True)
    >>> out, weights = mha(x, x, x, key_padding_mask=pad)    # x (N, L, 64), pad (N, L) bool
    >>> out.shape, weights.shape                               # (N, L, 64), (N, L, L)

Masks are bool (True: not allowed to attend, as PyTorch) or float (added to the scores):
attn_mask (L, S) or (N*num_heads, L, S), key_padding_mask (N, S). A query whose keys are all
masked gets NaN, as in PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from ..frontends import nn_ops, ops, shapes
from ..frontends.tensor import Tensor, lift
from . import init
from .dropout import dropout, fresh_key
from .init import _generator, _positive_int
from .linear import Linear
from .module import Module


def _xavier_uniform(rng, shape) -> np.ndarray:
    fan_out, fan_in = shape[0], shape[1]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def _xavier_normal(rng, shape) -> np.ndarray:
    rf = int(np.prod(shape[2:]))
    std = math.sqrt(2.0 / (shape[1] * rf + shape[0] * rf))
    return (rng.standard_normal(shape) * std).astype(np.float32)


class MultiheadAttention(Module):
    """Attention over num_heads heads of embed_dim // num_heads features: with q, k, v the
    projected inputs split into heads, out = out_proj(concat_h softmax(q k^T / sqrt(d) + mask)
    v). Parameters: in_proj_weight (3E, E) and in_proj_bias (3E,) (q_proj_weight (E, E),
    k_proj_weight (E, kdim), v_proj_weight (E, vdim) instead of in_proj_weight when kdim or
    vdim differ from E), out_proj.weight (E, E), out_proj.bias (E,), bias_k and bias_v
    (1, 1, E) with add_bias_kv. `dropout` > 0 drops attention weights in training mode, drawing
    from the process's generator as `Dropout` does."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, *, rng=None):
        super().__init__()
        what = "MultiheadAttention"
        self.embed_dim = _positive_int(embed_dim, f"{what} embed_dim")
        self.num_heads = _positive_int(num_heads, f"{what} num_heads")
        self.kdim = embed_dim if kdim is None else _positive_int(kdim, f"{what} kdim")
        self.vdim = embed_dim if vdim is None else _positive_int(vdim, f"{what} vdim")
        if embed_dim % num_heads:
            raise ValueError(f"{what}: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{what}: dropout must be in [0, 1], got {dropout!r}")
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self._generator = init.GRAPH_KEY  # dropout's keys (see dropout.fresh_key)
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = bool(add_zero_attn)
        g = _generator(rng)
        e = embed_dim
        # torch's registration order: projections, in_proj_bias, bias_k/v, then out_proj
        self._qkv_same_embed_dim = self.kdim == e and self.vdim == e
        if self._qkv_same_embed_dim:
            self.in_proj_weight = _xavier_uniform(g, (3 * e, e))
        else:
            self.in_proj_weight = None
            self.q_proj_weight = _xavier_uniform(g, (e, e))
            self.k_proj_weight = _xavier_uniform(g, (e, self.kdim))
            self.v_proj_weight = _xavier_uniform(g, (e, self.vdim))
        self.in_proj_bias = np.zeros(3 * e, np.float32) if bias else None
        self.bias_k = _xavier_normal(g, (1, 1, e)) if add_bias_kv else None
        self.bias_v = _xavier_normal(g, (1, 1, e)) if add_bias_kv else None
        self.out_proj = Linear(e, e, bias=bias, rng=g)
        if bias:
            self.out_proj.bias = np.zeros(e, np.float32)

    def _project(self, x, i: int):
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * e:(i + 1) * e]
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        y = ops.matmul(x, shapes.transpose(w))
        return y if self.in_proj_bias is None else y + self.in_proj_bias[i * e:(i + 1) * e]

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """(attn_output, attn_weights): attn_output (L, N, E), or (N, L, E) with batch_first,
        or (L, E) for unbatched inputs; attn_weights (N, L, S) averaged over heads, (N,
        num_heads, L, S) with average_attn_weights=False, None with need_weights=False."""
        what = "MultiheadAttention"
        if is_causal and attn_mask is None:
            raise ValueError(f"{what}: is_causal is a hint; it needs attn_mask")
        q, k, v = lift(query), lift(key), lift(value)
        batched = q.ndim == 3
        if q.ndim not in (2, 3) or k.ndim != q.ndim or v.ndim != q.ndim:
            raise ValueError(f"{what}: query, key and value must all be 3-d (batched) or 2-d "
                             f"(unbatched), got {q.type}, {k.type}, {v.type}")
        if not batched:  # one sequence: a batch of one, (L, 1, E)
            q, k, v = (shapes.expand_dims(t, 1) for t in (q, k, v))
            if key_padding_mask is not None:
                key_padding_mask = shapes.expand_dims(lift(key_padding_mask), 0)
        elif self.batch_first:
            q, k, v = (shapes.transpose(t, (1, 0, 2)) for t in (q, k, v))
        (tgt, n, e), src = q.shape, k.shape[0]
        for name, t, d in (("query", q, self.embed_dim), ("key", k, self.kdim),
                           ("value", v, self.vdim)):
            if t.shape[2] != d or t.shape[1] != n:
                raise ValueError(f"{what}: {name} has shape {t.type}, expected batch {n} and "
                                 f"{d} features")
        q, k, v = self._project(q, 0), self._project(k, 1), self._project(v, 2)
        masks = [self._attn_mask(attn_mask, n, tgt, src, q)]
        masks.append(self._padding_mask(key_padding_mask, n, src, q))
        if self.bias_k is not None:
            k = shapes.concatenate([k, shapes.broadcast_to(self.bias_k, (1, n, e))], 0)
            v = shapes.concatenate([v, shapes.broadcast_to(self.bias_v, (1, n, e))], 0)
            masks = [_pad_last(m) for m in masks]
        h, hd = self.num_heads, self.head_dim
        # (S, N, E) -> (N, H, S, hd)
        q, k, v = (shapes.transpose(shapes.reshape(t, (t.shape[0], n, h, hd)), (1, 2, 0, 3))
                   for t in (q, k, v))
        if self.add_zero_attn:
            zeros = ops.zeros((n, h, 1, hd), dtype=q.dtype)
            k, v = shapes.concatenate([k, zeros], 2), shapes.concatenate([v, zeros], 2)
            masks = [_pad_last(m) for m in masks]
        scores = ops.matmul(q * math.sqrt(1.0 / hd), shapes.swapaxes(k, -1, -2))
        for m in masks:
            if m is not None:
                scores = scores + m
        weights = nn_ops.softmax(scores, axis=-1)
        if self.dropout > 0 and self.training:  # on the attention weights, as PyTorch
            weights = dropout(weights, self.dropout, fresh_key(self))
        out = ops.matmul(weights, v)                                   # (N, H, L, hd)
        out = shapes.reshape(shapes.transpose(out, (2, 0, 1, 3)), (tgt, n, e))
        out = self.out_proj(out)
        if not batched:
            out = shapes.reshape(out, (tgt, e))
        elif self.batch_first:
            out = shapes.transpose(out, (1, 0, 2))
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = ops.mean(weights, axis=1)
        if not batched:
            weights = shapes.reshape(weights, weights.shape[1:])
        return out, weights

    def _attn_mask(self, mask, n, tgt, src, like):
        """attn_mask as an additive float (1 or N, 1 or H, L, S) tensor, or None."""
        if mask is None:
            return None
        m = _additive(mask, like)
        h = self.num_heads
        if m.shape == (tgt, src):
            return shapes.reshape(m, (1, 1, tgt, src))
        if m.shape == (n * h, tgt, src):
            return shapes.reshape(m, (n, h, tgt, src))
        raise ValueError(f"MultiheadAttention: attn_mask must have shape {(tgt, src)} or "
                         f"{(n * h, tgt, src)}, got {m.type}")

    def _padding_mask(self, mask, n, src, like):
        if mask is None:
            return None
        m = _additive(mask, like)
        if m.shape != (n, src):
            raise ValueError(f"MultiheadAttention: key_padding_mask must have shape "
                             f"{(n, src)}, got {m.type}")
        return shapes.reshape(m, (n, 1, 1, src))


def _additive(mask, like: Tensor) -> Tensor:
    """A bool mask as 0 / -inf (True: not allowed), a float mask as it is, in like's dtype."""
    m = lift(mask)
    if m.dtype.is_float:
        return m if m.dtype == like.dtype else m.astype(like.dtype)
    if m.dtype.name != "bool":
        raise TypeError(f"MultiheadAttention: masks must be bool or float, got {m.type}")
    return ops.where(m, ops.full((), -np.inf, dtype=like.dtype),
                     ops.zeros((), dtype=like.dtype))


def _pad_last(m):
    """A mask with one more key, allowed (the bias_k or zero-attention column)."""
    if m is None:
        return None
    return shapes.concatenate([m, ops.zeros(m.shape[:-1] + (1,), dtype=m.dtype)], -1)
