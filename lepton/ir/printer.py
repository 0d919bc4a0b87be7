"""The text form of a graph: one typed op per line, attributes in brackets, values numbered by
position, the user's source line as a trailing comment.

    graph @main(%0: f32[64,784], %1: f32[784,10]) {
      %2: f32[64,10] = matmul %0, %1  # model.py:7
      %3: f32[64] = sum[axes=(1,), keepdims=False] %2
      return %3
    }
"""
from __future__ import annotations

import base64
import math

import numpy as np

from .graph import Graph
from .types import DType, is_float_numpy

# Constants with more elements than this (or holding a NaN of a payload or sign of its own)
# print as base64 of their little-endian bytes.
INLINE_LIMIT = 8


def format_attr(v) -> str:
    if isinstance(v, bool):
        return repr(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else
                                                   ("inf" if v > 0 else "-inf"))
    if isinstance(v, (int, str)):
        return repr(v)
    if isinstance(v, DType):
        return v.name
    if isinstance(v, tuple):
        inner = ", ".join(format_attr(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, np.ndarray):
        return format_array(v)
    raise TypeError(f"cannot print attribute {v!r}")


def _odd_nan(a: np.ndarray) -> bool:
    """Whether a float array holds a NaN other than the one `nan` parses back to (a sign or
    payload of its own, as bitcasts make), which only its bytes spell exactly."""
    if not is_float_numpy(a.dtype) or a.size == 0:
        return False
    nan = np.isnan(a.astype(np.float32) if a.dtype.itemsize < 4 else a)
    if not nan.any():
        return False
    u = f"u{a.dtype.itemsize}"
    return bool(np.any(a[nan].view(u) != np.array(np.nan, a.dtype).view(u)))


def format_array(a: np.ndarray) -> str:
    if a.size > INLINE_LIMIT or _odd_nan(a):
        data = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False)
        return '"' + base64.b64encode(data.tobytes()).decode() + '"'

    def item(x):
        if a.dtype == np.bool_:
            return repr(bool(x))
        if is_float_numpy(a.dtype):
            return format_attr(float(x)) if not math.isfinite(x) else str(x)
        return str(int(x))

    def nest(x):
        if x.ndim == 0:
            return item(x[()])
        return "[" + ", ".join(nest(r) for r in x) + "]"
    return nest(a)


def print_graph(g, locs: bool = True, indent: str = "") -> str:
    """The text form; locs=False leaves out source locations (the canonical form for keys).
    A region (a Graph attribute of a control-flow op) follows its op's line, indented, as
    `name = graph @...(...) { ... }`, numbered on its own from %0."""
    names: dict = {}
    for i, v in enumerate(g.nodes):
        names[v] = f"%{i}"
    params = ", ".join(f"{names[v]}: {v.type}" for v in g.inputs)
    lines = [f"{indent}graph @{g.name}({params}) {{"]
    for v in g.nodes:
        if v.op == "input":
            continue
        attrs = ", ".join(f"{k}={format_attr(x)}" for k, x in v.attrs.items()
                          if not isinstance(x, Graph))
        text = f"{indent}  {names[v]}: {v.type} = {v.op}"
        if attrs:
            text += f"[{attrs}]"
        if v.inputs:
            text += " " + ", ".join(names.get(i, "%?") for i in v.inputs)
        if v.loc and locs:
            text += f"  # {v.loc}"
        lines.append(text)
        for k, x in v.attrs.items():
            if isinstance(x, Graph):
                lines.append(f"{indent}    {k} = " + print_graph(x, locs, indent + "    ").lstrip())
    lines.append(f"{indent}  return " + ", ".join(names.get(o, "%?") for o in g.outputs))
    lines.append(f"{indent}}}")
    return "\n".join(lines)
