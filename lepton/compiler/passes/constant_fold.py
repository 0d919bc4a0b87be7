"""Constant folding: an op whose inputs are all constants is computed now, with its NumPy
reference (`OpDef.ref`), and becomes a constant.

    %1: f32[] = constant[value=2.0]
    %2: f32[] = exp %1                    ->   %2: f32[] = constant[value=7.389056]

Splats (one value repeated) stay lazy: a folded result whose elements are all equal becomes
`broadcast_to` of a 0-d constant, and such a splat counts as a constant input, so
`neg(broadcast_to(1.0, (1000, 1000)))` folds to `broadcast_to(-1.0, (1000, 1000))` without
materialising a million elements; elementwise ops, reshapes, transposes, slices and
broadcasts of splats are computed on the scalar. Other results are materialised up to
FOLD_LIMIT elements, or beyond when no bigger than the constants they come from (a transposed
weight of `lp.compile(model, freeze=True)`), else the op is left to run. An op whose reference
raises (an out-of-range `take`) is left alone: the error stays where the program put it.

    g2 = constant_fold(g, counts)     # counts: {"fold": n, "splat": m}
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ...ir.graph import Graph, Value
from ...ir import halfs
from ...ir.ops import OPS
from .rewrite import Rule, RuleSet, op, rewrite, splat, value_of

FOLD_LIMIT = 1024
_SOURCES = {"input", "constant"}
_CONTROL = {n for n, d in OPS.items() if d.kind == "control"}  # folded inside their regions
_SPLAT_MOVES = {"reshape", "transpose", "broadcast_to", "slice"}


def splat_scalar(v: Value) -> np.ndarray | None:
    """The 0-d value of a splat (`broadcast_to` of a one-element constant), else None."""
    if v.op == "broadcast_to":
        c = v.inputs[0]
        if c.op == "constant" and c.type.size == 1:
            return value_of(c).reshape(())
    return None


def is_uniform(a: np.ndarray) -> bool:
    """Whether a (size > 1) holds one value, bit for bit (so -0.0 and 0.0 differ)."""
    if a.size < 2:
        return False
    flat = np.ascontiguousarray(a).reshape(-1)
    bits = flat.view(f"u{flat.itemsize}" if flat.itemsize > 1 else np.uint8)
    first = bits[0]
    # cheap rejections first: big non-uniform constants rarely agree at both ends
    return bool(bits[-1] == first and bits[bits.size // 2] == first and np.all(bits == first))


def _result(b, res: np.ndarray, r: Value, budget: int):
    """A Value for the computed `res` (r's type), or None when too big to materialise."""
    if res.shape != r.shape or res.dtype != r.dtype.np:
        return None  # a reference that disagrees with the type rule: leave the op alone
    if is_uniform(res):
        return splat(b, b.const(res.reshape(-1)[0].reshape(())), r.shape)
    if res.size <= FOLD_LIMIT or res.nbytes <= budget:
        return b.const(res)
    return None


def _fold(b):
    r = b.root
    args, budget, lazy = [], 0, False
    for v in r.inputs:
        if v.op == "constant":
            args.append(value_of(v))
            budget += v.type.nbytes
        else:
            s = splat_scalar(v)
            if s is None:
                return None
            args.append(s)
            lazy = True
    if r.op == "broadcast_to":
        c = r.inputs[0]
        if c.type.size == 1:  # a splat already; make its scalar 0-d
            return None if c.type.ndim == 0 else splat(b, b.const(args[0].reshape(())), r.shape)
        if r.type.size > FOLD_LIMIT:
            return None  # keep a big broadcast of a constant lazy
    if lazy:
        if r.op in _SPLAT_MOVES:
            return splat(b, b.const(args[0]), r.shape)
        if r.opdef.kind != "elementwise":
            if r.type.size > FOLD_LIMIT or any(v.type.size > FOLD_LIMIT for v in r.inputs):
                return None
            args = [np.broadcast_to(a, v.shape) for a, v in zip(args, r.inputs)]
    try:
        with np.errstate(all="ignore"):  # inf and nan are values like any other here
            res = np.asarray(halfs.reference(r.opdef, args, r.attrs, [r.type]))
    except Exception:  # noqa: BLE001 - any failure of a reference means: do not fold
        return None
    if lazy and res.shape != r.shape and r.opdef.kind == "elementwise":
        # computed on the splats' scalars: broadcast the (smaller) result back
        if is_uniform(res) or res.size == 1:
            return splat(b, b.const(res.reshape(-1)[0].reshape(())), r.shape)
        if r.type.size <= FOLD_LIMIT:
            return b.const(np.broadcast_to(res, r.shape))
        return b.op("broadcast_to", b.const(res), shape=r.shape)
    return _result(b, res, r, budget)


def _splat_constant(b):
    """A constant holding one value many times becomes a lazy splat."""
    v = value_of(b.root)
    if not is_uniform(v):
        return None
    return splat(b, b.const(v.reshape(-1)[0].reshape(())), b.root.shape)


RULES = [
    Rule("fold", op(set(OPS) - _SOURCES - _CONTROL, only=("constant", "broadcast_to")), _fold),
    Rule("splat", op("constant"), _splat_constant),
]
_RULES = RuleSet(RULES)


def constant_fold(g: Graph, counts: Counter | None = None) -> Graph:
    """g with every foldable op replaced by a constant (a new graph; g is not changed)."""
    return rewrite(g, _RULES, counts)
