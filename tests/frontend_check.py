"""Shared checks for the frontend tests: trace a function, verify the graph, prove that its text
parses back to an equal graph, run it with the reference interpreter and compare with NumPy.

    >>> out, g = check(lambda x: lp.exp(x), x, ref=np.exp)
"""
from __future__ import annotations

import numpy as np

from lepton.frontends.pytree import tree_flatten, tree_unflatten
from lepton.frontends.tensor import spec_of
from lepton.frontends.trace import trace_flat
from lepton.ir import interpret, parse, verify


def run(fn, *args):
    """(outputs as the function's pytree of NumPy arrays, graph)."""
    g, _, out_tree = trace_flat(fn, args)
    verify(g)
    text = str(g)
    g2 = parse(text)
    assert g2 == g, f"parse(str(g)) differs:\n{text}\n---\n{g2}"
    assert str(g2) == text
    leaves, _ = tree_flatten(args)
    arrays = [np.asarray(x, dtype=spec_of(x).dtype.np) for x in leaves]
    outs = interpret(g, *arrays)
    again = interpret(g2, *arrays)
    for a, b in zip(outs, again):
        np.testing.assert_array_equal(a, b)
    return tree_unflatten(out_tree, outs), g


def f64(x):
    """The float64 NumPy version of an argument, for references."""
    x = np.asarray(x)
    return x.astype(np.float64) if x.dtype.kind == "f" else x


def check(fn, *args, ref, dtype=None, rtol=2e-5, atol=1e-6):
    """Runs fn traced and compares with ref(*float64 args); `dtype` is the expected result
    dtype (default: the first argument's). Returns (output, graph)."""
    out, g = run(fn, *args)
    expected = np.asarray(ref(*[f64(a) for a in args]))
    out_dtype = np.dtype(dtype) if dtype is not None else np.asarray(args[0]).dtype
    assert out.dtype == out_dtype, f"dtype {out.dtype}, expected {out_dtype}"
    assert out.shape == expected.shape, f"shape {out.shape}, expected {expected.shape}"
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(out, expected)
    return out, g


def rand(*shape, dtype=np.float32, seed=0, low=-2.0, high=2.0):
    rng = np.random.default_rng(seed + 7 * len(shape) + sum(shape))
    if np.dtype(dtype).kind == "f":
        return rng.uniform(low, high, shape).astype(dtype)
    if np.dtype(dtype) == np.bool_:
        return rng.random(shape) < 0.5
    return rng.integers(int(low) - 3, int(high) + 4, shape).astype(dtype)


def ops_of(g) -> list[str]:
    return [v.op for v in g.nodes if v.op != "input"]
