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
    """A scalar element type. `name` is the short IR spelling (f32, i64, bool)."""
    name: str
    np: np.dtype
    is_float: bool
    is_int: bool

    @property
    def itemsize(self) -> int:
        return self.np.itemsize

    def __repr__(self) -> str:
        return self.name


float32 = DType("f32", np.dtype(np.float32), True, False)
float64 = DType("f64", np.dtype(np.float64), True, False)
int32 = DType("i32", np.dtype(np.int32), False, True)
int64 = DType("i64", np.dtype(np.int64), False, True)
bool_ = DType("bool", np.dtype(np.bool_), False, False)

DTYPES = {d.name: d for d in (float32, float64, int32, int64, bool_)}
_BY_NUMPY = {d.np: d for d in DTYPES.values()}
# Lowest to highest: the promotion lattice NumPy uses among the types we support.
_RANK = {bool_: 0, int32: 1, int64: 2, float32: 3, float64: 4}


def dtype(x) -> DType:
    """Converts a DType, its IR name, a NumPy dtype or a Python type to a DType."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str) and x in DTYPES:
        return DTYPES[x]
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


def promote(a: DType, b: DType) -> DType:
    """NumPy's result type for two tensors of the supported dtypes."""
    if {a, b} == {int64, float32} or {a, b} == {int32, float32}:
        # NumPy gives f64 for int32/int64 with f32 arrays; we keep f32, as PyTorch does.
        return float32
    return a if _RANK[a] >= _RANK[b] else b


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
