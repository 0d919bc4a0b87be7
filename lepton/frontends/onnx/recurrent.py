"""ONNX's RNN, GRU and LSTM on `lp.scan`: the input projections X @ W^T + Wb of all time steps
are one matmul before the loop; the scan body does the recurrent matmul and the gates. Each
direction is one scan (reverse=True for the backward one); with sequence_lens, steps past a
sequence's length keep its state and output zeros, as the ONNX spec says.

    LSTM(X[T,B,I], W[D,4H,I], R[D,4H,H], B, sequence_lens, initial_h, initial_c, P)
        -> Y[T,D,B,H], Y_h[D,B,H], Y_c[D,B,H]        (layout=1: batch first)
"""
from __future__ import annotations

import numpy as np

from ...ir.types import int64
from .. import ops
from ..control import scan
from ..tensor import Tensor, cast, constant
from . import elementwise as ew

_DEFAULTS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
_TAKES = {"Affine": 2, "LeakyRelu": 1, "ThresholdedRelu": 1, "ScaledTanh": 2, "HardSigmoid": 2,
          "Elu": 1}
_DEFAULT_AB = {"LeakyRelu": (0.01,), "ThresholdedRelu": (1.0,), "HardSigmoid": (0.2, 0.5),
               "Elu": (1.0,), "Affine": (1.0, 0.0), "ScaledTanh": (1.0, 1.0)}


def _activation(n, name: str, ab: list):
    ab = list(ab) + list(_DEFAULT_AB.get(name, ()))[len(ab):]
    zero = lambda x: constant(np.zeros((), x.dtype.np))  # noqa: E731
    table = {
        "Sigmoid": ops.sigmoid, "Tanh": ops.tanh, "Relu": ops.relu,
        "Softsign": ew.softsign, "Softplus": ew.softplus,
        "Affine": lambda x: x * ab[0] + ab[1],
        "LeakyRelu": lambda x: ops.where(x < 0, x * ab[0], x),
        "ThresholdedRelu": lambda x: ops.where(x > ab[0], x, zero(x)),
        "ScaledTanh": lambda x: ops.tanh(x * ab[1]) * ab[0],
        "HardSigmoid": lambda x: ops.clip(x * ab[0] + ab[1], 0.0, 1.0),
        "Elu": lambda x: ops.where(x > 0, x, ab[0] * (ops.exp(x) - 1.0)),
    }
    key = next((k for k in table if k.lower() == name.lower()), None)
    if key is None:
        n.unsupported(f"activation {name} is not supported")
    return table[key]


def _activations(n, dirs: int) -> list[list]:
    """Per direction, the op's activation functions (from `activations`, with their alphas
    and betas consumed in order)."""
    names = n.attr("activations") or list(_DEFAULTS[n.op_type]) * dirs
    alphas, betas = list(n.attr("activation_alpha") or []), list(n.attr("activation_beta") or [])
    per = len(_DEFAULTS[n.op_type])
    if len(names) != per * dirs:
        n.invalid(f"{len(names)} activations for {dirs} direction(s), {per} each")
    fns = []
    for name in names:
        k = _TAKES.get(name, 0)
        ab = []
        if k >= 1 and alphas:
            ab.append(alphas.pop(0))
        if k >= 2 and betas:
            ab.append(betas.pop(0))
        fns.append(_activation(n, name, ab))
    return [fns[d * per:(d + 1) * per] for d in range(dirs)]


