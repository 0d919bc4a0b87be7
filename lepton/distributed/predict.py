"""`predict(model, x)`: batch inference with the rows of x spread over the ranks.

    y = dist.predict(model, x)     # rank 0 passes x, the others None; rank 0 gets y, others None

Rank 0 scatters the rows of x (`Scatterv`: rank r gets n // size rows, plus one for the first
n % size ranks, so any batch size works), every rank runs the compiled model on its rows, and
rank 0 gathers the rows of the results in order (`Gatherv`). `model` is an `lp.nn.Module`
(compiled once per module with `lp.compile`, the mode it is in included) or any callable from
an array to an array, e.g. a compiled function or a loaded `.lepton` model's `predict`.
"""
from __future__ import annotations

import weakref

import numpy as np

from ..compile import compile as _compile
from ..nn import Module
from .comm import init, mpi

_compiled: "weakref.WeakKeyDictionary[Module, object]" = weakref.WeakKeyDictionary()


def predict(model, x):
    """model(x) computed over all ranks; the result on rank 0, None on the others."""
    world = init()
    fn = _callable(model)
    n_ranks, me = world.Get_size(), world.Get_rank()
    if n_ranks == 1:
        return fn(_rows(x))
    if me == 0:
        x = _rows(x)
        head = (x.shape, x.dtype.str)
    head = world.bcast(head if me == 0 else None, root=0)
    shape, dtype = head[0], np.dtype(head[1])
    if shape[0] == 0:
        return fn(x) if me == 0 else None
    rows = [shape[0] // n_ranks + (r < shape[0] % n_ranks) for r in range(n_ranks)]
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    mine = np.empty((rows[me], *shape[1:]), dtype)
    world.Scatterv(_bytes_spec(x if me == 0 else None, rows, row_bytes), _as_bytes(mine), root=0)
    y = fn(mine) if rows[me] else None
    if y is not None:
        y = np.ascontiguousarray(y)
        if y.ndim == 0 or y.shape[0] != rows[me]:
            raise ValueError(f"dist.predict: the model must return one row per input row; "
                             f"it returned shape {y.shape} for {rows[me]} rows")
    metas = world.allgather(None if y is None else (y.shape[1:], y.dtype.str))
    given = {m for m in metas if m is not None}
    if len(given) != 1:
        raise ValueError(f"dist.predict: the ranks' results differ in row shape or dtype: "
                         f"{sorted(given)}")
    row_shape, out_dtype = given.pop()
    out_dtype = np.dtype(out_dtype)
    out_row_bytes = int(np.prod(row_shape, dtype=np.int64)) * out_dtype.itemsize
    out = np.empty((shape[0], *row_shape), out_dtype) if me == 0 else None
    send = y if y is not None else np.empty((0, *row_shape), out_dtype)
    world.Gatherv(_as_bytes(send), _bytes_spec(out, rows, out_row_bytes), root=0)
    return out


def _callable(model):
    if isinstance(model, Module):
        fn = _compiled.get(model)
        if fn is None:
            fn = _compiled[model] = _compile(model)
        return fn
    if not callable(model):
        raise TypeError(f"dist.predict takes an lp.nn.Module or a callable, got "
                        f"{type(model).__name__}")
    return model


def _rows(x) -> np.ndarray:
    if x is None:
        raise ValueError("dist.predict: rank 0 must pass the input array (the others pass None)")
    x = np.ascontiguousarray(x)
    if x.ndim == 0:
        raise ValueError("dist.predict: x needs a batch axis (rows to spread over the ranks)")
    return x


def _as_bytes(a: np.ndarray):
    """A buffer spec that moves the array's bytes (any dtype, MPI needs no type of its own)."""
    return [a.reshape(-1).view(np.uint8), mpi().BYTE]


def _bytes_spec(a, rows: list[int], row_bytes: int):
    """The root's Scatterv/Gatherv buffer: the ranks' row counts as byte counts and offsets."""
    if a is None:
        return None
    counts = [r * row_bytes for r in rows]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    return [a.reshape(-1).view(np.uint8), counts, offsets, mpi().BYTE]
