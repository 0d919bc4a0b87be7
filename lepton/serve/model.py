"""What the server needs from a model, and adapters that build it.

The server sees a `ServableModel`: a name, the input and output tensors (name, dtype, shape with
-1 on the batch axis, which axis that is) and `predict(*arrays) -> list of arrays`. It knows
nothing else about Lepton, so a compiled function, a loaded `.lepton` file or an onnxruntime
session can all be served:

    f = lp.compile(lambda x: lp.relu(x @ w))
    m = from_function(f, (np.zeros((1, 784), np.float32),), name="mlp", batch_axis=0)
    m.inputs[0]        # TensorSpec(name='x', dtype=float32, shape=(-1, 784), batch_axis=0)
    m.predict(x)       # [y]

A model is batchable when every input and every output has a batch axis: the batcher then
concatenates the rows of several requests, calls predict once and splits the results.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: shape holds -1 on the batch axis (None: no batch axis)."""
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    batch_axis: int | None = None


@dataclass(frozen=True)
class ServableModel:
    """A named model the server can call: predict takes the inputs' arrays in order and
    returns the outputs' arrays in order."""
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    predict: Callable[..., list[np.ndarray]]
    platform: str = "lepton"

    @property
    def batchable(self) -> bool:
        return all(t.batch_axis is not None for t in (*self.inputs, *self.outputs))

    def zeros(self, rows: int = 1) -> list[np.ndarray]:
        """Zero inputs with `rows` on the batch axis (for warming up)."""
        return _zeros(self.inputs, rows)


def _zeros(specs: Sequence[TensorSpec], rows: int) -> list[np.ndarray]:
    return [np.zeros([rows if k == t.batch_axis else d for k, d in enumerate(t.shape)], t.dtype)
            for t in specs]


def as_list(result) -> list[np.ndarray]:
    """A model's result as a list of arrays (an array, or a tuple or list of arrays)."""
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    arrays = [np.asarray(r) for r in items]
    if any(a.dtype == object for a in arrays):
        raise TypeError(f"a served model must return arrays, got {type(result).__name__}")
    return arrays


def _output_specs(predict, inputs: Sequence[TensorSpec], names) -> tuple[TensorSpec, ...]:
    """Output specs found by calling predict on zeros with 1 and 2 rows: the axis whose length
    follows the rows is an output's batch axis."""
    one = as_list(predict(*_zeros(inputs, 1)))
    two = as_list(predict(*_zeros(inputs, 2))) if any(t.batch_axis is not None
                                                      for t in inputs) else one
    names = list(names) if names else [f"output_{i}" for i in range(len(one))]
    if len(names) != len(one):
        raise ValueError(f"{len(names)} output names for {len(one)} outputs")
    specs = []
    for name, a, b in zip(names, one, two):
        axis = next((i for i, (m, n) in enumerate(zip(a.shape, b.shape)) if (m, n) == (1, 2)),
                    None) if a.shape != b.shape else None
        shape = tuple(-1 if i == axis else d for i, d in enumerate(a.shape))
        specs.append(TensorSpec(name, a.dtype, shape, axis))
    return tuple(specs)


def from_function(fn, example_args: Sequence[np.ndarray], *, name: str,
                  batch_axis: int | None = None, input_names: Sequence[str] | None = None,
                  output_names: Sequence[str] | None = None, size_classes: bool = True,
                  platform: str = "lepton") -> ServableModel:
    """A servable model from a function of arrays (an `lp.compile`d one, or any other): the
    inputs take the example arguments' dtypes and shapes (the batch axis, if given, becomes
    -1) and the parameter names of fn; outputs are found by calling fn. With a batch axis and
    size_classes, a batch runs in power-of-two chunks (see `_in_size_classes`)."""
    example = [np.asarray(a) for a in example_args]
    if input_names is None:
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            params = []
        input_names = params if len(params) == len(example) else \
            [f"input_{i}" for i in range(len(example))]
    inputs = tuple(
        TensorSpec(n, a.dtype, tuple(-1 if i == batch_axis else d for i, d in enumerate(a.shape)),
                   batch_axis)
        for n, a in zip(input_names, example))

    def predict(*arrays):
        return as_list(fn(*arrays))
    outputs = _output_specs(predict, inputs, output_names)
    if batch_axis is not None and size_classes:
        predict = _in_size_classes(predict, inputs, outputs)
    return ServableModel(name, inputs, outputs, predict, platform)


def _in_size_classes(predict, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]):
    """predict over the batch in power-of-two chunks (25 rows: 16 + 8 + 1 calls), so a function
    compiled per shape (as `lp.compile`) compiles once per size class rather than once per batch
    size, and computes no padding rows. A model with an output without a batch axis (which a
    split would change) is called on the whole batch."""
    if any(t.batch_axis is None for t in (*inputs, *outputs)):
        return predict

    def chunked(*arrays):
        rows = arrays[0].shape[inputs[0].batch_axis]
        if rows & (rows - 1) == 0:
            return predict(*arrays)
        parts, start = [], 0
        for bit in reversed(range(rows.bit_length())):
            if rows & (1 << bit):
                stop = start + (1 << bit)
                parts.append(predict(*[_rows(a, t.batch_axis, start, stop)
                                       for a, t in zip(arrays, inputs)]))
                start = stop
        return [np.concatenate(outs, axis=t.batch_axis) for outs, t in zip(zip(*parts), outputs)]
    return chunked


def _rows(a: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    index = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return np.ascontiguousarray(a[tuple(index)])


def from_loaded(model, *, name: str) -> ServableModel:
    """A servable model from `lepton.load_model(path)`: its signature gives the flattened
    inputs and outputs (name, shape with None on the batch axis, dtype) and `batch_axis`;
    predict is its `run_flat` (flattened inputs in, flattened outputs out), called on
    power-of-two chunks of a batch (its size classes) so that it pads none."""
    sig = model.signature
    axis = sig.batch_axis

    def specs(entries) -> tuple[TensorSpec, ...]:
        out = []
        for e in entries:
            batch = axis if axis is not None and axis < len(e.shape) and \
                e.shape[axis] is None else None
            out.append(TensorSpec(e.name, np.dtype(e.dtype),
                                  tuple(-1 if d is None else d for d in e.shape), batch))
        return tuple(out)

    def predict(*arrays):
        return as_list(model.run_flat(list(arrays)))
    inputs, outputs = specs(sig.inputs), specs(sig.outputs)
    # the saved size classes are powers of two: chunks of those sizes run without padding
    return ServableModel(name, inputs, outputs, _in_size_classes(predict, inputs, outputs),
                         "lepton")
