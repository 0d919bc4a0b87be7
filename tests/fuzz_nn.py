"""Step kinds for linear algebra and neural ops in fuzzed models (see fuzz_models.py), and the
`programs` strategy that combines every kind.

    >>> prog = data.draw(programs(max_steps=8, grad=False))
"""
from __future__ import annotations

import math

from hypothesis import strategies as st

import fuzz_models as fm
from fuzz_program import SMALL, Builder

_DIMS = SMALL + (64, 100, 257)


def _float_or_new(b: Builder, shape_ok, make_shape):
    """An existing float value whose shape passes shape_ok, or a new input of make_shape()."""
    i = b.pick(lambda v: v.t.dtype.is_float and shape_ok(v.t.shape)) if b.flag(0.7) else None
    return i if i is not None else b.new_input(make_shape(), b.choice(b.floats))


def _maybe_input(b: Builder, shape, dtype):
    """None, a new input, or a NumPy constant of `shape` (bias, weight, residual)."""
    r = b.choice(("none", "input", "const"))
    if r == "input":
        return b.new_input(shape, dtype), None
    return None, (b.const(shape, dtype) if r == "const" else None)


def k_matmul(b: Builder):
    ints = not b.grad and b.flag(0.1)
    dt = (lambda: b.choice(("int32", "int64", "bool"))) if ints else (
        lambda: b.choice(b.floats))
    i = b.pick(lambda v: v.t.ndim >= 1 and (v.t.dtype.is_float != ints)
               and v.t.ndim <= 3) if b.flag(0.6) else None
    ta = False
    if i is None:
        shape = tuple(b.choice(_DIMS) for _ in range(b.d(st.integers(1, 3))))
        ta = len(shape) >= 2 and b.flag(0.3)
        i = b.new_input(shape, dt())
    a = b.v(i).shape
    if ta:
        a = a[:-2] + (a[-1], a[-2])
    k = a[-1]
    n = b.choice(_DIMS)
    form = b.choice(("vec", "mat", "mat", "batched"))
    if form == "vec":
        bshape = (k,)
    elif form == "mat":
        bshape = (k, n)
    else:
        batch = a[:-2] if len(a) > 2 else (b.choice((1, 2, 3)),)
        bshape = tuple(1 if b.flag(0.3) else s for s in batch) + (k, n)
    m = a[-2] if len(a) >= 2 else 1
    flops = m * k * n * max(1, math.prod(bshape[:-2]), math.prod(a[:-2]))
    if flops > 3e7:
        bshape, n, form = (k,), 1, "vec"
    tb = len(bshape) >= 2 and b.flag(0.4)
    stored = bshape[:-2] + (bshape[-1], bshape[-2]) if tb else bshape
    j = b.new_input(stored, dt())
    via = b.choice(("@", "matmul", "dot", "method"))
    if via in ("dot", "method") and len(bshape) > 2 and flops * math.prod(bshape[:-2]) > 3e7:
        via = "@"  # dot of an n-d b pairs every batch of a with every batch of b
    ids, params = [i, j, None], {"ta": ta, "tb": tb, "via": via}
    if form != "vec" and b.flag(0.5):
        ids[2], params["bias_const"] = _maybe_input(b, (n,), dt())
    if not ints:
        params["act"] = b.choice((None, "relu", "gelu", "tanh", "sigmoid"))
        params["scale"] = b.choice((None, 0.5, 2.0))
    (out,) = b.add("matmul", ids, **params)
    if b.flag(0.4):  # a residual of the result's shape
        shape = b.v(out).shape
        r = b.new_input(shape, b.v(out).dtype.name)
        b.add("binary", [out, r], op="+")


def k_softmax(b: Builder):
    # (over a zero-size axis the frontend's max raises, which NumPy-style code would too)
    i = b.pick(lambda v: v.t.ndim >= 1 and v.t.size and (v.t.dtype.is_float or not b.grad))
    if i is None:
        return fm._fresh(b)
    b.add("softmax", [i], axis=fm._axis(b, b.v(i).ndim), log=b.flag(0.4))


def k_layer_norm(b: Builder):
    i = b.pick(lambda v: v.t.ndim >= 1 and v.t.dtype.is_float)
    if i is None:
        return fm._fresh(b, float_only=True)
    d = b.v(i).shape[-1]
    dt = b.v(i).dtype.name
    w = b.new_input((d,), dt) if b.flag(0.5) else None
    bias = b.new_input((d,), dt) if b.flag(0.5) else None
    b.add("layer_norm", [i, w, bias], eps=b.choice((1e-5, 1e-3)))


def _image(b: Builder):
    return _float_or_new(b, lambda s: len(s) == 4 and s[2] >= 3 and s[3] >= 3, lambda: (
        b.choice((1, 2, 3)), b.choice((1, 2, 3, 4, 8)), b.choice((3, 5, 8, 13, 16)),
        b.choice((3, 4, 7, 16, 17))))


