"""Helpers for pass tests: a case is the IR before and the IR expected after, as inline text;
`check_case` runs the pass on the parsed `before`, compares the printed result with `after`
and checks numerically, with the reference interpreter, that both graphs compute the same."""
from collections import Counter
from textwrap import dedent

import numpy as np
import pytest

from lepton.ir import interpret, parse, verify

SAME = object()  # `after` of a case whose graph the pass must leave as it is


def case(name: str, before: str, after):
    return pytest.param(name, before, after, id=name)


def sample_inputs(g, seed: int = 0) -> list[np.ndarray]:
    """Positive floats (so log, sqrt and division are defined), small ints, random bools."""
    rng = np.random.default_rng(seed)
    out = []
    for v in g.inputs:
        t = v.type
        if t.dtype.is_float:
            out.append(rng.uniform(0.5, 2.0, t.shape).astype(t.dtype.np))
        elif t.dtype.is_int:
            out.append(rng.integers(-5, 6, t.shape).astype(t.dtype.np))
        else:
            out.append(rng.integers(0, 2, t.shape).astype(bool))
    return out


def assert_same_results(g, h, args=None, rtol=1e-6):
    """g and h give the same outputs (dtype, shape, values to rtol; NaNs where NaNs)."""
    args = sample_inputs(g) if args is None else args
    for k, (a, b) in enumerate(zip(interpret(g, *args), interpret(h, *args))):
        assert a.dtype == b.dtype and a.shape == b.shape, f"output {k}"
        if a.dtype.kind == "f":
            np.testing.assert_allclose(b, a, rtol=rtol, atol=0, equal_nan=True,
                                       err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(b, a, err_msg=f"output {k}")


def check_case(pass_fn, name: str, before: str, after) -> Counter:
    """Runs the case; the rule named before the '/' in `name` must have fired (a SAME case:
    nothing may fire). Returns the pass's counts."""
    g = parse(dedent(before).strip())
    original = str(g)
    counts: Counter = Counter()
    out = pass_fn(g, counts)
    assert str(g) == original, "the pass changed its input graph"
    verify(out)
    if after is SAME:
        assert str(out) == original
        assert not counts, f"nothing should fire, got {dict(counts)}"
    else:
        assert str(out) == dedent(after).strip()
        rule = name.split("/")[0]
        assert counts[rule] >= 1, f"rule {rule} did not fire: {dict(counts)}"
    assert_same_results(g, out)
    return counts
