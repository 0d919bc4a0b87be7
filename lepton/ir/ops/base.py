"""`OpDef`: one record per op holding its name, kind, arity, attributes, type rule, NumPy
reference and VJP rule, and the facts the compiler reads about it (whether a kernel computes it,
is it commutative, may it be a GEMM epilogue, is it expensive). Codegen keeps its lowering in a
table keyed by the same names and checks at import that every op that needs one has one.

    >>> EXP = OpDef("exp", "elementwise", 1, (), infer=same_type, ref=lambda xs, a: np.exp(xs[0]),
    ...             vjp=lambda e, out, ct: (e.mul(ct, out),))

A VJP rule `vjp(e, out, ct)` gets an `lepton.ir.emit.Emitter` `e` (it appends IR to the graph
being differentiated), the primal value `out` (its `.inputs` and `.attrs` are the op's) and the
cotangent `ct` (same type as `out`); it returns one cotangent Value per input, of that input's
type, or None where no gradient flows (integer inputs, conditions). Ops through which no
gradient flows at all (comparisons, argmax, sources) say so with `vjp=NONDIFF`; every op must
have one or the other (checked when the table is built).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..types import DType, TensorType


class OpError(ValueError):
    """A malformed op application; the message names the op and the user's source line."""

    def __init__(self, msg: str, op: str | None = None, loc: str | None = None):
        where = "".join([f" in op '{op}'" if op else "", f" at {loc}" if loc else ""])
        super().__init__(f"{msg}{where}")
        self.op, self.loc = op, loc


class GradientError(TypeError):
    """A function or graph that cannot be differentiated as asked (names what and why)."""


class _NonDiff:
    """The marker of ops through which no gradient flows (their outputs are not real-valued
    functions of their inputs, or they have no inputs)."""
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NONDIFF"


NONDIFF = _NonDiff()


@dataclass(frozen=True)
class OpDef:
    name: str
    # source | elementwise | reduce | movement | matmul | conv | pool | check | control
    kind: str
    arity: Optional[int]           # None: variadic, at least one input
    attrs: tuple[str, ...]         # the attribute names, all required
    infer: Callable[[tuple[TensorType, ...], dict], TensorType]
    ref: Callable[[list[np.ndarray], dict], np.ndarray]
    # (emitter, out, ct) -> one cotangent or None per input; or NONDIFF. None: missing (an error)
    vjp: Optional[Callable] = None
    # ops whose compiled kernel can fail at run time (a check of data): attrs -> the message of
    # the IndexError the call raises (the runtime appends the user's line)
    runtime_error: Optional[Callable[[dict], str]] = None
    # ops written in other ops: (emitter, value) -> the Value that replaces it; the pipeline's
    # first pass (`expand`) applies it, so such an op needs no kernel of its own
    expand: Optional[Callable] = None
    # -- facts the compiler reads (fusion, canonicalisation, CSE, memory planning, lowering) --
    # computed by a kernel: False for a source, a free view (reshape) and a `get` (its control
    # op's kernel writes it); such a value never gets a fusion group or a buffer of its own
    kernel: bool = True
    commutative: bool = False      # op(a, b) == op(b, a): canonical operand order, CSE
    epilogue: bool = False         # may run in a GEMM's or convolution's store (elementwise)
    expensive: bool = False        # a transcendental: a fused kernel computes it once per element

    @functools.cached_property
    def _attr_set(self) -> frozenset:
        return frozenset(self.attrs)

    @property
    def lowered(self) -> bool:
        """Whether codegen needs a kernel for this op (not expanded first, not kernel-free)."""
        return self.kernel and self.expand is None

    def check(self, inputs, attrs: dict, loc: str | None):
        """Returns (canonical attrs, result type) for inputs (Values) or raises OpError."""
        n, arity = len(inputs), self.arity
        if arity is None:
            if not n:
                raise OpError("expected at least one input", self.name, loc)
        elif n != arity:
            raise OpError(f"expected {arity} inputs, got {n}", self.name, loc)
        if not self.attrs:
            if attrs:
                raise OpError(f"expected no attributes, got {sorted(attrs)}", self.name, loc)
            attrs = {}
        else:
            if attrs.keys() != self._attr_set:
                raise OpError(f"expected attributes {sorted(self.attrs)}, got {sorted(attrs)}",
                              self.name, loc)
            # a constant's value stays an array (a NumPy scalar becomes a 0-d one)
            attrs = {k: np.asarray(attrs[k]) if k == "value" else canonical_attr(attrs[k])
                     for k in self.attrs}
        try:
            if n == 2:
                return attrs, self.infer((inputs[0].type, inputs[1].type), attrs)
            if n == 1:
                return attrs, self.infer((inputs[0].type,), attrs)
            return attrs, self.infer(tuple([i.type for i in inputs]), attrs)
        except (ValueError, TypeError, IndexError) as e:
            raise OpError(str(e), self.name, loc) from None


def canonical_attr(v):
    """Attributes are ints, floats, bools, strings, DTypes, tuples of those, (constant) arrays,
    or Graphs (the regions of control-flow ops)."""
    t = type(v)
    if t is int or t is str or t is float or t is bool:   # the common case, first
        return v
    if t is tuple:
        for x in v:
            if type(x) is not int:
                break
        else:
            return v
    from ..graph import Graph  # the graph module imports this table
    if isinstance(v, Graph):
        return v
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return tuple(canonical_attr(x) for x in v)
    if isinstance(v, (str, DType, np.ndarray)):
        return v
    raise TypeError(f"unsupported attribute value {v!r}")


# -- shared shape rules ------------------------------------------------------------------------
def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """NumPy broadcasting of shapes; raises ValueError naming both when incompatible."""
    first = shapes[0]
    for s in shapes:
        if s != first:
            break
    else:
        return first
    if len(shapes) == 2:    # the common case (a binary op): one pass, no sets
        a, b = shapes
        if len(a) < len(b):
            a, b = b, a
        off = len(a) - len(b)
        out = list(a)
        for i, d in enumerate(b):
            e = a[off + i]
            if d != e:
                if e == 1:
                    out[off + i] = d
                elif d != 1:
                    raise ValueError(f"shapes {' and '.join(map(str, shapes))} do not broadcast")
        return tuple(out)
    nd = max(len(s) for s in shapes)
    out = []
    for i in range(nd):
        dims = {s[len(s) - nd + i] for s in shapes if len(s) - nd + i >= 0} - {1}
        if len(dims) > 1:
            raise ValueError(f"shapes {' and '.join(map(str, shapes))} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def same_dtype(types, what="inputs") -> DType:
    first = types[0].dtype
    for t in types:
        if t.dtype is not first:
            break
    else:
        return first
    dts = {t.dtype for t in types}
    if len(dts) != 1:
        raise TypeError(f"{what} must share one dtype, got {', '.join(str(t) for t in types)}")
    return dts.pop()


def check_axes(axes, ndim: int, name="axes") -> None:
    if len(axes) == 1 and type(axes[0]) is int and 0 <= axes[0] < ndim:
        return  # (the common case)
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < ndim for a in axes):
        raise ValueError(f"{name}={axes} must be sorted, unique and in [0, {ndim})")
