"""ONNX's random ops on lp.random (Philox keys): RandomUniform, RandomNormal, their *Like
forms, Bernoulli, and Dropout in training mode.

A model with random ops takes one more, hidden input: a key, fresh for every call (the loader
draws it), so each call gives new numbers without a new compile. Each random node splits its
own key off it in graph order; a node with a `seed` attribute uses lp.random.key(seed)
instead, so its numbers are the same on every call (not NumPy's: ONNX leaves the generator
to the runtime).

    RandomUniform(shape=[2, 3], low=-1, high=1)   ->  lp.random.uniform(key, (2, 3), f32, -1, 1)
    Bernoulli(p)                                  ->  cast(lp.random.uniform(key, p.shape) < p)
    Dropout(x, ratio, training_mode=True)         ->  mask = uniform >= ratio; x * mask / (1 - ratio)
"""
from __future__ import annotations

import numpy as np

from ... import random as lpr
from .. import ops
from ..tensor import Tensor, cast, constant
from .node import ONNX_DTYPES

RANDOM_OPS = frozenset({"RandomUniform", "RandomNormal", "RandomUniformLike",
                        "RandomNormalLike", "Bernoulli"})


def uses_random(graph) -> bool:
    """Whether the graph (or a subgraph) has a random op, or a Dropout with a training_mode
    input (which may be true)."""
    from onnx import AttributeProto
    for node in graph.node:
        if node.op_type in RANDOM_OPS or (node.op_type == "Dropout" and len(node.input) > 2
                                          and node.input[2]):
            return True
        if any(a.type == AttributeProto.GRAPH and uses_random(a.g) for a in node.attribute):
            return True
    return False


def node_key(n) -> Tensor:
    seed = n.attr("seed")
    if seed is not None:
        return constant(np.asarray(lpr.key(int(seed)), np.int32))
    return n.builder.next_key()


def _dtype(n, default):
    dt = n.attr("dtype")
    if dt is None:
        return default
    if dt not in ONNX_DTYPES or not ONNX_DTYPES[dt].is_float:
        n.unsupported(f"dtype {dt} is not supported (float32 or float64)")
    return ONNX_DTYPES[dt]


def _float(n, t: Tensor):
    if not t.dtype.is_float:
        n.invalid(f"needs a float input, got {t.type}")
    return t.dtype


def _uniform(n, shape, dt) -> Tensor:
    return lpr.uniform(node_key(n), shape, dt, float(n.attr("low", 0.0)),
                       float(n.attr("high", 1.0)))


def _normal(n, shape, dt) -> Tensor:
    z = lpr.normal(node_key(n), shape, dt)
    return z * float(n.attr("scale", 1.0)) + float(n.attr("mean", 0.0))


def random_uniform(n) -> Tensor:
    return _uniform(n, tuple(n.attr("shape")), _dtype(n, ONNX_DTYPES[1]))


def random_normal(n) -> Tensor:
    return _normal(n, tuple(n.attr("shape")), _dtype(n, ONNX_DTYPES[1]))


def random_uniform_like(n) -> Tensor:
    x = n.x(0)
    return _uniform(n, x.shape, _dtype(n, x.dtype if x.dtype.is_float else ONNX_DTYPES[1]))


def random_normal_like(n) -> Tensor:
    x = n.x(0)
    return _normal(n, x.shape, _dtype(n, x.dtype if x.dtype.is_float else ONNX_DTYPES[1]))


def bernoulli(n) -> Tensor:
    p = n.x(0)
    dt = _float(n, p)
    out = n.attr("dtype")
    u = lpr.uniform(node_key(n), p.shape, dt)
    hit = u < p
    return cast(hit, dt if out is None else ONNX_DTYPES.get(out) or n.unsupported(
        f"dtype {out} is not supported"))


def dropout_training(n, x: Tensor, ratio: float) -> list[Tensor]:
    """Training-mode Dropout: y = x * mask / (1 - ratio), mask true with probability 1-ratio."""
    if not 0 <= ratio < 1:
        n.invalid(f"ratio must be in [0, 1), got {ratio}")
    if ratio == 0:
        return [x, ops.full(x.shape, True)]
    keep = lpr.uniform(node_key(n), x.shape, x.dtype if x.dtype.is_float else ONNX_DTYPES[1])
    mask = keep >= ratio
    y = ops.where(mask, x * (1.0 / (1.0 - ratio)), constant(np.zeros((), x.dtype.np)))
    return [y, mask]
