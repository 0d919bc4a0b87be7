"""The NumPy reference interpreter: the oracle every compiled result is tested against.

    >>> interpret(g, x, w)      # -> list of NumPy arrays, one per graph output
"""
from __future__ import annotations

import numpy as np

from . import halfs
from .graph import Graph, Value
from .types import TensorType, TupleType, _BY_NUMPY


def bind_inputs(g: Graph, arrays) -> list[np.ndarray]:
    """Checks arity, dtype and shape of each argument against the graph's parameters."""
    if len(arrays) != len(g.inputs):
        raise TypeError(f"graph @{g.name} takes {len(g.inputs)} arguments, got {len(arrays)}")
    out = []
    for i, (v, a) in enumerate(zip(g.inputs, arrays)):
        a = np.asarray(a)
        if TensorType.of(a) != v.type if a.dtype in _BY_NUMPY else True:
            raise TypeError(f"argument {i}: expected {v.type}, got {a.dtype}{list(a.shape)}")
        out.append(a)
    return out



def evaluate(g: Graph, arrays) -> dict[Value, np.ndarray]:
    """Every value of g computed by its op's NumPy reference."""
    env: dict[Value, np.ndarray] = dict(zip(g.inputs, bind_inputs(g, arrays)))
    for v in g.nodes:
        if v.op == "input":
            continue
        out_types = v.type.types if isinstance(v.type, TupleType) else [v.type]
        try:
            ins = [env[i] for i in v.inputs]
            if halfs.touches_halfs(v.op, [i.type for i in v.inputs] + list(out_types)):
                out = halfs.compute(v.opdef.ref, ins, v.attrs, out_types)   # in float32
            else:
                out = v.opdef.ref(ins, v.attrs)
        except IndexError as e:  # indices are data: the error names the user's line
            raise IndexError(f"{e} at {v.loc}" if v.loc else str(e)) from None
        # a tuple-typed op (scan, cond, ...) gives one array per result
        tuple_typed = isinstance(v.type, TupleType)
        outs = [np.asarray(o) for o in out] if tuple_typed else [np.asarray(out)]
        for o, t in zip(outs, v.type.types if tuple_typed else [v.type]):
            if o.shape != t.shape or o.dtype != t.dtype.np:
                raise AssertionError(f"reference of {v.op} gave {o.dtype}{list(o.shape)}, "
                                     f"expected {t}")
        env[v] = tuple(outs) if tuple_typed else outs[0]
    return env


def interpret(g: Graph, *arrays) -> list[np.ndarray]:
    """Runs g on NumPy arrays and returns its outputs (fresh arrays)."""
    env = evaluate(g, arrays)
    return [np.array(env[o]) for o in g.outputs]
