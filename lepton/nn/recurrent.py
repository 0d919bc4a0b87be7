"""RNN, LSTM and GRU: PyTorch's constructor arguments, defaults, parameter names, layouts,
initialisation, gate orders and results, built on `lp.scan`.

    lstm = lp.nn.LSTM(10, 20, num_layers=2, bidirectional=True, batch_first=True)
    out, (h_n, c_n) = lstm(x)          # x (N, L, 10): out (N, L, 40), h_n and c_n (4, N, 20)
    gru = lp.nn.GRU(10, 20)
    out, h_n = gru(x, h0)              # x (L, N, 10), h0 (1, N, 20); hx=None gives zeros

Parameters, per layer k and direction ("" or "_reverse"), as torch.nn.RNNBase registers them:
weight_ih_l{k} (gates * hidden, input), weight_hh_l{k} (gates * hidden, hidden), bias_ih_l{k},
bias_hh_l{k} (gates * hidden,), with gates 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z, n),
all drawn from uniform(-1/sqrt(hidden_size), 1/sqrt(hidden_size)). Layer k > 0 takes
hidden_size * num_directions inputs.

Each layer and direction is one scan over time. The input projection of every step,
x @ weight_ih.T + bias_ih (+ bias_hh where it adds to it), is one matmul over the whole sequence
before the scan; the step itself only multiplies the hidden state by weight_hh. The reverse
direction is the same scan with reverse=True. Dropout between layers applies in training mode
only, as PyTorch (from the generator key that lp.nn.Dropout uses).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..frontends import ops, shapes
from ..frontends.control import scan
from ..frontends.tensor import lift
from ..random import split as _split_key
from . import init
from .dropout import _probability, dropout
from .init import _generator, _positive_int, _uniform
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    """The shared part of RNN, LSTM and GRU (torch.nn.RNNBase)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, *, rng=None):
        super().__init__()
        name = type(self).__name__
        self.mode = mode
        self.input_size = _positive_int(input_size, f"{name} input_size")
        self.hidden_size = _positive_int(hidden_size, f"{name} hidden_size")
        self.num_layers = _positive_int(num_layers, f"{name} num_layers")
        for arg, v in (("bias", bias), ("batch_first", batch_first),
                       ("bidirectional", bidirectional)):
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"{name} {arg} must be a bool, got {v!r}")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = _probability(dropout, f"{name} dropout")
        self.bidirectional = bool(bidirectional)
        if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)) \
                or proj_size < 0:
            raise ValueError(f"{name} proj_size must be a non-negative int, got {proj_size!r}")
        if proj_size != 0:
            raise NotImplementedError(f"{name} proj_size={proj_size}: only proj_size=0 (no "
                                      f"projection) is supported")
        self.proj_size = 0
        if self.dropout > 0 and self.num_layers == 1:
            warnings.warn(f"{name}: dropout={self.dropout} applies between layers and "
                          f"num_layers=1, so it does nothing", UserWarning, stacklevel=3)
        g = _generator(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        gates = _GATES[mode] * self.hidden_size
        for k in range(self.num_layers):
            fan_in = self.input_size if k == 0 else self.hidden_size * self.num_directions
            for sfx in self._suffixes():
                # attribute order = PyTorch's state_dict order
                setattr(self, f"weight_ih_l{k}{sfx}", _uniform(g, bound, (gates, fan_in)))
                setattr(self, f"weight_hh_l{k}{sfx}",
                        _uniform(g, bound, (gates, self.hidden_size)))
                if self.bias:
                    setattr(self, f"bias_ih_l{k}{sfx}", _uniform(g, bound, (gates,)))
                    setattr(self, f"bias_hh_l{k}{sfx}", _uniform(g, bound, (gates,)))
        self._generator = init.GRAPH_KEY  # dropout between layers, as lp.nn.Dropout

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self):
        return ("", "_reverse") if self.bidirectional else ("",)

    # -- the forward pass ----------------------------------------------------------------------
    def _check_state(self, h, what: str, batch: int | None):
        name = type(self).__name__
        h = lift(h)
        want = (self.num_layers * self.num_directions,) + (() if batch is None else (batch,)) \
            + (self.hidden_size,)
        if h.shape != want:
            raise ValueError(f"{name}: {what} must have shape {want} (num_layers * "
                             f"num_directions{', batch' if batch is not None else ''}, "
                             f"hidden_size), got {h.shape}")
        return h

    def _hx(self, x, hx, batch, unbatched):
        """The initial states as a list (one for RNN and GRU, (h0, c0) for LSTM) of tensors
        (layers * directions, batch, hidden)."""
        name = type(self).__name__
        n = self.num_layers * self.num_directions
        if hx is None:
            z = ops.zeros((n, batch, self.hidden_size), dtype=x.dtype)
            return [z] * (2 if self.mode == "LSTM" else 1)
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{name}: hx must be a pair (h_0, c_0), got "
                                f"{type(hx).__name__}")
            states = [self._check_state(s, w, None if unbatched else batch)
                      for s, w in zip(hx, ("h_0", "c_0"))]
        else:
            states = [self._check_state(hx, "hx", None if unbatched else batch)]
        states = [s.astype(x.dtype) if s.dtype != x.dtype else s for s in states]
        return [shapes.expand_dims(s, 1) for s in states] if unbatched else states

    def _layer(self, x, k: int, sfx: str, states):
        """One layer, one direction: x (L, N, in) -> (ys (L, N, H), final states)."""
        # lifted first: arithmetic on the NumPy arrays would bake today's values in
        w_ih = lift(getattr(self, f"weight_ih_l{k}{sfx}"))
        w_hh = shapes.transpose(lift(getattr(self, f"weight_hh_l{k}{sfx}")))
        b_ih = lift(getattr(self, f"bias_ih_l{k}{sfx}")) if self.bias else None
        b_hh = lift(getattr(self, f"bias_hh_l{k}{sfx}")) if self.bias else None
        steps, batch, feat = x.shape
        H = self.hidden_size
        # The input projection of all steps: one matmul before the loop.
        xp = ops.matmul(shapes.reshape(x, (steps * batch, feat)), shapes.transpose(w_ih))
        if self.bias:
            # GRU keeps b_hn inside r * (W_hn h + b_hn); the other biases add up front.
            xp = xp + (b_ih + b_hh if self.mode != "GRU" else
                       b_ih + shapes.concatenate([b_hh[:2 * H], ops.zeros((H,), b_hh.dtype)]))
        xp = shapes.reshape(xp, (steps, batch, xp.shape[-1]))
        mode = self.mode

        if mode in ("RNN_TANH", "RNN_RELU"):
            act = ops.tanh if mode == "RNN_TANH" else ops.relu

            def cell(h, xt):
                h = act(xt + ops.matmul(h, w_hh))
                return h, h
        elif mode == "LSTM":
            def cell(carry, xt):
                h, c = carry
                i, f, g, o = shapes.split(xt + ops.matmul(h, w_hh), 4, axis=-1)
                c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
                h = ops.sigmoid(o) * ops.tanh(c)
                return (h, c), h
        else:
            b_hn = b_hh[2 * H:] if self.bias else None

            def cell(h, xt):
                hp = ops.matmul(h, w_hh)
                xr, xz, xn = shapes.split(xt, 3, axis=-1)
                hr, hz, hn = shapes.split(hp, 3, axis=-1)
                r = ops.sigmoid(xr + hr)
                z = ops.sigmoid(xz + hz)
                n = ops.tanh(xn + r * (hn if b_hn is None else hn + b_hn))
                h = (1.0 - z) * n + z * h
                return h, h
        init_carry = tuple(states) if mode == "LSTM" else states[0]
        carry, ys = scan(cell, init_carry, xp, reverse=bool(sfx))
        return ys, (list(carry) if mode == "LSTM" else [carry])

    def forward(self, input, hx=None):
        name = type(self).__name__
        x = lift(input)
        if not x.dtype.is_float:
            raise TypeError(f"{name}: input must be a float tensor, got {x.type}")
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: input must be 2-d (unbatched: seq, features) or 3-d "
                             f"({'batch, seq' if self.batch_first else 'seq, batch'}, features),"
                             f" got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {x.shape[-1]} features in its last axis, but "
                             f"input_size={self.input_size}")
        unbatched = x.ndim == 2
        if unbatched:
            x = shapes.expand_dims(x, 1)
        elif self.batch_first:
            x = shapes.transpose(x, (1, 0, 2))
        batch = x.shape[1]
        states = self._hx(x, hx, batch, unbatched)
        finals: list[list] = [[] for _ in states]  # per state kind, per layer and direction
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training:
                state, key = _split_key(self._generator)
                self._assign("_generator", state)
                x = dropout(x, self.dropout, key)
            outs = []
            for d, sfx in enumerate(self._suffixes()):
                idx = k * self.num_directions + d
                ys, last = self._layer(x, k, sfx, [s[idx] for s in states])
                outs.append(ys)
                for lst, s in zip(finals, last):
                    lst.append(s)
            x = outs[0] if len(outs) == 1 else shapes.concatenate(outs, axis=-1)
        h = [shapes.stack(lst) for lst in finals]  # (layers * directions, N, H)
        if unbatched:
            x = shapes.squeeze(x, 1)
            h = [shapes.squeeze(s, 1) for s in h]
        elif self.batch_first:
            x = shapes.transpose(x, (1, 0, 2))
        return x, (tuple(h) if self.mode == "LSTM" else h[0])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        for arg, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                             ("dropout", 0.0), ("bidirectional", False)):
            if getattr(self, arg) != default:
                s += f", {arg}={getattr(self, arg)}"
        return s


class RNN(RNNBase):
    """PyTorch's `RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)`: h' = tanh(W_ih x + b_ih + W_hh h +
    b_hh) (or relu). `out, h_n = rnn(x, hx=None)`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *, rng=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         rng=rng)


class LSTM(RNNBase):
    """PyTorch's `LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0)` (proj_size 0 only), gates i, f, g, o.
    `out, (h_n, c_n) = lstm(x, hx=None)`, hx a pair (h_0, c_0)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, *, rng=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, rng=rng)


class GRU(RNNBase):
    """PyTorch's `GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False)`, gates r, z, n:
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
    `out, h_n = gru(x, hx=None)`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 *, rng=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, rng=rng)
