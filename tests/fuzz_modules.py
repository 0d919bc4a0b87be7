"""A hypothesis strategy for random `lp.nn` models: Sequential stacks of Linear, Conv2d,
LayerNorm, Embedding, pools, activations and Flatten with shapes that fit, plus a batch and
class labels for a cross-entropy loss.

    >>> spec = data.draw(model_specs())
    >>> model, x, labels = build(spec)             # a fresh model with seeded parameters

A spec is plain data (layer names and arguments), so a failing example prints readably.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import lepton as lp

_ACTS = ("ReLU", "GELU", "GELU_tanh", "Tanh", "Sigmoid")


@st.composite
def model_specs(draw):
    kind = draw(st.sampled_from(["mlp", "conv", "embed"]))
    n = draw(st.sampled_from([1, 2, 5, 16]))
    classes = draw(st.sampled_from([2, 3, 10]))
    layers = []
    if kind == "mlp":
        f = draw(st.sampled_from([1, 3, 8, 33]))
        x = ("float", (n, f))
        for _ in range(draw(st.integers(0, 4))):
            what = draw(st.sampled_from(["Linear", "act", "LayerNorm"]))
            if what == "Linear":
                f2 = draw(st.sampled_from([1, 4, 17, 64]))
                layers.append(("Linear", f, f2, draw(st.booleans())))
                f = f2
            elif what == "LayerNorm":
                layers.append(("LayerNorm", f))
            else:
                layers.append((draw(st.sampled_from(_ACTS)),))
    elif kind == "conv":
        c, h, w = (draw(st.sampled_from(v)) for v in ([1, 3], [5, 8, 11], [4, 7, 9]))
        x = ("float", (n, c, h, w))
        for _ in range(draw(st.integers(1, 3))):
            what = draw(st.sampled_from(["Conv2d", "Conv2d", "act", "MaxPool2d", "AvgPool2d"]))
            if what == "Conv2d":
                o, k = draw(st.sampled_from([2, 4, 6])), draw(st.sampled_from([1, 2, 3]))
                s, p = draw(st.sampled_from([1, 2])), draw(st.sampled_from([0, 1]))
                if min(h, w) + 2 * p < k:
                    continue
                layers.append(("Conv2d", c, o, k, s, p))
                c, h, w = o, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif what in ("MaxPool2d", "AvgPool2d"):
                k = draw(st.sampled_from([1, 2, 3]))
                p = draw(st.integers(0, k // 2))
                if min(h, w) + 2 * p < k:
                    continue
                layers.append((what, k, None, p))
                h, w = (h + 2 * p - k) // k + 1, (w + 2 * p - k) // k + 1
            else:
                layers.append((draw(st.sampled_from(_ACTS)),))
        layers.append(("Flatten",))
        f = c * h * w
    else:
        t, vocab, d = (draw(st.sampled_from(v)) for v in ([1, 3, 7], [4, 50], [2, 8]))
        x = ("index", (n, t), vocab)
        layers.append(("Embedding", vocab, d))
        if draw(st.booleans()):
            layers.append(("LayerNorm", d))
        if draw(st.booleans()):
            layers.append((draw(st.sampled_from(_ACTS)),))
        layers.append(("Flatten",))
        f = t * d
    layers.append(("Linear", f, classes, draw(st.booleans())))
    return {"layers": layers, "x": x, "classes": classes,
            "seed": draw(st.integers(0, 2**31 - 1))}


def build(spec):
    """(model, x, labels) for a spec: parameters drawn from the spec's seed."""
    rng = np.random.default_rng(spec["seed"])
    mods = []
    for layer in spec["layers"]:
        name, args = layer[0], layer[1:]
        if name == "Linear":
            mods.append(lp.nn.Linear(args[0], args[1], bias=args[2], rng=rng))
        elif name == "Conv2d":
            c, o, k, s, p = args
            mods.append(lp.nn.Conv2d(c, o, k, stride=s, padding=p, rng=rng))
        elif name == "LayerNorm":
            m = lp.nn.LayerNorm(args[0])
            # not the identity init: the affine parameters must matter
            m.load_parameters({k: rng.standard_normal(v.shape).astype(v.dtype)
                               for k, v in m.parameters().items()})
            mods.append(m)
        elif name == "Embedding":
            mods.append(lp.nn.Embedding(args[0], args[1], rng=rng))
        elif name == "GELU_tanh":
            mods.append(lp.nn.GELU("tanh"))
        elif name in ("MaxPool2d", "AvgPool2d"):
            mods.append(getattr(lp.nn, name)(*args))
        else:
            mods.append(getattr(lp.nn, name)())
    model = lp.nn.Sequential(*mods)
    if spec["x"][0] == "index":
        x = rng.integers(0, spec["x"][2], spec["x"][1])
    else:
        x = rng.standard_normal(spec["x"][1]).astype(np.float32)
    labels = rng.integers(0, spec["classes"], spec["x"][1][0])
    assert math.prod(x.shape) > 0
    return model, x, labels
