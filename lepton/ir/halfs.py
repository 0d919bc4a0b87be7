"""Small floats (float16, bfloat16 and the 8-bit floats float8_e4m3fn, float8_e4m3fnuz,
float8_e5m2, float8_e5m2fnuz): stored in their own 16 or 8 bits, computed in float32.

An op that only moves or selects values (`MOVES`) works on them as they are; every other op
on them computes in float32 and rounds its small-float results once, to nearest even (as
NumPy's and ml_dtypes' `astype` does: an 8-bit float's overflow is its NaN, or inf for e5m2):

    add(x: f16, y: f16)  ==  cast(add(cast(x, f32), cast(y, f32)), f16)
    sum(x: bf16)         ==  cast(sum(cast(x, f32)), bf16)       # accumulated in float32

The interpreter follows this rule (`compute`), and the compiler's pass `widen` rewrites the
graph by it before code generation, so compiled code and interpreter agree to the bit on
+ - * / sqrt (float32 holds a small float's exact result before its one rounding).
(The module keeps the name it had when float16 and bfloat16 were the only small floats.)
"""
from __future__ import annotations

import numpy as np

from .types import DType, TensorType, float32

# ops whose results are some of their operands' elements, unchanged (or a constant)
MOVES = frozenset(["input", "constant", "reshape", "transpose", "broadcast_to", "slice",
                   "concatenate", "take", "check_index", "pad", "cast", "where",
                   "stop_gradient", "get", "scan", "cond", "while_loop"])


def compute_dtype(d: DType) -> DType:
    """The dtype an op computes a `d` value in: float32 for small floats, else d itself."""
    return float32 if d.is_small_float else d


def touches_halfs(op: str, types) -> bool:
    """Whether an op (not one of MOVES) reads or gives a small float."""
    return op not in MOVES and any(isinstance(t, TensorType) and t.dtype.is_small_float
                                   for t in types)


def reference(opdef, xs, attrs, out_types=None):
    """opdef.ref(xs, attrs) by the rule above (on NumPy arrays). out_types: the op's result
    types; None means its small-float results have the dtype of its first small-float operand."""
    xs = [np.asarray(x) for x in xs]
    ins = [TensorType.of(x) for x in xs]
    if out_types is None:
        half = next((t for t in ins if t.dtype.is_small_float), None)
        if opdef.name in MOVES or half is None:
            return opdef.ref(xs, attrs)
        return compute(opdef.ref, xs, attrs, None, half.dtype)
    if not touches_halfs(opdef.name, ins + list(out_types)):
        return opdef.ref(xs, attrs)
    return compute(opdef.ref, xs, attrs, out_types)


def compute(ref, xs, attrs, out_types, half: DType | None = None):
    """Runs an op's NumPy reference as the rule says: small-float operands widened to
    float32, results rounded back to the small-float dtypes the op gives (out_types; or, when
    None, float results to `half`)."""
    if out_types is None:
        out = ref([x.astype(np.float32) if TensorType.of(x).dtype.is_small_float else x for x in xs],
                  attrs)
        out = np.asarray(out)
        return _narrow(out, TensorType(half, out.shape)) if out.dtype.kind == "f" else out
    wide = [x.astype(np.float32) if TensorType.of(x).dtype.is_small_float else x for x in xs]
    with np.errstate(all="ignore"):
        out = ref(wide, attrs)
    if isinstance(out, (tuple, list)):
        return type(out)(_narrow(o, t) for o, t in zip(out, out_types))
    return _narrow(out, out_types[0])


def _narrow(o, t: TensorType):
    o = np.asarray(o)
    with np.errstate(all="ignore"):   # beyond the range: inf (or NaN), as a cast gives
        return o.astype(t.dtype.np) if t.dtype.is_small_float and o.dtype != t.dtype.np else o
