"""The traced `Tensor` and the tracing context.

A `Tensor` stands for one IR `Value` of the graph being traced. Every operation on it appends a
node to that graph, recording the user's source line (the first stack frame outside the lepton
package) as the node's `loc`, so IR errors name the line that caused them:

    >>> g = Graph("f")
    >>> with tracing(g):
    ...     x = Tensor(g.input(TensorType(float32, (2, 3))))
    ...     y = (x * 2.0).sum(axis=-1)       # mul, then sum[axes=(1,)]
    >>> y
    Tensor(f32[2], model.py:3)

Dtype rules (NumPy's, with Lepton's float32 default):
- tensors and NumPy arrays promote with `lepton.ir.types.promote`;
- Python and NumPy scalars are *weak*: they take the tensor's dtype unless their kind is higher
  (f32 * 2.0 -> f32, i32 * 2 -> i32, i32 * 2.5 -> f32, bool + 1 -> i64);
- Python data (lists, lone scalars) defaults to f32 for floats and i64 for ints.
The IR wants equal input dtypes, so the frontend inserts explicit `cast` nodes.

Traced values are symbolic: `bool(t)`, `np.asarray(t)`, `int(t)` raise TypeError, because Python
control flow that depends on data cannot be recorded in a static graph.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from functools import reduce

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.ops import OpError
from ..ir.types import (DType, TensorType, bool_, dtype as to_dtype, float32, int64, of_numpy,
                        promote)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_state = threading.local()


# -- the tracing context -----------------------------------------------------------------------
def _stack() -> list[Graph]:
    try:
        return _state.stack
    except AttributeError:
        _state.stack = []
        return _state.stack


@contextlib.contextmanager
def tracing(graph: Graph, captures=None):
    """Makes `graph` the one that ops without tensor operands (zeros, arange...) build into;
    `captures` (a `capture.Captures`) turns the arrays the traced code reads from its closure
    into inputs of the graph instead of constants."""
    stack = _stack()
    stack.append((graph, captures))
    try:
        yield graph
    finally:
        stack.pop()


def current_graph() -> Graph | None:
    stack = _stack()
    return stack[-1][0] if stack else None


def _current_captures():
    stack = _stack()
    return stack[-1][1] if stack else None


def source_loc(depth: int = 1) -> str | None:
    """'file.py:LINE' of the innermost stack frame outside the lepton package, looking from
    the frame `depth` levels up (1: the caller's; a caller inside the package may skip its
    own frame: each frame looked at costs a frame object)."""
    f = sys._getframe(depth)
    outside = _OUTSIDE
    while f is not None:
        path = f.f_code.co_filename
        name = outside.get(path)
        if name is None:
            inside = not path.startswith("<") and os.path.abspath(path).startswith(_PACKAGE_DIR)
            name = _OUTSIDE[path] = "" if inside else os.path.basename(path) + ":"
        if name:
            return f"{name}{f.f_lineno}"
        f = f.f_back
    return None


# co_filename -> "" inside the lepton package, else the file's name and a colon
_OUTSIDE: dict[str, str] = {}


def fail(op: str, msg: str, exc=OpError):
    """Raises an error naming `op` and the user's source line."""
    if exc is OpError:
        raise OpError(msg, op, source_loc())
    loc = source_loc()
    e = exc(f"{msg} in op '{op}'" + (f" at {loc}" if loc else ""))
    e.op = op  # marks an error of an op (compile adds the arguments involved)
    raise e


_CONTROL_FLOW = ("is a traced value without data; Python control flow or conversions that depend "
                 "on its value cannot be traced. Use lp.where / lp.maximum etc., or compute it "
                 "outside the traced function.")


