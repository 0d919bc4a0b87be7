"""Random Lepton models as data: the `Program` a fuzzed model is, and the `Builder` that draws one.

A model is a `Program`: a list of steps (tests/fuzz_ops.py), each applied to earlier values,
with graph inputs created on the way and a pytree of values returned. It is drawn while being
traced, so every draw knows the real shapes and dtypes the frontend gave, and replayed by
`Program.model` for lp.compile / lp.trace:

    >>> prog = data.draw(fuzz_nn.programs())
    >>> args = prog.arguments()                       # NumPy data for the inputs
    >>> lp.compile(prog.model)(*args)                 # vs lp.ir.interpret(lp.trace(...), *args)

`repr(prog)` is the model as Python-like lines (`v3 = binary(v1, v2, op='+')`), which is what a
failing example prints. Values carry an `exact` flag: True when two correct implementations
must agree bit for bit (inputs, ints, bools, and moves/max/min/abs of exact values), which is
what comparisons, argmax and float->int casts are drawn on, so rounding never flips a result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import lepton as lp
from lepton.frontends.tensor import Tensor, tracing
from lepton.ir.graph import Graph
from lepton.ir.types import TensorType

from fuzz_ops import STEPS

FLOATS = ("float32", "float64")
DTYPES = ("float32", "float64", "int32", "int64", "bool")
SMALL = (1, 1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 33)
MAX_SIZE = 150_000        # elements per value: big enough for threading (> 32K), quick to check


@dataclass
class Input:
    type: TensorType
    data: tuple             # ("normal",) ("grid",) ("special",) ("range", lo, hi) ("bool",)
    scalar: bool = False    # passed to the compiled function as a Python scalar


@dataclass
class Program:
    steps: list = field(default_factory=list)    # (name, input value ids, params) or ("input", k)
    inputs: list = field(default_factory=list)   # Input per graph argument, in order
    outputs: object = None                       # pytree of value ids
    seed: int = 0

    def model(self, *args):
        if len(args) != len(self.inputs):
            raise TypeError(f"the model takes {len(self.inputs)} arguments, got {len(args)}")
        vals, it = [], iter(args)
        for step in self.steps:
            if step[0] == "input":
                vals.append(next(it))
                continue
            name, ids, params = step[:3]
            out = STEPS[name](*[vals[i] if i is not None else None for i in ids], **params)
            vals.extend(out if isinstance(out, list) else [out])
        return tree_map(lambda i: vals[i], self.outputs)

    def arguments(self, seed: int | None = None) -> list:
        rng = np.random.default_rng(self.seed if seed is None else seed)
        return [_data(rng, inp) for inp in self.inputs]

    def _repr_pretty_(self, p, cycle):  # what hypothesis prints for a failing example
        p.text("\n" + repr(self))

    def __repr__(self) -> str:
        lines, n, k = [], 0, 0
        for step in self.steps:
            if step[0] == "input":
                inp = self.inputs[k]
                lines.append(f"v{n} = input({inp.type}, {inp.data}"
                             f"{', scalar' if inp.scalar else ''})")
                n, k = n + 1, k + 1
                continue
            name, ids, params = step[:3]
            args = [f"v{i}" if i is not None else "None" for i in ids]
            args += [f"{key}={_short(v)}" for key, v in params.items()]
            count = step[3] if len(step) > 3 else 1
            outs = ", ".join(f"v{n + j}" for j in range(count))
            lines.append(f"{outs} = {name}({', '.join(args)})")
            n += count
        lines.append(f"return {tree_map(lambda i: f'v{i}', self.outputs)}  # seed={self.seed}")
        return "\n".join(lines)


def _short(v):
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()!r}, {v.dtype})" if v.size <= 12 else \
            f"<{v.dtype}{list(v.shape)} array>"
    if isinstance(v, np.generic):
        return f"np.{v.dtype}({v.item()!r})"
    return repr(v)


def tree_map(f, tree):
    if isinstance(tree, dict):
        return {k: tree_map(f, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(f, v) for v in tree)
    return f(tree)


def _data(rng, inp: Input):
    t = inp.type
    kind = inp.data[0]
    if kind == "bool":
        a = rng.random(t.shape) < 0.5
    elif kind == "range":
        a = rng.integers(inp.data[1], inp.data[2], t.shape)
    elif kind == "grid":  # repeated values: ties for argmax/max, exact zeros for relu/abs
        a = rng.integers(-4, 5, t.shape) / 2
    elif kind == "special":  # normal values with some nan, +-inf, -0.0 and denormals
        # (no huge finite values: whether a*b + c overflows depends on fma contraction)
        a = rng.standard_normal(t.shape)
        mask = rng.random(t.shape)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40, -1e-39])
        a = np.where(mask < 0.1, specials[rng.integers(0, len(specials), t.shape)], a)
    else:
        a = rng.standard_normal(t.shape)
    a = np.asarray(a, dtype=t.dtype.np)
    if inp.scalar:
        return a.item()
    return a


@dataclass
class Val:
    t: Tensor
    exact: bool


class Builder:
    """Draws one program while tracing it (used by the `programs` strategy)."""

    def __init__(self, draw, grad: bool, big: float = 0.2):
        self.draw, self.grad, self.big = draw, grad, big  # big: how often a dim is large
        self.specials = False  # float inputs may hold nan, inf, -0.0 and denormals
        self.prog = Program(seed=draw(st.integers(0, 2**31 - 1)))
        self.rng = np.random.default_rng(self.prog.seed + 1)
        self.vals: list[Val] = []
        self.g = Graph("fuzz")
        # Gradient programs are all-f64 half the time, so finite differences can check them.
        self.floats = ("float64",) if grad and draw(st.booleans()) else FLOATS

    # -- drawing helpers -------------------------------------------------------------------
    def d(self, strategy):
        return self.draw(strategy)

    def choice(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def flag(self, p: float = 0.5) -> bool:
        return self.draw(st.integers(0, 99)) < p * 100

    def pick(self, pred=lambda v: True):
        ids = [i for i, v in enumerate(self.vals) if pred(v)]
        if not ids:
            return None
        # Recent values are likelier: models are mostly chains.
        return self.draw(st.sampled_from(ids[-6:] if self.flag(0.7) else ids))

    def dtype(self):
        return self.choice(self.floats) if self.grad else self.choice(DTYPES + FLOATS)

    def shape(self, max_ndim=4, big=True):
        ndim = self.d(st.integers(0, max_ndim))
        dims = [self.choice(SMALL) for _ in range(ndim)]
        if big and ndim and self.flag(self.big):
            dims[self.d(st.integers(0, ndim - 1))] = self.choice((257, 1031, 4099, 40000))
        while math.prod(dims) > MAX_SIZE:
            dims[dims.index(max(dims))] //= 2
        return tuple(dims)

    def const(self, shape, dtype):
        if dtype == "bool":
            return self.rng.random(shape) < 0.5
        if dtype in ("int32", "int64"):
            return self.rng.integers(-5, 6, shape).astype(dtype)
        return self.rng.standard_normal(shape).astype(dtype)

    # -- recording -------------------------------------------------------------------------
    def new_input(self, shape, dtype, data=None, exact=True) -> int:
        if data is None and dtype == "bool":
            data = ("bool",)
        elif data is None and dtype.startswith("int"):
            data = ("range", -5, 6)
        elif data is None:
            data = (("grid",) if not self.grad and self.flag(0.15) else ("special",)
                    if self.specials and self.flag(0.3) else ("normal",))
        scalar = shape == () and not self.grad and dtype != "int32" and self.flag(0.3)
        if scalar and dtype == "float64":
            scalar = False  # a Python float is f32
        tt = TensorType(lp.ir.types.dtype(dtype), shape)
        self.prog.inputs.append(Input(tt, data, scalar))
        self.prog.steps.append(("input", len(self.prog.inputs) - 1))
        self.vals.append(Val(Tensor(self.g.input(tt), self.g), exact))
        return len(self.vals) - 1

    def add(self, name, ids, exact=False, **params) -> list[int]:
        out = STEPS[name](*[self.vals[i].t if i is not None else None for i in ids], **params)
        outs = out if isinstance(out, list) else [out]
        step = (name, tuple(ids), params) + ((len(outs),) if len(outs) > 1 else ())
        self.prog.steps.append(step)
        first = len(self.vals)
        for o in outs:
            assert isinstance(o, Tensor), (name, o)
            self.vals.append(Val(o, exact or not o.dtype.is_float))  # ints never round
        return list(range(first, len(self.vals)))

    def v(self, i) -> Tensor:
        return self.vals[i].t

    def float_val(self, min_ndim=0):
        return self.pick(lambda v: v.t.dtype.is_float and v.t.ndim >= min_ndim)


def factor(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out + ([n] if n > 1 else [])


def broadcast_partner(b: Builder, shape) -> tuple:
    """A shape that broadcasts with `shape`, either way (dims set to 1, leading dims dropped or
    added)."""
    dims = [1 if b.flag(0.3) else s for s in shape]
    if dims and b.flag(0.3):
        dims = dims[b.d(st.integers(0, len(dims))):]
    if b.flag(0.2) and len(dims) == len(shape) < 4:
        dims = [b.choice((2, 3))] + dims
        if math.prod(dims) * max(1, math.prod(shape)) > 2 * MAX_SIZE:
            dims[0] = 1
    return tuple(dims)


def broadcasts(s1, s2) -> bool:
    try:
        out = np.broadcast_shapes(s1, s2)
    except ValueError:
        return False
    return math.prod(out) <= 2 * MAX_SIZE
