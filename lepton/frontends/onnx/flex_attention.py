"""ONNX's FlexAttention (domain ai.onnx.preview, version 1): scaled dot-product attention over
rank-4 Q, K, V whose scores and probabilities pass through the node's own subgraphs.

    scores = (Q * sqrt(scale)) @ (K * sqrt(scale))^T     # in Q's dtype, then the softmax's
    scores = score_mod(scores)                           # a graph attribute, if given
    probs  = softmax(scores, axis=-1)
    probs  = prob_mod(probs)                             # a graph attribute, if given
    Y      = probs @ V                                   # in the softmax's dtype, then V's

This is onnx's reference (onnx/reference/ops/aionnx_preview/op_flex_attention.py) step by step:
the scale defaults to 1/sqrt(head_size) and its root is taken in float32; the softmax runs in
`softmax_precision` (default float32, or float64 for double inputs), which is also the dtype
the subgraphs see; query head h reads key/value head h // (Hq / Hkv) (grouped-query
attention). The softmax is the plain one: a row that score_mod masks everywhere (-inf) gives
NaN, as in the reference. The subgraphs are traced inline (loader._Builder.subgraph), so a mask
built from Shape/Range over the scores is a constant of the graph.
"""
from __future__ import annotations

import numpy as np

from ...ir.types import float32, float64
from .. import nn_ops, ops
from ..tensor import Tensor, cast, constant
from .node import ONNX_DTYPES


def _softmax_dtype(n, q: Tensor):
    """The dtype of the scores, the softmax and the subgraphs' tensors."""
    p = n.attr("softmax_precision")
    if p is None:
        return float64 if q.dtype == float64 else float32
    # float, float16, bfloat16 (with ml_dtypes), double
    if p not in (1, 10, 16, 11) or p not in ONNX_DTYPES:
        n.unsupported(f"attribute 'softmax_precision' = {p} is not supported (1 float, "
                      f"10 float16, 16 bfloat16 or 11 double)")
    return ONNX_DTYPES[p]


def _modify(n, name: str, x: Tensor) -> Tensor:
    """x through the graph attribute `name` (one input, one output of x's shape and dtype)."""
    g = n.attr(name)
    if g is None:
        return x
    if len(g.input) != 1 or len(g.output) != 1:
        n.invalid(f"attribute '{name}' must be a graph of 1 input and 1 output, got "
                  f"{len(g.input)} inputs and {len(g.output)} outputs")
    (y,) = n.builder.subgraph(g, [x])
    if y.shape != x.shape or y.dtype != x.dtype:
        n.invalid(f"attribute '{name}' must keep its input's type {x.type}, got {y.type}")
    return y


def flex_attention(n) -> Tensor:
    q, k, v = n.x(0), n.x(1), n.x(2)
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        n.invalid(f"Q, K, V must be rank 4, got {q.type}, {k.type}, {v.type}")
    if not q.dtype.is_float or q.dtype != k.dtype or q.dtype != v.dtype:
        n.invalid(f"Q, K, V must share one float dtype, got {q.type}, {k.type}, {v.type}")
    (b, hq, _, e), (bk, hkv, s, ek), (bv, hv, sv, _) = q.shape, k.shape, v.shape
    if not b == bk == bv:
        n.invalid(f"Q, K, V must share their batch size, got {q.type}, {k.type}, {v.type}")
    if hkv != hv or s != sv:
        n.invalid(f"K {k.type} and V {v.type} must share their heads and sequence length")
    if ek != e:
        n.invalid(f"Q {q.type} and K {k.type} must share their head size")
    if hq != hkv:
        if not hkv or hq % hkv:
            n.invalid(f"{hq} query heads do not divide among {hkv} key/value heads")
        rep = np.repeat(np.arange(hkv), hq // hkv)   # query head h reads kv head h // group
        k, v = ops.take(k, rep, axis=1), ops.take(v, rep, axis=1)
    scale = n.attr("scale")
    scale = 1.0 / np.sqrt(e) if scale is None else scale
    root = constant(np.array(np.sqrt(np.float32(scale)), q.dtype.np))
    dt = _softmax_dtype(n, q)
    scores = cast(ops.matmul(q * root, ops.swapaxes(k * root, -1, -2)), dt)
    probs = nn_ops.softmax(_modify(n, "score_mod", scores), -1)
    probs = _modify(n, "prob_mod", probs)
    return cast(ops.matmul(probs, cast(v, dt)), v.dtype)
