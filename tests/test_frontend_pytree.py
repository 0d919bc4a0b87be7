"""Pytrees: flatten/unflatten round trips, JAX's sorted dict order, treedef identity."""
from collections import namedtuple

import numpy as np
import pytest

from lepton.frontends.pytree import (PyTreeDef, tree_flatten, tree_leaves, tree_map,
                                     tree_structure, tree_unflatten)

Point = namedtuple("Point", "x y")


@pytest.mark.parametrize("tree", [
    1, None, [], (), {}, [1, [2, (3,)]], {"b": 1, "a": [2, None, 3]}, (None, {"k": ()}),
    Point(1, [2, 3]), {"x": np.ones(2), "y": {"z": (np.zeros(1),)}}, [[[[4]]]],
])
def test_round_trip(tree):
    leaves, t = tree_flatten(tree)
    assert t.num_leaves == len(leaves)
    back = tree_unflatten(t, leaves)
    assert tree_structure(back) == t
    assert all(a is b for a, b in zip(tree_leaves(back), leaves))
    assert type(back) is type(tree)


def test_dict_keys_are_sorted_and_order_does_not_matter():
    leaves, t1 = tree_flatten({"b": 1, "a": 2, "c": {"z": 3, "y": 4}})
    assert leaves == [2, 1, 4, 3]
    _, t2 = tree_flatten({"c": {"y": 0, "z": 0}, "a": 0, "b": 0})
    assert t1 == t2 and hash(t1) == hash(t2)
    assert list(tree_unflatten(t1, leaves)) == ["a", "b", "c"]


def test_structure_distinguishes_containers():
    shapes = [[1, 2], (1, 2), {"a": 1, "b": 2}, Point(1, 2), [1, [2]], [1, 2, None]]
    defs = [tree_structure(s) for s in shapes]
    assert len(set(defs)) == len(defs)
    assert tree_structure({"a": 1}) != tree_structure({"b": 1})


def test_treedef_prints_like_the_tree():
    t = tree_structure({"b": [1, 2], "a": (3, None), "p": Point(1, (2,))})
    assert repr(t) == "PyTreeDef({'a': (*, None), 'b': [*, *], 'p': Point(x=*, y=(*,))})"
    assert isinstance(t, PyTreeDef) and {t: 1}[tree_structure({"a": (0, None), "b": [0, 0],
                                                               "p": Point(0, (0,))})] == 1


def test_errors():
    with pytest.raises(ValueError, match="has 2 leaves, got 3"):
        tree_unflatten(tree_structure([1, 2]), [1, 2, 3])
    with pytest.raises(TypeError, match="comparable"):
        tree_flatten({1: 1, "a": 2})


def test_tree_map_and_is_leaf():
    assert tree_map(lambda a, b: a + b, {"x": 1, "y": [2]}, {"x": 10, "y": [20]}) == \
        {"x": 11, "y": [22]}
    with pytest.raises(ValueError, match="structures differ"):
        tree_map(lambda a, b: a, [1], (1,))
    leaves, _ = tree_flatten([(1, 2), (3,)], is_leaf=lambda x: isinstance(x, tuple))
    assert leaves == [(1, 2), (3,)]
