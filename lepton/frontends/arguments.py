"""How a compiled function's arguments split into traced leaves and compile-time constants, as
`jax.jit` does it (API.md "Compiling", "Values a model reads").

    spec = ArgSpec(fn, static_argnums=(2,), static_argnames=("training",))
    call = spec.split((x, {"w": w}, 3), {"training": True, "lr": 0.1})
    call.key        # hashable: structure, static values, each traced leaf's shape and dtype
    call.leaves     # [x, w, array(0.1, f32)]: what the compiled code is called with
    call.names      # ["x", "params['w']", "lr"]: for error messages
    call.rebuild(tensors)   # -> (args, kwargs) to trace fn with

- Arrays, NumPy scalars and Python `int`/`float` are traced. Python scalars become 0-d leaves
  (int -> int64, float -> float32) marked *weak* (`call.weak`): traced, they take the dtype of
  the tensors they meet, as the scalar itself would.
- `bool`, `str` and any other non-array leaf, and the arguments named static, are compile-time
  constants: they are part of the key (so they must be hashable) and passed to fn as they are.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..ir.types import dtype as to_dtype
from .pytree import LEAF_DEF, tree_flatten, tree_paths, tree_unflatten

_TRACED = object()  # marks a traced leaf's place among the static ones
_ONE_TRACED = (_TRACED,)
_PY = {float: np.float32, int: np.int64}


class Call:
    """One call's arguments, split (see the module docstring)."""
    __slots__ = ("key", "leaves", "names", "weak", "_trees", "_static", "_npos")

    def __init__(self, key, leaves, names, weak, trees, static, npos):
        self.key, self.leaves, self.names, self.weak = key, leaves, names, weak
        self._trees, self._static, self._npos = trees, static, npos

    def rebuild(self, traced) -> tuple[list, dict]:
        """fn's (args, kwargs) with `traced` (one per leaf) in the traced leaves' places."""
        it = iter(traced)
        args: list = [None] * self._npos
        kwargs: dict = {}
        for where, tree, kinds in self._trees:
            value = tree_unflatten(tree, [next(it) if k is _TRACED else k for k in kinds])
            _put(args, kwargs, where, value)
        for where, value in self._static:
            _put(args, kwargs, where, value)
        return args, kwargs

    def static_values(self) -> list:
        return [v for _, v in self._static]

    def describe(self) -> str:
        """'x: f32[4,3], w: f32[3,2]': the traced leaves with their types."""
        return ", ".join(f"{n}: {_type(a)}" for n, a in zip(self.names, self.leaves))


def _put(args: list, kwargs: dict, where, value) -> None:
    if isinstance(where, int):
        args[where] = value
    else:
        kwargs[where] = value


def _type(a: np.ndarray) -> str:
    try:
        d = to_dtype(a.dtype)
    except (TypeError, ValueError):
        return f"{a.dtype}{list(a.shape)}"
    return f"{d}[{','.join(map(str, a.shape))}]"


class ArgSpec:
    """What `lp.compile(fn, static_argnums=..., static_argnames=...)` knows of fn's parameters."""

    def __init__(self, fn, static_argnums=(), static_argnames=()):
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # a builtin or an object without a signature
            params = []
        self._positional = [p.name for p in params
                            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        self._varargs = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), None)
        self.static_argnums = tuple(static_argnums)
        self.static_argnames = set(static_argnames)
        for n in self.static_argnums:  # as jax.jit: a static position is static by name too
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(f"static_argnums must be ints, got {n!r}")
            if 0 <= n < len(self._positional):
                self.static_argnames.add(self._positional[n])
        self.simple = not self.static_argnums and not self.static_argnames

    def name(self, i: int) -> str:
        if i < len(self._positional):
            return self._positional[i]
        return f"{self._varargs or 'args'}[{i - len(self._positional)}]"

    def _static_position(self, i: int, n: int) -> bool:
        return any(k % n == i for k in self.static_argnums if -n <= k < n) or (
            i < len(self._positional) and self._positional[i] in self.static_argnames)

    def split(self, args: tuple, kwargs: dict) -> Call:
        simple = self.simple
        entries = [(i, self.name(i), a, not simple and self._static_position(i, len(args)))
                   for i, a in enumerate(args)]
        entries += [(k, k, kwargs[k], k in self.static_argnames) for k in sorted(kwargs)]
        leaves, names, weak, trees, static = [], [], [], [], []
        for where, name, value, is_static in entries:
            if is_static:
                static.append((where, _hashable(value, name, "a static argument")))
                continue
            if type(value) is np.ndarray:   # (the common case: one array, as below)
                trees.append((where, LEAF_DEF, _ONE_TRACED))
                leaves.append(_traced(value, name))
                names.append(name)
                continue
            ls, tree = tree_flatten(value)
            kinds = []
            for leaf, path in zip(ls, tree_paths(value)):
                arr = _traced(leaf, name + path)
                if arr is None:
                    kinds.append(_hashable(leaf, name + path, "a non-array argument"))
                    continue
                kinds.append(_TRACED)
                if type(leaf) in _PY:
                    weak.append(len(leaves))
                leaves.append(arr)
                names.append(name + path)
            trees.append((where, tree, tuple(kinds)))
        weak = frozenset(weak)
        key = (tuple(trees), tuple(static),
               tuple((a.shape, a.dtype) for a in leaves), weak)
        return Call(key, leaves, names, weak, trees, static, len(args))


def _traced(x, name: str) -> np.ndarray | None:
    """x as the array the compiled code takes, or None when x is a compile-time constant."""
    t = type(x)
    if t in _PY:
        try:
            return np.asarray(x, dtype=_PY[t])
        except OverflowError:
            raise ValueError(f"argument {name}: the Python int {x} does not fit in int64") \
                from None
    if t is np.ndarray or isinstance(x, np.generic):
        a = np.asarray(x)
    elif not isinstance(x, type) and hasattr(x, "shape") and hasattr(x, "dtype") \
            and hasattr(x, "__array__"):
        a = np.asarray(x)  # another library's array
    else:
        return None
    try:
        to_dtype(a.dtype)
    except (TypeError, ValueError):
        raise TypeError(f"argument {name}: dtype {a.dtype} is not supported "
                        f"(got {a.dtype}{list(a.shape)})") from None
    return a


def _hashable(value, name: str, what: str):
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"argument {name} is {what} ({type(value).__name__}), so it is part of "
                        f"the compiled signature and must be hashable") from None
    return value
