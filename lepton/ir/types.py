"""Element types and tensor types: every IR value carries a `TensorType`.

    >>> TensorType(f32, (64, 256))
    f32[64,256]
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    """A scalar element type. `name` is the short IR spelling (f32, u8, bf16, bool)."""
    name: str
    np: np.dtype | None     # None only for bf16 without the optional package ml_dtypes
    is_float: bool
    is_int: bool
    unsigned: bool = False

    @property
    def itemsize(self) -> int:
        return self.np.itemsize if self.np is not None else 2

    @property
    def bits(self) -> int:
        return 8 * self.itemsize

    @property
    def is_half(self) -> bool:
        """float16 or bfloat16: stored in 16 bits, computed in float32."""
        return self.is_float and self.itemsize == 2

    def __repr__(self) -> str:
        return self.name


def _bfloat16_numpy():
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


float16 = DType("f16", np.dtype(np.float16), True, False)
bfloat16 = DType("bf16", _bfloat16_numpy(), True, False)
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
                              uint8, uint16, uint32, uint64, bool_)}
_BY_NUMPY = {d.np: d for d in DTYPES.values() if d.np is not None}
_BY_NAME = {"bfloat16": bfloat16}   # NumPy knows the name only once ml_dtypes is imported


def _needs_ml_dtypes(d: DType) -> DType:
    if d.np is None:
        raise TypeError("dtype bfloat16 needs the optional package ml_dtypes (NumPy's home of "
                        "bfloat16): pip install 'lepton[bfloat16]'")
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


def is_float_numpy(d) -> bool:
    """Whether a NumPy dtype is a float one (bfloat16's kind is 'V', not 'f')."""
    d = np.dtype(d)
    return d.kind == "f" or (bfloat16.np is not None and d == bfloat16.np)


def promote(a: DType, b: DType) -> DType:
    """NumPy's result type for two tensors of the supported dtypes (bfloat16 ranks as float16
    does; the two together give float32), except that where NumPy gives float64 to inputs that
    are not float64 (int32 with float32, int64 with float16, int64 with uint64) the result is
    float32, as in JAX and PyTorch."""
    if a == b:
        return a
    if {a, b} == {float16, bfloat16}:
        return float32
    r = np.promote_types(float16.np if a == bfloat16 else a.np,
                         float16.np if b == bfloat16 else b.np)
    d = _BY_NUMPY[r]
    if d == float64 and float64 not in (a, b):
        return float32
    if d == float16 and bfloat16 in (a, b):
        return bfloat16
    return d


@dataclass(frozen=True)
class TensorType:
    """A dtype and a static shape; shape () is a 0-d tensor."""
    dtype: DType
    shape: tuple[int, ...]

    def __post_init__(self):
        shape = self.shape
        if type(shape) is not tuple or any([type(s) is not int for s in shape]):
            shape = tuple(int(s) for s in shape)
            object.__setattr__(self, "shape", shape)
        if shape and min(shape) < 0:
            raise ValueError(f"negative dimension in shape {self.shape}")

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
