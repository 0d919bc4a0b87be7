"""The public op functions, with NumPy's names and semantics, on traced tensors.

Every function accepts Tensors, NumPy arrays, lists and Python/NumPy scalars wherever NumPy
would (non-tensors become graph constants) and returns a Tensor of the graph being traced:

    >>> def f(x):                     # x: f32[7,13]
    ...     y = lp.exp(x - lp.max(x, axis=-1, keepdims=True))
    ...     return y / y.sum(axis=1, keepdims=True)

Dtype rules are tensor.py's (weak scalars, f32 default). Float-only math (exp, divide, mean...)
turns integer and bool inputs into f32. Sums and products of bool and integers narrower than
64 bits give i64 (u64 for unsigned ones), as in NumPy.
Shape ops live in shapes.py and are re-exported here.
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from ..ir.types import DType, bool_, dtype as to_dtype, float32, int8, int32, int64, uint64
from .shapes import (broadcast_to, concatenate, expand_dims, norm_axes, reshape,  # noqa: F401
                     split, squeeze, stack, swapaxes, take, transpose)
from .tensor import (Tensor, as_array, cast, emit, fail, is_weak, lift, lift_all, result_dtype,
                     _weak_kind)
from .tensor import constant as _constant


# -- elementwise -------------------------------------------------------------------------------
def _float(x) -> Tensor:
    """x as a float tensor: ints and bools become f32."""
    x = lift(x)
    return x if x.dtype.is_float else cast(x, float32)


def _unary_float(op: str, doc: str):
    def f(x) -> Tensor:
        return emit(op, [_float(x)])
    f.__name__ = f.__qualname__ = doc.split("(")[0]
    f.__doc__ = doc
    return f


exp = _unary_float("exp", "exp(x): e**x elementwise (ints give f32).")
log = _unary_float("log", "log(x): natural logarithm elementwise.")
sqrt = _unary_float("sqrt", "sqrt(x): square root elementwise.")
rsqrt = _unary_float("rsqrt", "rsqrt(x): 1 / sqrt(x) elementwise.")
tanh = _unary_float("tanh", "tanh(x): hyperbolic tangent elementwise.")
sigmoid = _unary_float("sigmoid", "sigmoid(x): 1 / (1 + exp(-x)) elementwise.")
erf = _unary_float("erf", "erf(x): the error function elementwise.")
sin = _unary_float("sin", "sin(x): sine elementwise.")
cos = _unary_float("cos", "cos(x): cosine elementwise.")
reciprocal = _unary_float("reciprocal", "reciprocal(x): 1 / x elementwise (ints give f32).")


def stop_gradient(x) -> Tensor:
    """x itself, but no gradient flows through it (JAX's lax.stop_gradient): the max shift of
    softmax and logsumexp, which cancels in their derivative, costs nothing in gradients."""
    return emit("stop_gradient", [lift(x)])


def negative(x) -> Tensor:
    """-x elementwise."""
    x = lift(x)
    if x.dtype == bool_:
        fail("neg", "negative of a bool tensor is not supported (NumPy forbids it too)", TypeError)
    return emit("neg", [x])


def abs(x) -> Tensor:  # noqa: A001 - NumPy's name
    """|x| elementwise, keeping the dtype."""
    return emit("abs", [lift(x)])


def square(x) -> Tensor:
    """x * x elementwise, keeping the dtype."""
    return emit("square", [lift(x)])


def relu(x) -> Tensor:
    """max(x, 0) elementwise, keeping the dtype."""
    return emit("relu", [lift(x)])


def gelu(x, approximate: bool = False) -> Tensor:
    """GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); approximate=True gives PyTorch's tanh
    form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))."""
    x = _float(x)
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + tanh(inner))
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def _binary(op: str, a, b) -> Tensor:
    if type(a) is Tensor and type(b) is Tensor and not a.weak and not b.weak \
            and a.dtype is b.dtype:
        return emit(op, [a, b])     # nothing to lift or cast (emit checks their graph)
    return emit(op, lift_all(a, b))


def add(a, b) -> Tensor:
    """a + b with broadcasting."""
    return _binary("add", a, b)


def subtract(a, b) -> Tensor:
    """a - b with broadcasting."""
    if result_dtype(a, b) == bool_:
        fail("sub", "subtracting bool tensors is not supported (NumPy forbids it too)", TypeError)
    return _binary("sub", a, b)


def multiply(a, b) -> Tensor:
    """a * b with broadcasting."""
    return _binary("mul", a, b)


def divide(a, b) -> Tensor:
    """True division a / b; integer inputs give f32."""
    d = result_dtype(a, b)
    return emit("div", lift_all(a, b, dtype=d if d.is_float else float32))


def _int_power(x: Tensor, n: int) -> Tensor:
    """x**n for a non-negative int n by repeated squaring (the IR's pow is float only)."""
    result, base = None, x
    while n:
        if n & 1:
            result = base if result is None else emit("mul", [result, base])
        n >>= 1
        if n:
            base = emit("square", [base])
    return result if result is not None else full(x.shape, 1, x.dtype)


def power(a, b) -> Tensor:
    """a ** b. Floats use pow (b == 2 becomes square); integer tensors support non-negative
    integer scalar exponents."""
    d = result_dtype(a, b)
    if is_weak(b) and not isinstance(b, (bool, np.bool_)) and b == 2:
        return emit("square", [lift(a, d)])
    if d.is_float:
        return _binary("pow", lift(a, d), lift(b, d))
    if not (is_weak(b) and isinstance(b, (int, np.integer)) and not isinstance(b, bool)):
        fail("pow", "an integer tensor power needs a non-negative Python int exponent; "
             "cast to float for tensor exponents", TypeError)
    if b < 0:
        fail("pow", "integers to negative integer powers are not allowed")
    return _int_power(lift(a, int64 if d == bool_ else d), int(b))


def maximum(a, b) -> Tensor:
    """Elementwise maximum (NaN propagates)."""
    return _binary("maximum", a, b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum (NaN propagates)."""
    return _binary("minimum", a, b)


def where(condition, x, y) -> Tensor:
    """x where condition else y; a non-bool condition means `condition != 0`."""
    c = lift(condition)
    if c.dtype != bool_:
        c = cast(c, bool_)
    return emit("where", [c] + lift_all(x, y))


def clip(x, a_min=None, a_max=None) -> Tensor:
    """min(max(x, a_min), a_max); either bound may be None."""
    bounds = [v for v in (a_min, a_max) if v is not None]
    d = result_dtype(x, *bounds)
    out = lift(x, d)
    if a_min is not None:
        out = maximum(out, lift(a_min, d))
    if a_max is not None:
        out = minimum(out, lift(a_max, d))
    return out


def _bools(op: str, *xs) -> list[Tensor]:
    ts = lift_all(*xs)
    if ts[0].dtype != bool_:
        fail(op, f"logical/bitwise ops need bool tensors, got {ts[0].type}", TypeError)
    return ts


def logical_and(a, b) -> Tensor:
    a, b = _bools("logical_and", a, b)
    return emit("where", [a, b, lift(False)])


def logical_or(a, b) -> Tensor:
    a, b = _bools("logical_or", a, b)
    return emit("where", [a, lift(True), b])


def logical_xor(a, b) -> Tensor:
    return emit("ne", _bools("logical_xor", a, b))


def logical_not(x) -> Tensor:
    (x,) = _bools("logical_not", x)
    return emit("eq", [x, lift(False)])


# -- integer ops: NumPy's // % << >> and bitwise & | ^ ~ -------------------------------------
def _integers(op: str, name: str, a, b, bools: bool = False) -> list[Tensor]:
    ts = lift_all(a, b)
    d = ts[0].dtype
    if not (d.is_int or (bools and d == bool_)):
        fail(op, f"{name} needs integer{' or bool' if bools else ''} tensors, got "
             f"{ts[0].type} and {ts[1].type}", TypeError)
    return ts


def _numbers(a, b) -> list[Tensor]:
    ts = lift_all(a, b)
    return lift_all(a, b, dtype=int8) if ts[0].dtype == bool_ else ts   # NumPy: bool // bool


def floor_divide(a, b) -> Tensor:
    """a // b (NumPy's floor division); for integers x // 0 gives 0, for floats x / 0."""
    return emit("floordiv", _numbers(a, b))


def remainder(a, b) -> Tensor:
    """a % b with the sign of b (NumPy's remainder); for integers x % 0 gives 0, for floats
    NaN."""
    return emit("mod", _numbers(a, b))


mod = remainder


def left_shift(a, b) -> Tensor:
    """a << b for integers; a shift by the width or more gives 0."""
    return emit("shl", _integers("shl", "left_shift", a, b))


def right_shift(a, b) -> Tensor:
    """a >> b for integers (arithmetic for signed, logical for unsigned)."""
    return emit("shr", _integers("shr", "right_shift", a, b))


def bitwise_and(a, b) -> Tensor:
    """a & b: logical and on bools, bitwise on integers."""
    a, b = _integers("bitwise_and", "&", a, b, bools=True)
    return logical_and(a, b) if a.dtype == bool_ else emit("bitwise_and", [a, b])


def bitwise_or(a, b) -> Tensor:
    """a | b: logical or on bools, bitwise on integers."""
    a, b = _integers("bitwise_or", "|", a, b, bools=True)
    return logical_or(a, b) if a.dtype == bool_ else emit("bitwise_or", [a, b])


def bitwise_xor(a, b) -> Tensor:
    """a ^ b: logical xor on bools, bitwise on integers."""
    a, b = _integers("bitwise_xor", "^", a, b, bools=True)
    return logical_xor(a, b) if a.dtype == bool_ else emit("bitwise_xor", [a, b])


def invert(x) -> Tensor:
    """~x: logical not on bools, every bit flipped on integers."""
    x = lift(x)
    if x.dtype == bool_:
        return logical_not(x)
    if not x.dtype.is_int:
        fail("invert", f"~ needs an integer or bool tensor, got {x.type}", TypeError)
    return emit("bitwise_xor", [x, _constant(np.array(-1).astype(x.dtype.np))])


def less(a, b): return _binary("lt", a, b)
def less_equal(a, b): return _binary("le", a, b)
def greater(a, b): return _binary("gt", a, b)
def greater_equal(a, b): return _binary("ge", a, b)
def equal(a, b): return _binary("eq", a, b)
def not_equal(a, b): return _binary("ne", a, b)


def bitcast(x, dtype) -> Tensor:
    """The bits of each element of x read as `dtype`, of the same width (NumPy's
    `x.view(dtype)` element by element, jax.lax.bitcast_convert_type): NaN payloads, -0 and
    infinities keep their bits. Widths are bits: 32 for f32/i32/u32, 16 for the 16-bit types, 8
    for the 8-bit ones and bool, 4 for int4/uint4/float4_e2m1fn, 2 for int2/uint2; different
    widths raise ValueError, and so does bool as the target (only 0 and 1 bytes are bools).

    >>> lp.bitcast(np.float32(1.0), lp.int32)    # 1065353216 (0x3F800000)
    """
    return emit("bitcast", [lift(x)], dtype=to_dtype(dtype))


# -- reductions --------------------------------------------------------------------------------
def _reduce(op: str, x: Tensor, axis, keepdims) -> Tensor:
    return emit(op, [x], axes=norm_axes(axis, x.ndim, op), keepdims=bool(keepdims))


def _accumulator(x, dtype) -> Tensor:
    """x in the dtype a sum/prod accumulates in: `dtype`, else (NumPy's) i64 for bool and the
    smaller signed integers, u64 for the smaller unsigned ones. (A 16-bit float sums in
    float32 and rounds once: see lepton/ir/halfs.py.)"""
    x = lift(x)
    if dtype is not None:
        return cast(x, to_dtype(dtype))
    if x.dtype == bool_ or (x.dtype.is_int and x.dtype.itemsize < 8):
        return cast(x, uint64 if x.dtype.unsigned else int64)
    return x


def sum(x, axis=None, dtype=None, *, keepdims=False) -> Tensor:  # noqa: A001
    """Sum over `axis` (None: all axes; int or tuple, negative allowed)."""
    return _reduce("sum", _accumulator(x, dtype), axis, keepdims)


def prod(x, axis=None, dtype=None, *, keepdims=False) -> Tensor:
    """Product over `axis`."""
    return _reduce("prod", _accumulator(x, dtype), axis, keepdims)


def max(x, axis=None, *, keepdims=False) -> Tensor:  # noqa: A001
    """Maximum over `axis`; an empty reduction is an error."""
    return _reduce("max", lift(x), axis, keepdims)


def min(x, axis=None, *, keepdims=False) -> Tensor:  # noqa: A001
    """Minimum over `axis`; an empty reduction is an error."""
    return _reduce("min", lift(x), axis, keepdims)


def _count(x: Tensor, axis) -> int:
    return math.prod(x.shape[a] for a in norm_axes(axis, x.ndim, "mean"))


def mean(x, axis=None, dtype=None, *, keepdims=False) -> Tensor:
    """Arithmetic mean over `axis`; integer inputs give f32."""
    x = _float(x) if dtype is None else cast(lift(x), to_dtype(dtype))
    s = _reduce("sum", x, axis, keepdims)
    return emit("div", [s, lift(_count(x, axis), s.dtype)])


def var(x, axis=None, dtype=None, *, ddof=0, keepdims=False) -> Tensor:
    """Variance over `axis`: mean of squared deviations, divided by (n - ddof)."""
    x = _float(x) if dtype is None else cast(lift(x), to_dtype(dtype))
    dev = x - mean(x, axis, keepdims=True)
    s = _reduce("sum", square(dev), axis, keepdims)
    n = builtins.max(_count(x, axis) - ddof, 0)
    return emit("div", [s, lift(n, s.dtype)])


def std(x, axis=None, dtype=None, *, ddof=0, keepdims=False) -> Tensor:
    """Standard deviation: sqrt(var)."""
    return sqrt(var(x, axis, dtype, ddof=ddof, keepdims=keepdims))


def argmax(x, axis=None, *, keepdims=False) -> Tensor:
    """Index (i64) of the first maximum along `axis`; axis=None means the flattened tensor."""
    x = lift(x)
    if axis is None:
        out = emit("argmax", [reshape(x, (-1,))], axis=0, keepdims=False)
        return reshape(out, (1,) * x.ndim) if keepdims else out
    (axis,) = norm_axes(axis, x.ndim, "argmax")
    return emit("argmax", [x], axis=axis, keepdims=bool(keepdims))


def max_shift(x: Tensor, axis, op: str) -> Tensor:
    """max(x) over `axis` with kept dims, the shift that keeps exp(x - shift) from overflowing
    in logsumexp and the softmaxes; 0 when an axis is empty (the max of nothing does not exist,
    and there is nothing to shift: the results are then empty, or -inf for logsumexp)."""
    if any(x.shape[a] == 0 for a in norm_axes(axis, x.ndim, op)):
        kept = tuple(1 if a in norm_axes(axis, x.ndim, op) else n for a, n in enumerate(x.shape))
        return full(kept, 0.0, x.dtype)
    return stop_gradient(max(x, axis, keepdims=True))


def logsumexp(x, axis=None, *, keepdims=False) -> Tensor:
    """log(sum(exp(x))) over `axis`, computed stably by factoring out the maximum; -inf over an
    empty axis (the log of an empty sum), as NumPy and SciPy."""
    x = _float(x)
    m = max_shift(x, axis, "logsumexp")
    # A row of -inf (or inf/nan) has no finite shift; shift by 0 there, as SciPy does.
    m = where(abs(m) < math.inf, m, 0.0)
    s = log(sum(exp(x - m), axis, keepdims=keepdims))
    return s + (m if keepdims else squeeze(m, norm_axes(axis, x.ndim, "logsumexp")))


# -- linear algebra ----------------------------------------------------------------------------
def matmul(a, b) -> Tensor:
    """NumPy's matmul: batched over leading dims; a 1-d operand is a vector (its dim is added
    for the product and removed from the result)."""
    a, b = lift_all(a, b)
    if a.ndim == 0 or b.ndim == 0:
        fail("matmul", f"operands must have at least 1 dimension, got {a.type} @ {b.type}")
    if a.dtype == bool_:  # NumPy: an OR of ANDs; the GEMM kernels have no bool version
        return matmul(cast(a, int32), cast(b, int32)) != 0
    a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    out = emit("matmul", [a2, b2])
    shape = out.shape
    if b.ndim == 1:
        shape = shape[:-1]
    if a.ndim == 1:
        shape = shape[:-1] if b.ndim == 1 else shape[:-2] + shape[-1:]
    return reshape(out, shape)


def dot(a, b) -> Tensor:
    """NumPy's dot: products of scalars, inner product of vectors, otherwise the sum over a's
    last axis and b's second-to-last: dot(a, b)[i,j,k,m] = sum(a[i,j,:] * b[k,:,m])."""
    a, b = lift_all(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        return matmul(a, b)
    k = b.shape[-2]
    rest = b.shape[:-2] + b.shape[-1:]
    # b's contracted axis first, the others flattened into columns, in the result's order.
    b2 = reshape(transpose(b, (b.ndim - 2,) + tuple(range(b.ndim - 2)) + (b.ndim - 1,)),
                 (k, math.prod(rest)))
    out = matmul(reshape(a, (math.prod(a.shape[:-1]), a.shape[-1])), b2)  # no -1: K may be 0
    return reshape(out, a.shape[:-1] + rest)


# -- creation ----------------------------------------------------------------------------------
def _dtype_or(dtype, default: DType) -> DType:
    return default if dtype is None else to_dtype(dtype)


def full(shape, fill_value, dtype=None) -> Tensor:
    """A tensor of `shape` filled with `fill_value` (a scalar or 0-d tensor): a 0-d constant
    broadcast, never a big array. dtype=None: the fill value's kind (floats give f32)."""
    if isinstance(fill_value, Tensor):
        d = _dtype_or(dtype, fill_value.dtype)
    else:
        d = _dtype_or(dtype, _weak_kind(fill_value) if is_weak(fill_value)
                      else to_dtype(as_array(fill_value).dtype))
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return broadcast_to(lift(fill_value, d), shape)


def zeros(shape, dtype=float32) -> Tensor:
    """A tensor of zeros (f32 unless dtype is given)."""
    return full(shape, 0, _dtype_or(dtype, float32))


def ones(shape, dtype=float32) -> Tensor:
    """A tensor of ones (f32 unless dtype is given)."""
    return full(shape, 1, _dtype_or(dtype, float32))


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    """NumPy's arange([start,] stop[, step]) as a constant; ints give i64, floats f32."""
    if stop is None:
        start, stop = 0, start
    for v in (start, stop, step):
        if isinstance(v, Tensor):
            fail("arange", "arange's bounds must be Python numbers (the result's length must "
                 "be known when tracing)", TypeError)
    if step == 0:
        fail("arange", "step must not be zero")
    ints = builtins.all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
    d = _dtype_or(dtype, int64 if ints else float32)
    return _constant(np.arange(start, stop, step, dtype=d.np))


def constant(value, dtype=None) -> Tensor:
    """A constant of the graph: `lp.constant(np_array)` keeps the array's dtype; Python data
    gives f32 for floats, i64 for ints."""
    if isinstance(value, Tensor):
        return value if dtype is None else cast(value, to_dtype(dtype))
    return _constant(value, None if dtype is None else to_dtype(dtype))


__all__ = [
    "add", "subtract", "multiply", "divide", "power", "negative", "abs", "exp", "log", "sqrt",
    "rsqrt", "tanh", "sigmoid", "relu", "gelu", "erf", "sin", "cos", "maximum", "minimum",
    "where", "clip", "square", "reciprocal", "stop_gradient",
    "floor_divide", "remainder", "mod", "left_shift", "right_shift", "bitwise_and", "bitwise_or",
    "bitwise_xor", "invert", "bitcast",
    "sum", "mean", "max", "min", "argmax", "prod", "logsumexp", "var",
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "concatenate", "stack",
    "split", "take", "matmul", "dot", "zeros", "ones", "full", "arange", "constant",
]
# Also here, for operators and methods, but not exported to `lepton`: less, less_equal, greater,
# greater_equal, equal, not_equal, logical_and/or/xor/not, std, swapaxes.