def recurrent(n) -> list[Tensor]:
    kind = n.op_type
    x, w, r = n.x(0), n.x(1), n.x(2)
    b, lens, h0 = n.opt(3), n.opt(4), n.opt(5)
    c0 = n.opt(6) if kind == "LSTM" else None
    peep = n.opt(7) if kind == "LSTM" else None
    if n.attr("input_forget", 0):
        n.unsupported("input_forget=1 is not supported")
    batch_first = n.attr("layout", 0) == 1
    if batch_first:
        x = ops.swapaxes(x, 0, 1)
        h0 = None if h0 is None else ops.swapaxes(h0, 0, 1)
        c0 = None if c0 is None else ops.swapaxes(c0, 0, 1)
    direction = n.attr("direction", "forward")
    dirs = 2 if direction == "bidirectional" else 1
    steps, batch = x.shape[:2]
    hidden = n.attr("hidden_size") or r.shape[-1]
    g = _GATES[kind]
    clip = n.attr("clip")
    acts = _activations(n, dirs)
    dt = x.dtype
    zeros = constant(np.zeros((batch, hidden), dt.np))
    mask = None
    if lens is not None:   # (T, B, 1): step t is inside sequence b
        t = constant(np.arange(steps, dtype=np.int64).reshape(steps, 1, 1))
        mask = t < cast(lens, int64).reshape(1, batch, 1)

    ys, hs, cs = [], [], []
    for d in range(dirs):
        wd, rd = w[d], r[d]
        proj = ops.matmul(x, ops.transpose(wd, (1, 0)))              # (T, B, gH)
        wb = rb = None
        if b is not None:
            wb, rb = b[d][:g * hidden], b[d][g * hidden:]
            proj = proj + wb
        rt = ops.transpose(rd, (1, 0))                               # (H, gH)
        f = acts[d]
        init_h = zeros if h0 is None else h0[d]
        init_c = zeros if c0 is None else c0[d]
        p = None if peep is None else [peep[d][k * hidden:(k + 1) * hidden] for k in range(3)]
        reverse = direction == "reverse" or d == 1
        xs = (proj,) if mask is None else (proj, mask)

        def step(carry, inp, f=f, rt=rt, rb=rb, p=p):
            h, c = carry
            xp = inp[0]
            if kind == "GRU":
                new_h, new_c = _gru(n, xp, h, rt, rb, f, hidden, clip), c
            elif kind == "LSTM":
                gates = xp + ops.matmul(h, rt) + (0 if rb is None else rb)
                new_h, new_c = _lstm(gates, c, p, f, hidden, clip)
            else:
                pre = xp + ops.matmul(h, rt) + (0 if rb is None else rb)
                new_h, new_c = f[0](_clip(pre, clip)), c
            if mask is not None:
                m = inp[1]
                new_h, new_c = ops.where(m, new_h, h), ops.where(m, new_c, c)
                return (new_h, new_c), ops.where(m, new_h, zeros)
            return (new_h, new_c), new_h

        (h_last, c_last), y = scan(step, (init_h, init_c), xs, reverse=reverse)
        ys.append(y)
        hs.append(h_last)
        cs.append(c_last)
    y = ops.stack(ys, 1)                         # (T, D, B, H)
    yh, yc = ops.stack(hs, 0), ops.stack(cs, 0)   # (D, B, H)
    if batch_first:
        y = ops.transpose(y, (2, 0, 1, 3))
        yh, yc = ops.swapaxes(yh, 0, 1), ops.swapaxes(yc, 0, 1)
    outs = [y, yh] + ([yc] if kind == "LSTM" else [])
    return outs[:max(n.n_outputs, 1)]


def _clip(x: Tensor, clip) -> Tensor:
    return x if clip is None else ops.clip(x, -clip, clip)


def _lstm(gates, c, p, f, hidden, clip):
    i, o, fg, cc = (gates[:, k * hidden:(k + 1) * hidden] for k in range(4))
    if p is not None:
        i, fg = i + p[0] * c, fg + p[2] * c
    i, fg = f[0](_clip(i, clip)), f[0](_clip(fg, clip))
    c_new = fg * c + i * f[1](_clip(cc, clip))
    if p is not None:
        o = o + p[1] * c_new
    o = f[0](_clip(o, clip))
    return o * f[2](c_new), c_new


def _gru(n, xp, h, rt, rb, f, hidden, clip):
    xz, xr, xh = (xp[:, k * hidden:(k + 1) * hidden] for k in range(3))
    rz, rr, rh = (rt[:, k * hidden:(k + 1) * hidden] for k in range(3))
    bz, br, bh = ((0, 0, 0) if rb is None else
                  (rb[k * hidden:(k + 1) * hidden] for k in range(3)))
    z = f[0](_clip(xz + ops.matmul(h, rz) + bz, clip))
    r = f[0](_clip(xr + ops.matmul(h, rr) + br, clip))
    if n.attr("linear_before_reset", 0):
        hh = f[1](_clip(xh + r * (ops.matmul(h, rh) + bh), clip))
    else:
        hh = f[1](_clip(xh + ops.matmul(r * h, rh) + bh, clip))
    return (1.0 - z) * hh + z * h
