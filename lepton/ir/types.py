"""Element types and tensor types: every IR value carries a `TensorType`.

    >>> TensorType(f32, (64, 256))
    f32[64,256]
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FloatFormat:
    """The bit layout of a float narrower than float32: sign, `exp_bits` exponent bits of
    bias `bias`, `man_bits` mantissa bits, and how it spells the special values (`special`):

    - "ieee": the top exponent is infinity (mantissa 0) or NaN, as float16 (float8_e5m2);
    - "fn": finite only; NaN is the all-ones exponent and mantissa (float8_e4m3fn, max 448);
    - "fnuz": finite only, no negative zero; NaN is the pattern of -0 (0x80);
    - "finite": no infinity and no NaN (float4_e2m1fn): overflow saturates, and NaN becomes a
      zero whose sign is the NaN's flipped, as ml_dtypes does;
    - "e8m0": no sign, no mantissa, no zero: a power of two 2**(bits - 127), 0xFF is NaN
      (float8_e8m0fnu, the scales of the OCP MX formats).

    >>> FloatFormat(4, 3, 7, "fn").max
    448.0
    """
    exp_bits: int
    man_bits: int
    bias: int
    special: str

    @property
    def bits(self) -> int:
        return (self.special != "e8m0") + self.exp_bits + self.man_bits

    @property
    def max(self) -> float:
        top = (1 << self.exp_bits) - 1 - (self.special in ("ieee", "e8m0"))
        man = (1 << self.man_bits) - 1 - (self.special == "fn")
        return (1 + man / (1 << self.man_bits)) * 2.0 ** (top - self.bias)


@dataclass(frozen=True)
class DType:
    """A scalar element type. `name` is the short IR spelling (f32, u8, bf16, f8e4m3fn, i4,
    bool). `fmt` is the bit layout of a float narrower than float32, `nbits` the width of an
    integer narrower than a byte (None for the others); those are stored one a byte, as
    ml_dtypes stores them (an int4's byte holds its low 4 bits, the rest zero)."""
    name: str
    np: np.dtype | None     # None only for the ml_dtypes types without that optional package
    is_float: bool
    is_int: bool
    unsigned: bool = False
    fmt: FloatFormat | None = None
    nbits: int | None = None

    @property
    def itemsize(self) -> int:
        """Bytes per element in memory."""
        if self.np is not None:
            return self.np.itemsize
        return max(1, self.bits // 8)

    @property
    def bits(self) -> int:
        """The width of the values (4 for int4; storage: itemsize)."""
        if self.nbits is not None:
            return self.nbits
        return self.fmt.bits if self.fmt is not None else 8 * self.np.itemsize

    @property
    def is_half(self) -> bool:
        """float16 or bfloat16: stored in 16 bits, computed in float32."""
        return self.is_float and self.itemsize == 2

    @property
    def is_small_float(self) -> bool:
        """A float stored in fewer than 32 bits and computed in float32: float16, bfloat16 and
        the 8-bit floats (ir/halfs.py states the rule)."""
        return self.fmt is not None

    @property
    def is_minifloat(self) -> bool:
        """A float of at most 8 bits (the 8-bit floats, float4_e2m1fn), stored in a byte."""
        return self.fmt is not None and self.fmt.bits <= 8

    @property
    def is_narrow_int(self) -> bool:
        """int4, uint4, int2, uint2: stored in a byte, computed in int32."""
        return self.nbits is not None

    @property
    def is_narrow(self) -> bool:
        """Stored narrower than it computes (ir/halfs.py): small floats and narrow ints."""
        return self.fmt is not None or self.nbits is not None

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other):
        # the dataclass's comparison, after the common case (the same object: every DType of
        # a process is one of the module's, but a copy, e.g. unpickled, is equal too)
        if self is other:
            return True
        if other.__class__ is not DType:
            return NotImplemented
        return (self.name, self.np, self.is_float, self.is_int, self.unsigned, self.fmt,
                self.nbits) == (other.name, other.np, other.is_float, other.is_int,
                                other.unsigned, other.fmt, other.nbits)
    # (__hash__ is still the dataclass's, from the fields)


def _ml_dtypes_numpy(name: str):
    """The NumPy dtype ml_dtypes (optional) defines for `name`, or None without it."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(getattr(ml_dtypes, name))


def _small_float(name: str, np_type, fmt: FloatFormat) -> DType:
    return DType(name, np_type, True, False, fmt=fmt)


float16 = _small_float("f16", np.dtype(np.float16), FloatFormat(5, 10, 15, "ieee"))
bfloat16 = _small_float("bf16", _ml_dtypes_numpy("bfloat16"), FloatFormat(8, 7, 127, "ieee"))
# the 8-bit floats of OCP's and Graphcore's proposals (ONNX FLOAT8*), NumPy's via ml_dtypes
float8_e4m3fn = _small_float("f8e4m3fn", _ml_dtypes_numpy("float8_e4m3fn"),
                             FloatFormat(4, 3, 7, "fn"))
float8_e4m3fnuz = _small_float("f8e4m3fnuz", _ml_dtypes_numpy("float8_e4m3fnuz"),
                               FloatFormat(4, 3, 8, "fnuz"))
float8_e5m2 = _small_float("f8e5m2", _ml_dtypes_numpy("float8_e5m2"),
                           FloatFormat(5, 2, 15, "ieee"))
float8_e5m2fnuz = _small_float("f8e5m2fnuz", _ml_dtypes_numpy("float8_e5m2fnuz"),
                               FloatFormat(5, 2, 16, "fnuz"))
FLOAT8 = (float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz)
float8_e8m0fnu = _small_float("f8e8m0fnu", _ml_dtypes_numpy("float8_e8m0fnu"),
                              FloatFormat(8, 0, 127, "e8m0"))
float4_e2m1fn = _small_float("f4e2m1fn", _ml_dtypes_numpy("float4_e2m1fn"),
                             FloatFormat(2, 1, 1, "finite"))
# integers narrower than a byte (ONNX INT4, UINT4, INT2, UINT2), NumPy's via ml_dtypes
int4 = DType("i4", _ml_dtypes_numpy("int4"), False, True, nbits=4)
uint4 = DType("u4", _ml_dtypes_numpy("uint4"), False, True, True, nbits=4)
int2 = DType("i2", _ml_dtypes_numpy("int2"), False, True, nbits=2)
uint2 = DType("u2", _ml_dtypes_numpy("uint2"), False, True, True, nbits=2)
NARROW_INTS = (int4, uint4, int2, uint2)
float32 = DType("f32", np.dtype(np.float32), True, False)
float64 = DType("f64", np.dtype(np.float64), True, False)
int8 = DType("i8", np.dtype(np.int8), False, True)
int16 = DType("i16", np.dtype(np.int16), False, True)
int32 = DType("i32", np.dtype(np.int32), False, True)
int64 = DType("i64", np.dtype(np.int64), False, True)
uint8 = DType("u8", np.dtype(np.uint8), False, True, True)
uint16 = DType("u16", np.dtype(np.uint16), False, True, True)
uint32 = DType("u32", np.dtype(np.uint32), False, True, True)
uint64 = DType("u64", np.dtype(np.uint64), False, True, True)
bool_ = DType("bool", np.dtype(np.bool_), False, False)

DTYPES = {d.name: d for d in (float16, bfloat16, float32, float64, int8, int16, int32, int64,
                              uint8, uint16, uint32, uint64, bool_, *FLOAT8, float8_e8m0fnu,
                              float4_e2m1fn, *NARROW_INTS)}
_BY_NUMPY = {d.np: d for d in DTYPES.values() if d.np is not None}
# NumPy's dtype objects by identity: an array's dtype is usually one of these very objects, and
# hashing a dtype (as a dict lookup does) builds a tuple each time. (They stay alive in DTYPES,
# so an id found here is theirs.)
_BY_ID = {id(d.np): d for d in DTYPES.values() if d.np is not None}


def of_numpy(d: np.dtype) -> "DType | None":
    """The DType of a NumPy dtype, or None (then `dtype()` raises the error to show)."""
    found = _BY_ID.get(id(d))
    return found if found is not None else _BY_NUMPY.get(d)
# NumPy knows these names only once ml_dtypes is imported
_BY_NAME = {"bfloat16": bfloat16, "float8_e4m3fn": float8_e4m3fn,
            "float8_e4m3fnuz": float8_e4m3fnuz, "float8_e5m2": float8_e5m2,
            "float8_e5m2fnuz": float8_e5m2fnuz, "float8_e8m0fnu": float8_e8m0fnu,
            "float4_e2m1fn": float4_e2m1fn, "int4": int4,
            "uint4": uint4, "int2": int2, "uint2": uint2}
_LONG_NAME = {d: n for n, d in _BY_NAME.items()}
ML_DTYPES_NAMES = frozenset(_BY_NAME)   # NumPy's names of the types ml_dtypes defines


def _needs_ml_dtypes(d: DType) -> DType:
    if d.np is None:
        raise TypeError(f"dtype {_LONG_NAME[d]} needs the optional package ml_dtypes (NumPy's "
                        f"home of bfloat16, the 8- and 4-bit floats and int4/uint4/int2/uint2): "
                        f"pip install 'lepton[bfloat16]'")
    return d


def dtype(x) -> DType:
    """Converts a DType, its IR name, a NumPy dtype or a Python type to a DType."""
    if isinstance(x, DType):
        return _needs_ml_dtypes(x)
    if isinstance(x, str) and (x in DTYPES or x in _BY_NAME):
        return _needs_ml_dtypes(DTYPES.get(x) or _BY_NAME[x])
    if x is float:
        return float32
    if x is int:
        return int64
    if x is bool:
        return bool_
    try:
        npd = np.dtype(x)
    except TypeError:
        npd = None
    if npd is not None and npd in _BY_NUMPY:
        return _BY_NUMPY[npd]
    raise TypeError(f"unsupported dtype {x!r}; Lepton supports {', '.join(DTYPES)}")


_SMALL_FLOAT_NUMPY = frozenset(d.np for d in DTYPES.values() if d.is_small_float and d.np)


def is_float_numpy(d) -> bool:
    """Whether a NumPy dtype is a float one (bfloat16's kind is 'V', not 'f')."""
    d = np.dtype(d)
    return d.kind == "f" or d in _SMALL_FLOAT_NUMPY


def promote(a: DType, b: DType) -> DType:
    """NumPy's result type for two tensors of the supported dtypes (bfloat16 ranks as float16
    does; the two together give float32), except that where NumPy gives float64 to inputs that
    are not float64 (int32 with float32, int64 with float16, int64 with uint64) the result is
    float32, as in JAX and PyTorch. The 8- and 4-bit floats and the narrow integers promote as
    ml_dtypes tells NumPy to (float8 as bfloat16 does with integers and wider floats; with
    float16 or another 8-bit float, float32; int4 with uint4, int8)."""
    if a == b:
        return a
    if {a, b} == {float16, bfloat16}:
        return float32
    if a.is_minifloat or b.is_minifloat or a.is_narrow_int or b.is_narrow_int:
        r = np.promote_types(a.np, b.np)
    else:
        r = np.promote_types(float16.np if a == bfloat16 else a.np,
                             float16.np if b == bfloat16 else b.np)
    d = _BY_NUMPY[r]
    if d == float64 and float64 not in (a, b):
        return float32
    if d == float16 and bfloat16 in (a, b):
        return bfloat16
    return d


_set = object.__setattr__


def _checked_shape(shape) -> tuple[int, ...]:
    """A shape as a tuple of ints (from any ints NumPy's or Python's); none negative."""
    shape = tuple(int(s) for s in shape)
    if shape and min(shape) < 0:
        raise ValueError(f"negative dimension in shape {shape}")
    return shape


@dataclass(frozen=True)
class TensorType:
    """A dtype and a static shape; shape () is a 0-d tensor."""
    dtype: DType
    shape: tuple[int, ...]

    def __init__(self, dtype: DType, shape: tuple[int, ...]):
        # (written out, not the dataclass's: one call, on every op's type rule)
        if type(shape) is tuple:    # the common case: non-negative ints, checked here
            for s in shape:
                if type(s) is not int or s < 0:
                    shape = _checked_shape(shape)
                    break
        else:
            shape = _checked_shape(shape)
        _set(self, "dtype", dtype)
        _set(self, "shape", shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.name}[{','.join(map(str, self.shape))}]"

    __repr__ = __str__

    @staticmethod
    def parse(text: str) -> "TensorType":
        """Reads `f32[64,256]` (or `f32[]` for 0-d) back."""
        text = text.strip()
        if not text.endswith("]") or "[" not in text:
            raise ValueError(f"bad tensor type {text!r}: expected like f32[2,3]")
        name, dims = text[:-1].split("[", 1)
        shape = tuple(int(d) for d in dims.split(",") if d.strip())
        return TensorType(dtype(name), shape)

    @staticmethod
    def of(array) -> "TensorType":
        a = np.asarray(array)
        return TensorType(dtype(a.dtype), a.shape)


@dataclass(frozen=True)
class TupleType:
    """The type of an op with several results (the control-flow ops): one TensorType per
    result, read by `get[index=k]`. Printed `(f32[3], i64[])`; only such ops and `get` see it.

    >>> TupleType((TensorType(f32, (3,)), TensorType(i64, ())))
    (f32[3], i64[])
    """
    types: tuple[TensorType, ...]

    def __post_init__(self):
        object.__setattr__(self, "types", tuple(self.types))

    def __str__(self) -> str:
        return "(" + ", ".join(map(str, self.types)) + ")"

    __repr__ = __str__


_TENSOR_TEXT = re.compile(r"\w+\[[\d,\s]*\]")


def parse_type(text: str):
    """Reads a TensorType `f32[2,3]` or a TupleType `(f32[2], i64[])` back."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        return TupleType(tuple(TensorType.parse(t) for t in _TENSOR_TEXT.findall(text[1:-1])))
    return TensorType.parse(text)
