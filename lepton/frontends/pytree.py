"""Pytrees: nested dicts, lists, tuples (and namedtuples) with `None` as an empty container.
Everything else is a leaf. Dict keys are visited in sorted order, as JAX does, so two dicts with
the same keys flatten the same way whatever order they were built in.

    >>> leaves, tree = tree_flatten({"b": [1, 2], "a": (3, None)})
    >>> leaves
    [3, 1, 2]
    >>> tree
    PyTreeDef({'a': (*, None), 'b': [*, *]})
    >>> tree_unflatten(tree, ["x", "y", "z"])
    {'a': ('x', None), 'b': ['y', 'z']}

A `PyTreeDef` is immutable, hashable and compares by structure, so it can be part of a cache key.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

# Node kinds. A namedtuple keeps its class in `meta`; a dict keeps its sorted keys.
LEAF, NONE, TUPLE, LIST, DICT, NAMEDTUPLE = "leaf", "none", "tuple", "list", "dict", "namedtuple"


class PyTreeDef:
    """The structure of a pytree without its leaves."""
    __slots__ = ("kind", "meta", "children", "num_leaves", "_hash")

    def __init__(self, kind: str, meta: Any = None, children: tuple["PyTreeDef", ...] = ()):
        self.kind = kind
        self.meta = meta
        self.children = tuple(children)
        self.num_leaves = 1 if kind == LEAF else sum(c.num_leaves for c in self.children)
        self._hash = hash((kind, meta, self.children))

    def __eq__(self, other) -> bool:
        return (isinstance(other, PyTreeDef) and self._hash == other._hash
                and self.kind == other.kind and self.meta == other.meta
                and self.children == other.children)

    def __hash__(self) -> int:
        return self._hash

    def _text(self) -> str:
        if self.kind == LEAF:
            return "*"
        if self.kind == NONE:
            return "None"
        inner = [c._text() for c in self.children]
        if self.kind == LIST:
            return "[" + ", ".join(inner) + "]"
        if self.kind == TUPLE:
            return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"
        if self.kind == NAMEDTUPLE:
            fields = ", ".join(f"{f}={t}" for f, t in zip(self.meta._fields, inner))
            return f"{self.meta.__name__}({fields})"
        return "{" + ", ".join(f"{k!r}: {t}" for k, t in zip(self.meta, inner)) + "}"

    def __repr__(self) -> str:
        return f"PyTreeDef({self._text()})"

    __str__ = __repr__


LEAF_DEF = PyTreeDef(LEAF)


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:
        raise TypeError(f"pytree dict keys must be mutually comparable to be sorted, "
                        f"got {list(d)!r}") from None


def tree_flatten(tree, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, PyTreeDef]:
    """Returns (leaves in order, structure). `is_leaf(x)` may stop the descent at x."""
    leaves: list = []
    return leaves, _walk(tree, leaves, is_leaf)


def _walk(x, leaves: list, is_leaf) -> PyTreeDef:
    # a module function, not a recursive closure: a closure referring to itself is a reference
    # cycle that would keep `leaves` (a compiled call's arguments) alive until the next
    # garbage collection
    if is_leaf is not None and is_leaf(x):
        leaves.append(x)
        return LEAF_DEF
    if x is None:
        return PyTreeDef(NONE)
    if type(x) is dict:
        keys = _sorted_keys(x)
        return PyTreeDef(DICT, keys, tuple(_walk(x[k], leaves, is_leaf) for k in keys))
    if type(x) is list:
        return PyTreeDef(LIST, None, tuple(_walk(c, leaves, is_leaf) for c in x))
    if type(x) is tuple:
        return PyTreeDef(TUPLE, None, tuple(_walk(c, leaves, is_leaf) for c in x))
    if _is_namedtuple(x):
        return PyTreeDef(NAMEDTUPLE, type(x), tuple(_walk(c, leaves, is_leaf) for c in x))
    leaves.append(x)
    return LEAF_DEF


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable) -> Any:
    """The inverse of tree_flatten: rebuilds the containers of `treedef` around `leaves`."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"{treedef} has {treedef.num_leaves} leaves, got {len(leaves)}")
    return _build(treedef, iter(leaves))


def _build(t: PyTreeDef, it):
    # a module-level function, not a closure over itself: that reference cycle kept every
    # returned array alive until the garbage collector ran (so output buffers were never reused)
    if t.kind == LEAF:
        return next(it)
    if t.kind == NONE:
        return None
    kids = [_build(c, it) for c in t.children]
    if t.kind == LIST:
        return kids
    if t.kind == TUPLE:
        return tuple(kids)
    if t.kind == NAMEDTUPLE:
        return t.meta(*kids)
    return dict(zip(t.meta, kids))


def tree_paths(tree, prefix: str = "") -> list[str]:
    """Readable paths of the leaves, in tree_flatten's order: `"['w'][0]"`, `""` for a leaf."""
    if tree is None:
        return []
    if type(tree) is dict:
        return [p for k in _sorted_keys(tree) for p in tree_paths(tree[k], f"{prefix}[{k!r}]")]
    if type(tree) in (list, tuple) or _is_namedtuple(tree):
        return [p for i, c in enumerate(tree) for p in tree_paths(c, f"{prefix}[{i}]")]
    return [prefix]


def tree_leaves(tree, is_leaf=None) -> list:
    return tree_flatten(tree, is_leaf)[0]


def tree_structure(tree, is_leaf=None) -> PyTreeDef:
    return tree_flatten(tree, is_leaf)[1]


def tree_map(f: Callable, tree, *rest, is_leaf=None):
    """Applies f leafwise; `rest` are trees of the same structure whose leaves are passed along.

        >>> tree_map(lambda a, b: a + b, {"x": 1, "y": [2]}, {"x": 10, "y": [20]})
        {'x': 11, 'y': [22]}
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    others = []
    for r in rest:
        rl, rt = tree_flatten(r, is_leaf)
        if rt != treedef:
            raise ValueError(f"tree_map: structures differ: {treedef} and {rt}")
        others.append(rl)
    return tree_unflatten(treedef, [f(*xs) for xs in zip(leaves, *others)])
