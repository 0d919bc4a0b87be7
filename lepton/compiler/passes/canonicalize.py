"""Canonicalisation and algebraic simplification: the rules, as data, run by `rewrite.py`.

    %2 = mul %0, %1      (%1 = constant 1.0)      ->   uses of %2 read %0
    %3 = div %0, %1      (%1 = constant 8.0)      ->   %3 = mul %0, 0.125

Every rule keeps the value's type (the driver enforces it), so a no-op that broadcasts (x * 1
with x smaller than the result) stays. Rules are exact in IEEE arithmetic except where noted:
`x + 0 -> x` turns -0 + 0 (= +0) into -0; `x / c -> x * (1/c)` may differ in the last bit
unless c is a power of two; `exp(log x) -> x` and `log(exp x) -> x` ignore that log is NaN
for x < 0 and exp overflows (as the algebra, and XLA, do). `x * 0` is NOT simplified for
floats (inf * 0 and NaN * 0 are NaN), only for integers.

Canonical forms other passes can count on: a constant operand of a commutative op sits on
the right; an elementwise op reads values in their own shape, not through a broadcast_to that
its implicit broadcasting already does; a broadcast scalar is `broadcast_to` of a 0-d value;
a transpose that moves only size-1 axes is a reshape (a free view, not a copy).

    g2 = canonicalize(g, counts)     # counts: Counter of rule applications
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ...ir.graph import Graph
from ...ir.ops import OPS, broadcast_shapes
from ...ir.types import DTYPES, DType, bfloat16, bool_, float16, float32, float64
from .rewrite import (Rule, RuleSet, const, is_scalar_const, op, rewrite, scalar_of, splat,
                      value_of, var)

ELEMENTWISE = frozenset(n for n, d in OPS.items() if d.kind == "elementwise")
COMMUTATIVE = frozenset(n for n, d in OPS.items() if d.commutative)
REDUCTIONS = frozenset(["sum", "prod", "max", "min"])
SPLAT_MOVES = frozenset(["reshape", "transpose", "broadcast_to", "slice"])



def _holds(mid: DType, d: DType) -> bool:
    """Whether dtype `mid` represents every value of dtype d."""
    if d == bool_:
        return mid != bool_
    if d.is_float:
        return mid.is_float and (mid == float64 or (mid == float32 and d.is_small_float))
    if mid.is_int:
        return (mid.bits > d.bits if mid.unsigned != d.unsigned and d.unsigned else
                mid.bits >= d.bits and (mid.unsigned == d.unsigned))
    digits = {float16: 11, bfloat16: 8, float32: 24, float64: 53}.get(mid, 0)
    return digits >= d.bits - (0 if d.unsigned else 1)


# cast(cast(x, mid), x.dtype) == x when `mid` represents every value of x's dtype.
LOSSLESS = {d: {m for m in DTYPES.values() if m != d and _holds(m, d)} for d in DTYPES.values()}

x, y = var("x"), var("y")


# -- rewrites that need more than one line --------------------------------------------------------
def _commute(b, c, x):
    if x.op == "constant":
        return None  # both constant: constant folding's business
    return b.op(b.root.op, x, c)


def _sub_const(b, x, c):
    if x.op == "constant" or c.dtype == bool_:
        return None
    return b.op("add", x, b.const(b.eval("neg", value_of(c))))


def _div_const(b, x, c):
    if x.op == "constant":
        return None
    v = value_of(c)
    with np.errstate(all="ignore"):
        inv = (1 / v).astype(v.dtype)
    if not np.all(np.isfinite(inv) | (v == 0)):
        return None  # 1/c overflows for a subnormal c: x / c and x * inf differ
    return b.op("mul", x, b.const(inv))


def _negated_const(b, x, c):
    return b.op("mul", x, b.const(b.eval("neg", value_of(c))))


def _mul_zero_int(b, x, c):
    if not b.root.dtype.is_int:
        return None
    return splat(b, b.const(np.zeros((), b.root.dtype.np)), b.root.shape)


def _same_inner(b, inner, **_):
    return inner if inner.op == b.root.op else None


def _cast_same(b, x):
    return x if b.root.dtype == x.dtype else None


def _cast_roundtrip(b, x, mid):
    return x if b.root.dtype == x.dtype and mid.dtype in LOSSLESS[x.dtype] else None


def _bitcast_bitcast(b, x):
    """Bits read as `mid`, then as the result's dtype, are x's bits read as it (all three have
    one width); back to x's own dtype it is x."""
    return x if b.root.dtype == x.dtype else b.op("bitcast", x, dtype=b.root.dtype)