# -- the traced tensor -------------------------------------------------------------------------
class Tensor:
    """A symbolic tensor: an IR value of the graph under construction."""
    __slots__ = ("value", "graph", "weak")
    # NumPy must defer to us: `np_array * t` calls t.__rmul__, `np.exp(t)` raises TypeError.
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, value: Value, graph: Graph | None = None, weak: bool = False):
        self.value = value
        self.graph = graph if graph is not None else current_graph()
        # A Python int/float argument, traced as a 0-d tensor: it takes the dtype of the
        # tensors it meets, as a Python scalar would (JAX's weak types)
        self.weak = weak

    # -- metadata: all static --------------------------------------------------------------
    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.type.shape

    @property
    def dtype(self) -> DType:
        return self.value.type.dtype

    @property
    def ndim(self) -> int:
        return self.value.type.ndim

    @property
    def size(self) -> int:
        return self.value.type.size

    def __repr__(self) -> str:
        loc = f", {self.value.loc}" if self.value.loc else ""
        return f"Tensor({self.type}{loc})"

    __hash__ = object.__hash__

    # -- what cannot be traced -------------------------------------------------------------
    def __bool__(self):
        raise TypeError(f"bool() of {self!r}: the tensor {_CONTROL_FLOW}")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"cannot convert {self!r} to a NumPy array: the tensor {_CONTROL_FLOW}")

    def __index__(self):
        raise TypeError(f"cannot use {self!r} as a Python int: the tensor {_CONTROL_FLOW}")

    def __int__(self):
        raise TypeError(f"int() of {self!r}: the tensor {_CONTROL_FLOW}")

    def __float__(self):
        raise TypeError(f"float() of {self!r}: the tensor {_CONTROL_FLOW}")

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError(f"len() of a 0-d tensor {self!r}")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError(f"iteration over a 0-d tensor {self!r}")
        return (self[i] for i in range(self.shape[0]))

    # -- operators ---------------------------------------------------------------------------
    # (the common cases first, as ops.py would compute them: two tensors of one dtype, or a
    # float tensor and a Python float, which becomes a constant of its dtype; see _operand)
    def __add__(self, o):
        c = _operand(self, o)
        return _binary(_ops.add, self, o) if c is None else emit("add", (self, c))

    def __radd__(self, o):
        c = _operand(self, o)
        return _binary(_ops.add, o, self) if c is None else emit("add", (c, self))

    def __sub__(self, o):
        c = _operand(self, o)
        if c is None or c.value.type.dtype is bool_:
            return _binary(_ops.subtract, self, o)
        return emit("sub", (self, c))

    def __rsub__(self, o):
        c = _operand(self, o)
        if c is None or c.value.type.dtype is bool_:
            return _binary(_ops.subtract, o, self)
        return emit("sub", (c, self))

    def __mul__(self, o):
        c = _operand(self, o)
        return _binary(_ops.multiply, self, o) if c is None else emit("mul", (self, c))

    def __rmul__(self, o):
        c = _operand(self, o)
        return _binary(_ops.multiply, o, self) if c is None else emit("mul", (c, self))

    def __truediv__(self, o):
        c = _operand(self, o)
        if c is None or not c.value.type.dtype.is_float:
            return _binary(_ops.divide, self, o)
        return emit("div", (self, c))

    def __rtruediv__(self, o):
        c = _operand(self, o)
        if c is None or not c.value.type.dtype.is_float:
            return _binary(_ops.divide, o, self)
        return emit("div", (c, self))

    def __pow__(self, o): return _binary(_ops.power, self, o)
    def __rpow__(self, o): return _binary(_ops.power, o, self)
    def __matmul__(self, o):
        if type(o) is Tensor and o.value.type.dtype is self.value.type.dtype \
                and not (self.weak or o.weak) and self.value.type.dtype is not bool_ \
                and len(self.value.type.shape) >= 2 and len(o.value.type.shape) >= 2:
            return emit("matmul", (self, o))
        return _binary(_ops.matmul, self, o)

    def __rmatmul__(self, o): return _binary(_ops.matmul, o, self)
    def __lt__(self, o): return _binary(_ops.less, self, o)
    def __le__(self, o): return _binary(_ops.less_equal, self, o)
    def __gt__(self, o): return _binary(_ops.greater, self, o)
    def __ge__(self, o): return _binary(_ops.greater_equal, self, o)
    def __eq__(self, o): return _binary(_ops.equal, self, o)  # type: ignore[override]
    def __ne__(self, o): return _binary(_ops.not_equal, self, o)  # type: ignore[override]
    def __floordiv__(self, o): return _binary(_ops.floor_divide, self, o)
    def __rfloordiv__(self, o): return _binary(_ops.floor_divide, o, self)
    def __mod__(self, o): return _binary(_ops.remainder, self, o)
    def __rmod__(self, o): return _binary(_ops.remainder, o, self)
    def __lshift__(self, o): return _binary(_ops.left_shift, self, o)
    def __rlshift__(self, o): return _binary(_ops.left_shift, o, self)
    def __rshift__(self, o): return _binary(_ops.right_shift, self, o)
    def __rrshift__(self, o): return _binary(_ops.right_shift, o, self)
    # & | ^ ~: logical on bool tensors (masks), bitwise on integers
    def __and__(self, o): return _binary(_ops.bitwise_and, self, o)
    def __rand__(self, o): return _binary(_ops.bitwise_and, o, self)
    def __or__(self, o): return _binary(_ops.bitwise_or, self, o)
    def __ror__(self, o): return _binary(_ops.bitwise_or, o, self)
    def __xor__(self, o): return _binary(_ops.bitwise_xor, self, o)
    def __rxor__(self, o): return _binary(_ops.bitwise_xor, o, self)
    def __invert__(self): return _ops.invert(self)
    def __neg__(self): return _ops.negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.abs(self)

    def __getitem__(self, key):
        return _shapes.getitem(self, key)

    # -- NumPy-named methods -----------------------------------------------------------------
    @property
    def T(self) -> "Tensor":
        return _shapes.transpose(self)

    @property
    def mT(self) -> "Tensor":
        """Swaps the last two axes (NumPy's `mT`)."""
        return _shapes.swapaxes(self, -1, -2)

    def reshape(self, *shape) -> "Tensor":
        """`t.reshape(2, -1)` or `t.reshape((2, -1))`."""
        return _shapes.reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes) -> "Tensor":
        """`t.transpose()`, `t.transpose(1, 0, 2)` or `t.transpose((1, 0, 2))`."""
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _shapes.transpose(self, axes or None)

    def swapaxes(self, axis1, axis2) -> "Tensor":
        return _shapes.swapaxes(self, axis1, axis2)

    def squeeze(self, axis=None) -> "Tensor":
        return _shapes.squeeze(self, axis)

    def flatten(self) -> "Tensor":
        return _shapes.reshape(self, (-1,))

    ravel = flatten

    def astype(self, dtype) -> "Tensor":
        """The tensor converted to `dtype` (a lepton DType, NumPy dtype, Python type or name)."""
        return cast(self, to_dtype(dtype))

    def sum(self, axis=None, keepdims=False, dtype=None) -> "Tensor":
        return _ops.sum(self, axis, dtype, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.mean(self, axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.max(self, axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.min(self, axis, keepdims=keepdims)

    def prod(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.prod(self, axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False) -> "Tensor":
        return _ops.var(self, axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False) -> "Tensor":
        return _ops.std(self, axis, ddof=ddof, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.argmax(self, axis, keepdims=keepdims)

    def clip(self, min=None, max=None) -> "Tensor":  # noqa: A002 - NumPy's keyword names
        return _ops.clip(self, min, max)

    def dot(self, other) -> "Tensor":
        return _ops.dot(self, other)

    def take(self, indices, axis=None) -> "Tensor":
        return _shapes.take(self, indices, axis)


def _operand(t: Tensor, o) -> Tensor | None:
    """The other operand of an operator on t as a tensor when nothing is to be promoted or
    cast: a tensor of t's dtype (neither weak), or a Python float with a float t (then a
    constant of t's dtype, as lift_all makes it); else None (the general path, ops.py)."""
    if type(o) is Tensor:
        if o.value.type.dtype is t.value.type.dtype and not (t.weak or o.weak):
            return o
    elif type(o) is float and not t.weak and t.value.type.dtype.is_float \
            and t.graph is current_graph():     # (else graph_of names the stray tensor)
        return lift(o, t.value.type.dtype)
    return None


def _binary(f, a, b):
    """Operators return NotImplemented for operands we cannot lift, so Python tries the other."""
    if not (isinstance(a, _OPERAND_TYPES) and isinstance(b, _OPERAND_TYPES)):
        return NotImplemented
    return f(a, b)


_WEAK_TYPES = (bool, int, float, np.bool_, np.integer, np.floating)
_OPERAND_TYPES = (Tensor, np.ndarray, list, tuple) + _WEAK_TYPES


# -- lifting values into the graph -------------------------------------------------------------
def is_weak(x) -> bool:
    """Python and NumPy scalars (and Python scalar arguments) adapt to the tensors they meet."""
    return isinstance(x, _WEAK_TYPES) or (isinstance(x, Tensor) and x.weak)


def as_array(x) -> np.ndarray:
    """A NumPy array of a supported dtype; Python floats become f32 (Lepton's default)."""
    if isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, np.generic):
        arr = np.asarray(x)
    else:
        arr = np.asarray(x)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if arr.dtype.kind == "O":
        raise TypeError(f"cannot use {type(x).__name__} {x!r:.60} as a tensor")
    return arr.astype(to_dtype(arr.dtype).np, copy=False)  # raises on unsupported dtypes


def _weak_kind(x) -> DType:
    if isinstance(x, Tensor):
        return x.dtype
    if isinstance(x, (bool, np.bool_)):
        return bool_
    if isinstance(x, (int, np.integer)):
        return int64
    return float32


def result_dtype(*xs) -> DType:
    """The dtype NumPy's rules (with weak scalars) give to an operation on xs."""
    if len(xs) == 2:    # the common cases: two tensors of one dtype, a float tensor and a float
        a, b = xs
        if type(a) is Tensor and not a.weak:
            if type(b) is Tensor and not b.weak and a.dtype is b.dtype:
                return a.dtype
            if type(b) is float and a.dtype.is_float:
                return a.dtype
        elif type(a) is float and type(b) is Tensor and not b.weak and b.dtype.is_float:
            return b.dtype
    strong = [x.dtype if isinstance(x, Tensor) else to_dtype(as_array(x).dtype)
              for x in xs if not is_weak(x)]
    weak = [_weak_kind(x) for x in xs if is_weak(x)]
    if not strong:
        return reduce(promote, weak)
    d = reduce(promote, strong)
    for k in weak:
        if k.is_float and not d.is_float:
            d = float32
        elif k.is_int and d == bool_:
            d = int64
    return d


def graph_of(*xs) -> Graph:
    """The graph the tensors among xs belong to, which must be the innermost active trace."""
    g = current_graph()
    if g is not None:
        for x in xs:
            if type(x) is Tensor and x.graph is not g:
                break
        else:
            return g    # the common case, without the checks below
    if g is None and any(isinstance(x, Tensor) for x in xs):
        raise RuntimeError("a Tensor was used after its trace finished (a leaked tracer); "
                           "return it from the traced function instead")
    if g is None:
        raise RuntimeError("lepton ops build a graph and must run inside lp.trace / lp.compile "
                           "(or a function they trace)")
    for x in xs:
        if isinstance(x, Tensor) and x.graph is not g and not _encloses(x.graph):
            raise RuntimeError(f"{x!r} belongs to another trace (a tensor leaked from a finished "
                               f"trace or captured from an outer one); pass it as an argument")
    return g


def _encloses(h: Graph) -> bool:
    """Whether `h` is being traced around the region under way (a body of lp.scan etc.): its
    tensors may be read there, and become operands of the region's op (closure conversion)."""
    stack = _stack()
    for i in range(len(stack) - 1, 0, -1):
        if not hasattr(stack[i][1], "capture"):  # not a region scope: the chain ends
            return False
        if stack[i - 1][0] is h:
            return True
    return False


def value_in(t: "Tensor", g: Graph) -> Value:
    """t's value as seen from graph g: itself, or (t read inside a region being traced from an
    enclosing graph) the region input standing for it."""
    return t.value if t.graph is g else _current_captures().capture(t)


def emit(op: str, inputs, **attrs) -> Tensor:
    """Appends `op` on tensors `inputs` to their graph, located at the user's source line."""
    try:
        g = _state.stack[-1][0]
    except (AttributeError, IndexError):
        g = None
    values = []
    for t in inputs:    # the common case: tensors of the innermost trace
        if t.graph is not g:
            break
        values.append(t.value)
    else:
        if g is not None:
            return Tensor(g.append(op, tuple(values), attrs, source_loc(2)), g)  # (2: emit's
    g = graph_of(*inputs)                                                        # caller)
    values = tuple([t.value if t.graph is g else value_in(t, g) for t in inputs])
    return Tensor(g.append(op, values, attrs, source_loc(2)), g)


def constant(value, dtype: DType | None = None) -> Tensor:
    """A constant node holding a private, read-only copy of `value` (converted to dtype)."""
    arr = as_array(value) if dtype is None else np.asarray(value, dtype=dtype.np)
    arr = np.array(arr, copy=True, order="C")
    arr.flags.writeable = False
    return emit("constant", [], value=arr)


def cast(x: Tensor, dtype: DType) -> Tensor:
    return x if x.dtype == dtype else emit("cast", [x], dtype=dtype)


def lift(x, dtype: DType | None = None) -> Tensor:
    """A Tensor for x (tensor, array, list or scalar), cast to `dtype` when given."""
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    if type(x) is np.ndarray:
        captured = _captured(x)
        if captured is not None:
            return captured if dtype is None else cast(captured, dtype)
    if dtype is None:
        return constant(x)
    if type(x) is float or type(x) is int or type(x) is bool:
        return emit("constant", (), value=_scalar(x, dtype))
    if is_weak(x) and not isinstance(x, np.generic):
        # NumPy 2 raises OverflowError when a Python int does not fit the dtype, as it should.
        return constant(np.array(x, dtype=dtype.np))
    return constant(as_array(x).astype(dtype.np))


def _scalar(x, dtype: DType) -> np.ndarray:
    """A read-only 0-d array of the Python scalar x in `dtype` (OverflowError if an int won't
    fit), shared by every constant of that value and dtype (2.0, eps, a mean's count): made
    once per process, not once per op."""
    if x == 0 and type(x) is float:
        key = (float, str(x), dtype.name)     # -0.0 == 0.0 in a dict, not in the graph
    else:
        key = (type(x), x, dtype.name)        # (True == 1: the type tells; NaN: never found)
    arr = _SCALARS.get(key)
    if arr is None:
        arr = np.array(x, dtype=dtype.np)
        arr.flags.writeable = False
        if len(_SCALARS) < 4096:
            _SCALARS[key] = arr
    return arr


_SCALARS: dict = {}


def _captured(x: np.ndarray) -> Tensor | None:
    """The graph input standing for array x when the trace captures it (see capture.py)."""
    caps = _current_captures()
    if caps is None:
        return None
    g = current_graph()
    v = caps.lift(x, lambda a: g.input(TensorType(to_dtype(a.dtype), a.shape)))
    return None if v is None else Tensor(v, g)


def assign(target: np.ndarray, value) -> None:
    """Inside a traced function: every call of the compiled function ends by writing `value`
    (cast to target's dtype, broadcast to its shape) into the NumPy array `target`, in place, and
    later reads of `target` in the same trace see `value` (a module's running statistics, a
    random generator's state). Under `lp.trace`, which compiles nothing, it only does the
    latter."""
    if not isinstance(target, np.ndarray):
        raise TypeError(f"assign: the target must be a NumPy array, got {type(target).__name__}")
    g = graph_of(value) if isinstance(value, Tensor) else current_graph()
    if g is None:
        raise RuntimeError("assign writes from a traced function: call it inside lp.compile")
    v = _ops.broadcast_to(lift(value, to_dtype(target.dtype)), target.shape).value
    caps = _current_captures()
    if caps is not None:
        caps.assign(target, v)


def lift_all(*xs, dtype: DType | None = None) -> list[Tensor]:
    """Lifts xs to tensors of one dtype (`dtype`, or the promoted one)."""
    graph_of(*xs)  # first, so a leaked or foreign tensor is named before constants are made
    d = dtype or result_dtype(*xs)
    return [lift(x, d) for x in xs]


def spec_of(x) -> TensorType:
    """The TensorType of a trace argument: an array, a scalar, a TensorType or any object with
    `.shape` and `.dtype` (Python float -> f32, int -> i64, bool -> bool)."""
    if type(x) is np.ndarray:   # (the common case, as below)
        d = of_numpy(x.dtype)
        if d is not None:
            return TensorType(d, x.shape)
    if isinstance(x, TensorType):
        return x
    if isinstance(x, Tensor):
        return x.type
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):  # np.float64 is a float
        return TensorType(_weak_kind(x), ())
    if isinstance(x, (np.ndarray, np.generic)) or (
            not isinstance(x, type) and hasattr(x, "shape") and hasattr(x, "dtype")):
        return TensorType(to_dtype(x.dtype), tuple(x.shape))
    raise TypeError(f"cannot trace an argument of type {type(x).__name__}: expected a NumPy "
                    f"array, a scalar, a TensorType or an object with .shape and .dtype")


# Imported last: ops and shapes import this module.
from . import ops as _ops  # noqa: E402
from . import shapes as _shapes  # noqa: E402
