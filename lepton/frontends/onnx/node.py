"""`Node`: one ONNX node as its converter sees it, and `Rule`: a converter and its attributes.

A converter is a function `rule(node) -> Tensor | list[Tensor]` over the node's traced inputs;
`Node` gives it the inputs, the attributes as Python values and, for inputs that must be known
while tracing (shapes, axes, pads), their NumPy values:

    >>> def reshape(n):                      # Reshape(data, shape)
    ...     return n.x(0).reshape(n.ints(1))
    >>> TABLE = {"Reshape": Rule(reshape, ("allowzero",))}

Errors name the node: attributes outside the rule's list and inputs that are not constant raise
NotImplementedError; malformed nodes raise ValueError/TypeError with the node's label in front.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...ir.types import (DType, bfloat16, bool_, float4_e2m1fn, float8_e4m3fn, float8_e4m3fnuz,
                         float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu, float16, float32, float64,
                         int2, int4, int8, int16, int32, int64, uint2, uint4, uint8, uint16,
                         uint32, uint64)
from ..tensor import Tensor

# ONNX TensorProto element types Lepton has (the rest are refused with their ONNX name);
# BFLOAT16, FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, UINT4, INT4, FLOAT4E2M1,
# FLOAT8E8M0, UINT2 and INT2 need the optional package ml_dtypes.
ONNX_DTYPES: dict[int, DType] = {
    1: float32, 2: uint8, 3: int8, 4: uint16, 5: int16, 6: int32, 7: int64, 9: bool_,
    10: float16, 11: float64, 12: uint32, 13: uint64,
    **{k: d for k, d in ((16, bfloat16), (17, float8_e4m3fn), (18, float8_e4m3fnuz),
                         (19, float8_e5m2), (20, float8_e5m2fnuz), (21, uint4), (22, int4),
                         (23, float4_e2m1fn), (24, float8_e8m0fnu), (25, uint2),
                         (26, int2)) if d.np is not None}}


def onnx_type_name(elem_type: int) -> str:
    from onnx import TensorProto
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"element type {elem_type}"


@dataclass(frozen=True)
class Rule:
    """How one ONNX op type becomes traced ops; `attrs` lists every attribute it understands,
    `consts` the inputs whose values it needs while tracing (shapes, axes, pads): a graph input
    they depend on is specialised on its value (loader.py). `domain` is the op's ONNX domain
    ("" the default one, "ai.onnx.ml", "ai.onnx.preview"): a node must name the same."""
    fn: Callable[["Node"], object]
    attrs: tuple[str, ...] = ()
    consts: tuple[int, ...] = ()
    domain: str = ""


def _attr_value(a):
    from onnx import AttributeProto, helper, numpy_helper
    if a.type == AttributeProto.TENSOR:
        return numpy_helper.to_array(a.t)
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode() for s in v]
    return v


def _relabel(e: Exception, label: str) -> Exception:
    """The same kind of exception with the node's label in front of its message."""
    msg = f"{label}: {e}"
    try:
        return type(e)(msg)
    except Exception:  # an exception class with another constructor
        return ValueError(msg)


class Node:
    """A node under conversion: `x(i)` a required input, `opt(i)` an optional one (None when
    omitted), `const(i)`/`ints(i)` the NumPy value of an input computed from constants
    (`maybe_const(i)`: or None),
    `attr(name, default)`, `n_outputs`, and `unsupported(msg)` / `invalid(msg)` to refuse it."""

    def __init__(self, proto, index: int, opset: int, inputs: list, static):
        self.proto = proto
        self.op_type = proto.op_type
        self.name = proto.name or f"#{index}"
        self.label = f"ONNX node '{self.name}' ({self.op_type})"
        self.loc = f"onnx {self.op_type} '{self.name}'".replace("\n", " ")
        self.opset = opset
        self.inputs = inputs
        self.n_outputs = len(proto.output)
        self.attrs: dict = {}
        self._static = static

    # -- conversion -------------------------------------------------------------------------
    def convert(self, rule: Rule) -> list[Tensor]:
        for a in self.proto.attribute:
            if a.name not in rule.attrs:
                self.unsupported(f"attribute '{a.name}' is not supported")
        self.attrs = {a.name: _attr_value(a) for a in self.proto.attribute}
        try:
            outs = rule.fn(self)
        except NotImplementedError:
            raise
        except (ValueError, TypeError, IndexError) as e:
            if str(e).startswith(self.label):
                raise
            raise _relabel(e, self.label) from e
        outs = [outs] if isinstance(outs, Tensor) else list(outs)
        for k, name in enumerate(self.proto.output[len(outs):], len(outs)):
            if name:
                self.unsupported(f"output {k} ('{name}') is not supported")
        return outs

    # -- inputs -----------------------------------------------------------------------------
    def opt(self, i: int) -> Tensor | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def x(self, i: int) -> Tensor:
        t = self.opt(i)
        if t is None:
            self.invalid(f"input {i} is required")
        return t

    def xs(self) -> list[Tensor]:
        """All inputs, none of which may be omitted (variadic ops)."""
        return [self.x(i) for i in range(len(self.inputs))]

    def maybe_const(self, i: int) -> np.ndarray | None:
        """Input i's value if it is computable from constants, else None."""
        t = self.opt(i)
        return None if t is None else self._static(t)

    def const(self, i: int) -> np.ndarray | None:
        """Input i's value, which must be computable from constants; None when omitted."""
        if self.opt(i) is None:
            return None
        v = self._static(self.inputs[i])
        if v is None:
            self.unsupported(f"input {i} ('{self.proto.input[i]}') depends on the graph's "
                             f"inputs, but Lepton needs it while tracing (shapes are static); "
                             f"it must come from initializers, Constant or Shape nodes")
        return v

    def ints(self, i: int) -> tuple[int, ...] | None:
        v = self.const(i)
        return None if v is None else tuple(int(a) for a in np.asarray(v).reshape(-1))

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    # -- refusing ---------------------------------------------------------------------------
    def unsupported(self, msg: str):
        raise NotImplementedError(f"{self.label}: {msg}")

    def invalid(self, msg: str, exc=ValueError):
        raise exc(f"{self.label}: {msg}")