def _implicit_broadcast(b):
    """Elementwise ops broadcast their inputs themselves: read broadcast_to's input instead of
    its result, a one-element value instead of its reshape, and 0-d constants instead of
    one-element ones, while the result shape stays. (Not any reshape: reading a (2, 1) value
    instead of its (1, 2) reshape keeps the shape against a (2, 2) one but moves the values.)"""
    r = b.root
    ins = list(r.inputs)
    changed = False
    for i, v in enumerate(ins):
        if v.op == "broadcast_to" or (v.op == "reshape" and v.type.size == 1):
            cand = v.inputs[0]
        elif is_scalar_const(v) and v.type.ndim > 0:
            cand = scalar_of(b, v)
        else:
            continue
        trial = ins[:i] + [cand] + ins[i + 1:]
        if broadcast_shapes(*(t.shape for t in trial)) == r.shape:
            ins, changed = trial, True
    return b.op(r.op, *ins, **r.attrs) if changed else None


def _into_select(b):
    """op(where(c, k1, k2), k...) with one-element constants k -> where(c, op(k1, k), op(k2, k))."""
    r = b.root
    sel = None
    for v in r.inputs:
        if (sel is None and v.op == "where" and is_scalar_const(v.inputs[1])
                and is_scalar_const(v.inputs[2])):
            sel = v
        elif not is_scalar_const(v):
            return None
    if sel is None:
        return None

    def at(k):
        args = [value_of(k if v is sel else v).reshape(()) for v in r.inputs]
        return b.const(b.eval(r.op, *args, **r.attrs))
    return b.op("where", sel.inputs[0], at(sel.inputs[1]), at(sel.inputs[2]))


def _splat_move(b, y):
    if y.type.size != 1:
        return None
    return splat(b, scalar_of(b, y), b.root.shape)


def _broadcast_size_one(b, x):
    if x.type.size != 1 or x.type.ndim == 0:
        return None
    return splat(b, scalar_of(b, x), b.root.shape)


def _compose_transposes(b, x, inner):
    p1, p2 = inner.attrs["perm"], b.root.attrs["perm"]
    return b.op("transpose", x, perm=tuple(p1[p] for p in p2))


def _identity_perm(b, x):
    return x if b.root.attrs["perm"] == tuple(range(x.type.ndim)) else None


def _transpose_as_reshape(b, x):
    """A transpose that keeps the order of the axes longer than 1 moves no data."""
    moved = [p for p in b.root.attrs["perm"] if x.shape[p] != 1]
    return b.op("reshape", x, shape=b.root.shape) if moved == sorted(moved) else None


def _reduce_size_one(b, x):
    if all(x.shape[a] == 1 for a in b.root.attrs["axes"]):
        return b.op("reshape", x, shape=b.root.shape)
    return None


def _whole_slice(b, x):
    a = b.root.attrs
    if (all(s == 0 for s in a["starts"]) and tuple(a["stops"]) == x.shape
            and all(s == 1 for s in a["steps"])):
        return x
    return None


def _concat_single(b):
    return b.root.inputs[0] if len(b.root.inputs) == 1 else None


