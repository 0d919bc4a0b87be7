"""Linear and Embedding."""
from __future__ import annotations

import numpy as np

from ..frontends import ops, shapes
from .init import _bias_init, _generator, _kaiming_uniform, _positive_int
from .module import Module


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features), bias (out_features,).

        >>> fc = Linear(64, 10)          # x (..., 64) -> (..., 10)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "Linear in_features")
        self.out_features = _positive_int(out_features, "Linear out_features")
        g = _generator(rng)
        self.weight = _kaiming_uniform(g, (out_features, in_features), in_features)
        self.bias = _bias_init(g, (out_features,), in_features) if bias else None

    def forward(self, x):
        y = ops.matmul(x, shapes.transpose(self.weight))
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim) drawn from N(0, 1);
    `emb(indices)` gathers rows, shape indices.shape + (embedding_dim,)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng=None):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "Embedding num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "Embedding embedding_dim")
        self.weight = _generator(rng).standard_normal(
            (num_embeddings, embedding_dim)).astype(np.float32)

    def forward(self, indices):
        return shapes.gather(self.weight, indices, 0, "Embedding")

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
