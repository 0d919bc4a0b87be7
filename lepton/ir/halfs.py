"""Narrow types: stored in fewer bits than they compute in. The small floats (float16,
bfloat16, the 8-bit floats float8_e4m3fn/e4m3fnuz/e5m2/e5m2fnuz and float4_e2m1fn) compute in
float32; the narrow integers (int4, uint4, int2, uint2) in int32.

An op that only moves or selects values (`MOVES`) works on them as they are; every other op
on them computes in the wide type and converts its narrow results once: to nearest even for
floats (as NumPy's and ml_dtypes' `astype` does: an 8-bit float's overflow is its NaN, or inf
for e5m2), keeping the low bits for integers (they wrap around, as ml_dtypes' int4 does):

    add(x: f16, y: f16)  ==  cast(add(cast(x, f32), cast(y, f32)), f16)
    sum(x: bf16)         ==  cast(sum(cast(x, f32)), bf16)       # accumulated in float32
    mul(x: i4, y: i4)    ==  cast(mul(cast(x, i32), cast(y, i32)), i4)   # 7 * 7 = 1

The interpreter follows this rule (`compute`), and the compiler's pass `widen` rewrites the
graph by it before code generation, so compiled code and interpreter agree to the bit on
+ - * / sqrt (float32 holds a small float's exact result before its one rounding) and on
every integer op (the low bits of + - * do not depend on the width they are computed in).
(The module keeps the name it had when float16 and bfloat16 were the only narrow types.)
"""
from __future__ import annotations

import numpy as np

from .types import DType, TensorType, float32, int32

# ops whose results are some of their operands' elements, unchanged (or a constant); a cast
# converts narrow values itself, a bitcast keeps their bits
MOVES = frozenset(["input", "constant", "reshape", "transpose", "broadcast_to", "slice",
                   "concatenate", "take", "check_index", "pad", "cast", "bitcast", "where",
                   "stop_gradient", "get", "scan", "cond", "while_loop"])


def compute_dtype(d: DType) -> DType:
    """The dtype an op computes a `d` value in: float32 for small floats, int32 for narrow
    integers, else d itself."""
    if d.is_small_float:
        return float32
    return int32 if d.is_narrow_int else d


def touches_halfs(op: str, types) -> bool:
    """Whether an op (not one of MOVES) reads or gives a narrow type."""
    return op not in MOVES and any(isinstance(t, TensorType) and t.dtype.is_narrow
                                   for t in types)


def reference(opdef, xs, attrs, out_types=None):
    """opdef.ref(xs, attrs) by the rule above (on NumPy arrays). out_types: the op's result
    types; None means its float (int32) results have the dtype of its first narrow float
    (integer) operand."""
    xs = [np.asarray(x) for x in xs]
    ins = [TensorType.of(x) for x in xs]
    if out_types is None:
        narrow = next((t for t in ins if t.dtype.is_narrow), None)
        if opdef.name in MOVES or narrow is None:
            return opdef.ref(xs, attrs)
        return compute(opdef.ref, xs, attrs, None, narrow.dtype)
    if not touches_halfs(opdef.name, ins + list(out_types)):
        return opdef.ref(xs, attrs)
    return compute(opdef.ref, xs, attrs, out_types)


def _wide(x):
    d = TensorType.of(x).dtype
    return x.astype(compute_dtype(d).np) if d.is_narrow else x


def compute(ref, xs, attrs, out_types, half: DType | None = None):
    """Runs an op's NumPy reference as the rule says: narrow operands widened, results
    converted back to the narrow dtypes the op gives (out_types; or, when None, results of
    `half`'s wide kind, float or int32, to `half`)."""
    with np.errstate(all="ignore"):
        out = ref([_wide(x) for x in xs], attrs)
    if out_types is None:
        out = np.asarray(out)
        wide = out.dtype.kind == "f" if half.is_small_float else out.dtype == np.int32
        return _narrow(out, TensorType(half, out.shape)) if wide else out
    if isinstance(out, (tuple, list)):
        return type(out)(_narrow(o, t) for o, t in zip(out, out_types))
    return _narrow(out, out_types[0])


def _narrow(o, t: TensorType):
    o = np.asarray(o)
    with np.errstate(all="ignore"):   # beyond the range: inf (or NaN), as a cast gives
        return o.astype(t.dtype.np) if t.dtype.is_narrow and o.dtype != t.dtype.np else o
