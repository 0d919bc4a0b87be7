"""What a saved model takes and returns: names, shapes and dtypes of the flattened inputs and
outputs, the pytree structure around them, and the batch axis; stored as JSON in the manifest.

    sig = model.signature
    sig.inputs[0]            # TensorSpec(name='x', shape=(None, 784), dtype=dtype('float32'))
    sig.outputs[0].name      # 'output' (a dict result: "output['logits']", ...)
    sig.batch_axis           # 0, or None when every shape is fixed
    sig.input_tree, sig.output_tree   # PyTreeDefs (namedtuples come back as plain namedtuples)

A shape holds None at the batch axis of a model saved with `batch_axis` (any size is taken).
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from ..frontends.pytree import DICT, LEAF, LIST, NAMEDTUPLE, NONE, TUPLE, PyTreeDef
from ..ir.types import dtype as to_dtype


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple            # ints, and None at the batch axis of a batched model
    dtype: np.dtype

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype.name}

    @staticmethod
    def from_json(d) -> "TensorSpec":
        shape = tuple(d["shape"])
        if not all(n is None or (type(n) is int and n >= 0) for n in shape):
            raise ValueError(f"bad shape {d['shape']!r} of {d['name']!r}")
        dt = np.dtype(str(d["dtype"]))
        to_dtype(dt)   # one Lepton supports, or TypeError
        return TensorSpec(str(d["name"]), shape, dt)

    def __str__(self) -> str:
        dims = ",".join("N" if n is None else str(n) for n in self.shape)
        return f"{self.name}: {self.dtype.name}[{dims}]"


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    input_tree: PyTreeDef
    output_tree: PyTreeDef
    batch_axis: int | None = None

    def to_json(self) -> dict:
        return {"inputs": [s.to_json() for s in self.inputs],
                "outputs": [s.to_json() for s in self.outputs],
                "input_tree": tree_to_json(self.input_tree),
                "output_tree": tree_to_json(self.output_tree),
                "batch_axis": self.batch_axis}

    @staticmethod
    def from_json(d) -> "Signature":
        try:
            sig = Signature(tuple(TensorSpec.from_json(s) for s in d["inputs"]),
                            tuple(TensorSpec.from_json(s) for s in d["outputs"]),
                            tree_from_json(d["input_tree"]), tree_from_json(d["output_tree"]),
                            d["batch_axis"])
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"malformed signature in the manifest ({type(e).__name__}: {e})") \
                from None
        if sig.input_tree.num_leaves != len(sig.inputs) or \
                sig.output_tree.num_leaves != len(sig.outputs):
            raise ValueError("malformed signature in the manifest: the pytrees and the tensor "
                             "lists differ in length")
        if sig.batch_axis is not None and type(sig.batch_axis) is not int:
            raise ValueError(f"malformed signature: batch_axis {sig.batch_axis!r}")
        return sig

    def __str__(self) -> str:
        return f"({', '.join(map(str, self.inputs))}) -> ({', '.join(map(str, self.outputs))})"


def tree_to_json(t: PyTreeDef):
    """A pytree structure as JSON: dict keys must be str or int (JSON keeps both apart here)."""
    out = {"kind": t.kind}
    if t.kind == DICT:
        for k in t.meta:
            if type(k) not in (str, int):
                raise TypeError(f"a saved model's pytrees may have str or int dict keys only, "
                                f"got {k!r}")
        out["keys"] = list(t.meta)
    elif t.kind == NAMEDTUPLE:
        out["keys"] = [t.meta.__name__, *t.meta._fields]
    if t.children:
        out["children"] = [tree_to_json(c) for c in t.children]
    return out


def tree_from_json(d) -> PyTreeDef:
    kind = d["kind"]
    children = tuple(tree_from_json(c) for c in d.get("children", ()))
    if kind in (LEAF, NONE):
        return PyTreeDef(kind)
    if kind in (LIST, TUPLE):
        return PyTreeDef(kind, None, children)
    keys = d["keys"]
    if not all(type(k) in (str, int) for k in keys):
        raise ValueError(f"malformed pytree keys {keys!r}")
    if kind == DICT and len(keys) == len(children):
        return PyTreeDef(DICT, tuple(keys), children)
    if kind == NAMEDTUPLE and len(keys) == len(children) + 1:
        # a plain namedtuple of the same name and fields: the user's class is not in the file
        return PyTreeDef(NAMEDTUPLE, collections.namedtuple(keys[0], keys[1:]), children)
    raise ValueError(f"malformed pytree node {d!r}")
