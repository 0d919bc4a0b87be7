"""`LoadedModel`: what `lp.load_model` returns for a `.lepton` file.

    m = lp.load_model("model.lepton")
    y = m.predict(x)          # = m(x): returns what the saved function returned
    m.signature               # signature.py; m.ir(): the saved graph's text
    outs = m.run_flat([x])    # flattened inputs in, flattened outputs out (for servers)

The graphs are compiled for this CPU when first needed (once per size class; the disk cache
makes a later process's compile a cache load). The weights are fed to the graph as inputs at
every call. Calls from several threads run in parallel.

With a batch axis, a batch of n rows runs as n // max_batch calls of the largest size class and
one call of the smallest class that holds the rest, padded with copies of its last row (their
results are dropped); see save.py.
"""
from __future__ import annotations

import threading

import numpy as np

from ..compile import CompileResult
from ..frontends.pytree import tree_flatten, tree_unflatten
from ..ir.graph import Graph
from ..ir.printer import print_graph
from .signature import Signature


class LoadedModel:
    def __init__(self, name: str, signature: Signature, graphs: dict[int | None, Graph],
                 weights: list[tuple[str, np.ndarray]]):
        self.name = name
        self.signature = signature
        self._graphs = graphs
        self.weight_names = [n for n, _ in weights]
        self._weights = [a for _, a in weights]
        self.max_batch = None if signature.batch_axis is None else max(graphs)
        self._compiled: dict = {}
        self._lock = threading.Lock()

    # -- calling ----------------------------------------------------------------------------
    def predict(self, *inputs):
        """The saved function's result for these inputs (the same pytree of arrays)."""
        leaves, tree = tree_flatten(inputs)
        if tree != self.signature.input_tree:
            raise TypeError(f"{self.name}: expected arguments structured as "
                            f"{self.signature.input_tree}, got {tree} "
                            f"(signature {self.signature})")
        return tree_unflatten(self.signature.output_tree, self.run_flat(leaves))

    __call__ = predict

    def run_flat(self, inputs) -> list[np.ndarray]:
        """The flattened outputs for the flattened inputs (in signature order)."""
        arrays = self._check(inputs)
        axis = self.signature.batch_axis
        if axis is None:
            return self._run(None, arrays)
        n = arrays[0].shape[axis]
        parts, start = [], 0
        while n - start >= self.max_batch:
            parts.append(self._run(self.max_batch, [_rows(a, axis, start, self.max_batch)
                                                    for a in arrays]))
            start += self.max_batch
        if start < n or not parts:
            rest = n - start
            size = 1 << max(rest - 1, 0).bit_length()
            chunk = [_padded(_rows(a, axis, start, rest), axis, size) for a in arrays]
            parts.append([_rows(o, axis, 0, rest) for o in self._run(size, chunk)])
        if len(parts) == 1:
            return [np.ascontiguousarray(o) for o in parts[0]]
        return [np.concatenate(outs, axis=axis) for outs in zip(*parts)]

    def _check(self, inputs) -> list[np.ndarray]:
        specs = self.signature.inputs
        if len(inputs) != len(specs):
            raise TypeError(f"{self.name} takes {len(specs)} inputs ({self.signature}), got "
                            f"{len(inputs)}")
        arrays, batch = [], None
        for spec, a in zip(specs, inputs):
            a = np.asarray(a)
            if a.dtype != spec.dtype:
                raise TypeError(f"{self.name}: input {spec}: got an array of dtype {a.dtype}; "
                                f"convert it with .astype(np.{spec.dtype.name})")
            if a.ndim != len(spec.shape) or any(
                    want is not None and want != got for want, got in zip(spec.shape, a.shape)):
                raise ValueError(f"{self.name}: input {spec}: got shape {a.shape}")
            if self.signature.batch_axis is not None:
                n = a.shape[self.signature.batch_axis]
                if batch is not None and n != batch[0]:
                    raise ValueError(f"{self.name}: input {spec} has batch size {n}, but "
                                     f"input {batch[1]} has {batch[0]}")
                batch = batch or (n, spec.name)
            arrays.append(a)
        return arrays

    def _run(self, size: int | None, arrays: list[np.ndarray]) -> list[np.ndarray]:
        res = self._compiled.get(size)
        if res is None:
            with self._lock:
                res = self._compiled.get(size)
                if res is None:
                    names = [s.name for s in self.signature.inputs] + self.weight_names
                    res = self._compiled[size] = CompileResult(self._graphs[size], None, None,
                                                               input_names=names)
        return res.executable(*arrays, *self._weights)

    # -- inspection -------------------------------------------------------------------------
    def ir(self, batch_size: int | None = None) -> str:
        """The saved graph's IR text: for a batched model, of the size class that runs
        batch_size rows (default: the largest class)."""
        size = None
        if self.max_batch is not None:
            n = self.max_batch if batch_size is None else min(batch_size, self.max_batch)
            size = 1 << max(n - 1, 0).bit_length()
        return print_graph(self._graphs[size])

    def __repr__(self) -> str:
        batch = "" if self.max_batch is None else \
            f", batch_axis={self.signature.batch_axis}, max_batch={self.max_batch}"
        return f"<LoadedModel {self.name}{self.signature}{batch}>"


def _rows(a: np.ndarray, axis: int, start: int, count: int) -> np.ndarray:
    return a[(slice(None),) * axis + (slice(start, start + count),)]


def _padded(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    """a with `size` rows along axis: its last row repeated (zeros when it has none)."""
    n = a.shape[axis]
    if n == size:
        return a
    if n == 0:
        return np.zeros(a.shape[:axis] + (size,) + a.shape[axis + 1:], a.dtype)
    last = _rows(a, axis, n - 1, 1)
    return np.concatenate([a, np.repeat(last, size - n, axis=axis)], axis=axis)