def k_conv2d(b: Builder):
    i = _image(b)
    n, c, h, w = b.v(i).shape
    groups = b.choice([g for g in (1, 2, 3, 4) if c % g == 0])
    o = groups * b.choice((1, 2, 3, 8))
    kh, kw = b.choice((1, 2, 3)), b.choice((1, 3, 5))
    stride = b.choice((1, 2, (2, 1), 3))
    pad = b.choice((0, 1, (1, 2), 2))
    dil = b.choice((1, 1, 2))
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    dl = dil
    if h + 2 * ph - dl * (kh - 1) - 1 < 0 or w + 2 * pw - dl * (kw - 1) - 1 < 0:
        kh = kw = 1
    wi = b.new_input((o, c // groups, kh, kw), b.v(i).dtype.name)
    bias = b.new_input((o,), b.v(i).dtype.name) if b.flag(0.5) else None
    b.add("conv2d", [i, wi, bias], stride=stride, padding=pad, dilation=dil, groups=groups)


def k_pool(b: Builder):
    i = _image(b)
    h, w = b.v(i).shape[2:]
    k = b.choice([s for s in (1, 2, 3) if s <= min(h, w)])
    pad = b.choice(range(k // 2 + 1))
    stride = b.choice((None, 1, 2, 3))
    b.add("pool", [i], op=b.choice(("max", "avg")), kernel_size=k, stride=stride, padding=pad)


def k_cross_entropy(b: Builder):
    i = _float_or_new(b, lambda s: len(s) == 2 and s[1] >= 1,
                      lambda: (b.choice((1, 3, 8, 33)), b.choice((2, 5, 10, 1000))))
    n, c = b.v(i).shape
    if b.flag(0.7):
        lab = b.new_input((n,), b.choice(("int32", "int64")), data=("range", 0, c))
        return b.add("cross_entropy", [i, lab])
    b.add("cross_entropy", [i, None], const=b.rng.integers(0, c, n))


def k_creation(b: Builder):
    i = b.pick(lambda v: v.t.dtype.is_float) if b.grad else b.pick()
    if i is None:
        return fm._fresh(b)
    ops = ("zeros", "ones", "full") if b.grad else ("zeros", "ones", "full", "arange")
    dtype = b.choice(b.floats) if b.grad else b.choice((None, "float32", "int64", "int32"))
    b.add("creation", [i], exact=b.vals[i].exact, op=b.choice(ops), dtype=dtype)


def k_input(b: Builder):
    fm._fresh(b)


KINDS = {
    "unary": fm.k_unary, "binary": fm.k_binary, "where": fm.k_where, "invert": fm.k_invert,
    "astype": fm.k_astype, "reduce": fm.k_reduce, "reshape": fm.k_reshape,
    "transpose": fm.k_transpose, "expand_squeeze": fm.k_expand_squeeze,
    "broadcast_to": fm.k_broadcast_to, "concatenate": fm.k_concatenate, "stack": fm.k_stack,
    "split": fm.k_split, "getitem": fm.k_getitem, "take": fm.k_take, "matmul": k_matmul,
    "softmax": k_softmax, "layer_norm": k_layer_norm, "conv2d": k_conv2d, "pool": k_pool,
    "cross_entropy": k_cross_entropy, "creation": k_creation, "input": k_input,
    "reduce_combine": fm.k_reduce_combine,
}
# Elementwise and reductions are drawn more often: they are what most models are made of.
FORWARD_KINDS = list(KINDS) + ["unary", "binary", "binary", "reduce", "getitem", "matmul"]
GRAD_KINDS = [k for k in FORWARD_KINDS if k not in ("invert",)]
# What fusion groups are made of: elementwise chains, broadcasts, trailing reductions, matmul
# and conv epilogues.
FUSION_KINDS = ["unary", "unary", "binary", "binary", "binary", "where", "astype", "reduce",
                "reduce_combine", "reduce_combine", "reduce_combine", "softmax", "layer_norm", "matmul", "conv2d", "broadcast_to",
                "transpose", "expand_squeeze"]


@st.composite
def programs(draw, max_steps: int = 8, grad: bool = False, kinds=None, big: float = 0.2,
             specials: bool = False):
    """A random model (fuzz_program.Program); grad=True: float inputs (ints only as labels and
    indices), differentiable steps, outputs a list of float values to make a scalar loss of;
    kinds: the step kinds to draw from (KINDS' names, repeats weigh); big: how often an input
    dimension is large (thousands: threads split such kernels); specials: float inputs may
    hold nan, inf, -0.0 and denormals."""
    from lepton.frontends.tensor import tracing
    b = Builder(draw, grad, big)
    b.specials = specials
    kinds = kinds or (GRAD_KINDS if grad else FORWARD_KINDS)
    with tracing(b.g):
        for _ in range(draw(st.integers(1, 2))):
            fm._fresh(b)
        for _ in range(draw(st.integers(1, max_steps))):
            kind = b.choice(kinds)
            try:
                KINDS[kind](b)
            except Exception as e:  # the frontend refused a step: show the model so far
                e.add_note(f"while drawing a {kind} step after:\n{b.prog!r}")
                raise
        ok = (lambda v: v.t.dtype.is_float) if grad else (lambda v: True)
        cands = [i for i, v in enumerate(b.vals) if ok(v)]
        # Values nothing else reads are outputs (up to 4), so little of the model is dead.
        used, made, n = set(), set(), 0
        for step in b.prog.steps:
            count = 1 if step[0] == "input" else (step[3] if len(step) > 3 else 1)
            if step[0] != "input":
                used.update(step[1])
                made.update(range(n, n + count))
            n += count
        sinks = [i for i in cands if i in made and i not in used and i != cands[-1]]
        ids = [cands[-1]] + sinks[-3:] + draw(st.lists(st.sampled_from(cands), max_size=2))
    form = "list" if grad else draw(st.sampled_from(
        ["leaf", "tuple", "list", "dict", "nested"] if len(ids) == 1 else
        ["tuple", "list", "dict", "nested"]))
    if form == "leaf":
        b.prog.outputs = ids[0]
    elif form == "tuple":
        b.prog.outputs = tuple(ids)
    elif form == "list":
        b.prog.outputs = list(ids)
    elif form == "dict":
        b.prog.outputs = {f"k{j}": i for j, i in enumerate(ids)}
    else:
        b.prog.outputs = {"a": (ids[0],), "b": [ids[1:]]}
    return b.prog