# Order matters only among rules for the same op: the first that applies wins.
RULES = [
    # constants to the right of commutative ops, so the rules below need one form
    Rule("commute-const", op(COMMUTATIVE, const("c"), x), _commute),
    # identities (the driver keeps a result only where it has the value's type)
    Rule("mul-by-one", op("mul", x, const("c", 1)), lambda b, x, c: x),
    Rule("add-zero", op("add", x, const("c", 0)), lambda b, x, c: x),
    Rule("sub-zero", op("sub", x, const("c", 0)), lambda b, x, c: x),
    Rule("div-by-one", op("div", x, const("c", 1)), lambda b, x, c: x),
    Rule("pow-one", op("pow", x, const("c", 1)), lambda b, x, c: x),
    Rule("mul-zero-int", op("mul", x, const("c", 0)), _mul_zero_int),
    # differentiation is over by the time the pipeline runs
    Rule("stop-gradient", op("stop_gradient", x), lambda b, x: x),
    # cheaper forms
    Rule("pow-two", op("pow", x, const("c", 2)), lambda b, x, c: b.op("square", x)),
    Rule("pow-minus-one", op("pow", x, const("c", -1)), lambda b, x, c: b.op("reciprocal", x)),
    Rule("mul-minus-one", op("mul", x, const("c", -1)), lambda b, x, c: b.op("neg", x)),
    Rule("mul-self", op("mul", x, x), lambda b, x: b.op("square", x)),
    Rule("sub-const", op("sub", x, const("c")), _sub_const),
    Rule("div-const", op("div", x, const("c")), _div_const),
    # negations
    Rule("double-neg", op("neg", op("neg", x)), lambda b, x: x),
    Rule("add-neg", op("add", x, op("neg", y), commute=True), lambda b, x, y: b.op("sub", x, y)),
    Rule("sub-neg", op("sub", x, op("neg", y)), lambda b, x, y: b.op("add", x, y)),
    Rule("neg-mul-const", op("neg", op("mul", x, const("c"))), _negated_const),
    Rule("mul-neg-const", op("mul", op("neg", x), const("c")), _negated_const),
    Rule("abs-neg", op("abs", op("neg", x)), lambda b, x: b.op("abs", x)),
    Rule("square-neg", op("square", op("neg", x)), lambda b, x: b.op("square", x)),
    # inverse and idempotent functions
    Rule("exp-log", op("exp", op("log", x)), lambda b, x: x),
    Rule("log-exp", op("log", op("exp", x)), lambda b, x: x),
    Rule("idempotent", op(("relu", "abs"), op(("relu", "abs"), name="inner")), _same_inner),
    # casts and selects
    Rule("cast-same", op("cast", x), _cast_same),
    Rule("cast-roundtrip", op("cast", op("cast", x, name="mid")), _cast_roundtrip),
    Rule("bitcast-same", op("bitcast", x), _cast_same),
    Rule("bitcast-bitcast", op("bitcast", op("bitcast", x)), _bitcast_bitcast),
    Rule("where-same", op("where", var("c"), x, x), lambda b, c, x: x),
    Rule("into-select", op(ELEMENTWISE - {"where"}, having="where", only=("where", "constant")),
         _into_select),
    # broadcasting
    Rule("implicit-broadcast",
         op(ELEMENTWISE, having=("broadcast_to", "reshape", "constant")), _implicit_broadcast),
    Rule("splat-move", op(SPLAT_MOVES, op("broadcast_to", y)), _splat_move),
    Rule("broadcast-same", op("broadcast_to", x), lambda b, x: x),
    Rule("broadcast-size-one", op("broadcast_to", x), _broadcast_size_one),
    Rule("broadcast-broadcast", op("broadcast_to", op("broadcast_to", x)),
         lambda b, x: b.op("broadcast_to", x, shape=b.root.shape)),
    # shapes
    Rule("reshape-same", op("reshape", x), lambda b, x: x),
    Rule("reshape-reshape", op("reshape", op("reshape", x)),
         lambda b, x: b.op("reshape", x, shape=b.root.shape)),
    Rule("transpose-identity", op("transpose", x), _identity_perm),
    Rule("transpose-as-reshape", op("transpose", x), _transpose_as_reshape),
    Rule("transpose-transpose", op("transpose", op("transpose", x, name="inner")),
         _compose_transposes),
    Rule("reduce-size-one", op(REDUCTIONS, x), _reduce_size_one),
    Rule("slice-whole", op("slice", x), _whole_slice),
    Rule("concat-single", op("concatenate"), _concat_single),
]
_RULES = RuleSet(RULES)


def canonicalize(g: Graph, counts: Counter | None = None) -> Graph:
    """g with RULES applied to a fixed point (a new graph; g is not changed)."""
    return rewrite(g, _RULES, counts)
