"""Optimisers whose whole training step (forward, backward, update) is one compiled graph.

    opt = lp.optim.SGD(0.1, momentum=0.9)            # or lp.optim.Adam(1e-3)
    def loss_fn(model, x, y):
        return lp.cross_entropy(model(x), y)
    loss = opt.step(model, loss_fn, x, y)            # a float; model's arrays updated in place

`opt.step` traces `loss_fn(model, *batch)` with the model's parameters bound to graph inputs
(`Module.bind`), takes `lp.value_and_grad` with respect to them, and appends the update rule,
so one graph maps (parameters, optimiser state, hyperparameters, batch) to (loss, new
parameters, new state). It is compiled once per (loss_fn, static hyperparameters, signature of
the parameters and batch) and cached; each step then writes the new values into the existing
NumPy arrays of the model and of `opt.state`.

The update formulas are PyTorch's (torch.optim.SGD, Adam, AdamW, without their rarer options).
`lr` is an input of the graph, so changing `opt.lr` between steps (a schedule) does not
recompile; changing momentum, betas, eps or weight_decay compiles a new graph.

An optimiser's state belongs to the first model it steps; stepping another model raises.
`opt.step_reduced(model, loss_fn, batch, reduce)` is the same step as two graphs split at one
flat gradient buffer that `reduce` may change in place (lepton.distributed averages it).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .compile import CompileResult
from .frontends import ops
from .frontends.capture import function_key, scan
from .frontends.pytree import tree_flatten
from .frontends.trace import trace_flat
from .grad import value_and_grad
from .nn import Module

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def _check_rate(value, what: str) -> float:
    value = float(value)
    if not value >= 0.0:  # also refuses NaN
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


class Optimizer:
    """The compiled training step shared by the optimisers. A subclass names its per-parameter
    buffers (`buffers`), the scalars computed on the host each step (`_hyper`), the
    hyperparameters baked into the graph (`_static`) and the traced update rule (`_update`)."""

    buffers: tuple[str, ...] = ()

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = _check_rate(lr, "lr")
        self.weight_decay = _check_rate(weight_decay, "weight_decay")
        self.state: dict[str, dict[str, np.ndarray]] = {}  # name -> buffer name -> array
        self.steps = 0                                      # steps taken so far
        self._model: Module | None = None
        self._graphs: dict = {}                             # cache key -> CompileResult
        self._last: CompileResult | None = None

    # -- what a subclass provides --------------------------------------------------------------
    def _static(self) -> tuple:
        """Hyperparameters the graph is specialised on (part of the cache key)."""
        return (self.weight_decay,)

    def _hyper(self, step: int) -> dict[str, float]:
        """Scalars for step number `step` (1-based), passed to the graph as f32[] inputs."""
        return {"lr": self.lr}

    def _update(self, p, g, state: dict, h: dict):
        """Traced: (parameter, gradient, its buffers, hyper tensors) -> (new p, new buffers)."""
        raise NotImplementedError

    # -- the step ------------------------------------------------------------------------------
    def step(self, model: Module, loss_fn, *batch) -> float:
        """One training step on `batch`: returns loss_fn(model, *batch) before the update, as a
        float, and updates the model's parameters and `self.state` in place."""
        params, hyper = self._begin(model)
        args = (params, self.state, hyper, *batch)
        leaves, tree = tree_flatten(args)
        leaves = [_as_array(x) for x in leaves]
        ties = _ties(params)
        key = (function_key(loss_fn), self._static(), tree,
               tuple((a.shape, a.dtype) for a in leaves), ties, _modes(model))
        outs = self._run(key, loss_fn, leaves, lambda: self._compile(model, loss_fn, args, ties))
        # The graph returns (loss, new params, new state) and takes (params, state, ...): both
        # flatten in the same order, so output k+1 goes into input leaf k (the array itself).
        for dst, src in zip(leaves, outs[1:]):
            np.copyto(dst, src)
        self.steps += 1
        return float(outs[0])

    def _begin(self, model: Module) -> tuple[dict, dict]:
        """Checks `model`, makes its optimiser state: (its parameters, this step's hyper)."""
        if not isinstance(model, Module):
            raise TypeError(f"{type(self).__name__}.step takes an lp.nn.Module first, got "
                            f"{type(model).__name__}")
        if self._model is None:
            self._model = model
        elif model is not self._model:
            raise ValueError(f"this {type(self).__name__} holds the state of another "
                             f"{type(self._model).__name__}; create one optimiser per model")
        params = model.parameters()
        if not params:
            raise ValueError(f"{type(model).__name__} has no parameters to optimise")
        self._init_state(params)
        return params, {k: np.float32(v) for k, v in self._hyper(self.steps + 1).items()}

    def _run(self, key, loss_fn, leaves, build) -> list:
        """Runs the graph cached under `key` (its first item the loss function's key), made by
        `build()` when missing or when an array loss_fn reads changed shape or dtype."""
        res = self._graphs.get(key)
        if res is None:
            code = getattr(loss_fn, "__code__", None)
            if code is not None and any(k[0] != key[0] and type(k[0]) is tuple
                                        and k[0][0] is code for k in self._graphs):
                warnings.warn(f"{type(self).__name__}.step: loss_fn is a new function object "
                              f"with the code of one compiled before, so the step compiles "
                              f"again; define loss_fn once, outside the training loop",
                              RuntimeWarning, stacklevel=3)
            res = self._graphs[key] = build()
        outs = res.run(leaves)
        if outs is None:  # an array loss_fn reads from its closure changed shape or dtype
            res = self._graphs[key] = build()
            outs = res.run(leaves)
        self._last = res
        return outs

    def _init_state(self, params: dict) -> None:
        """Zero buffers for parameters not seen before (or whose shape or dtype changed)."""
        for name, p in params.items():
            st = self.state.get(name)
            if st is None or set(st) != set(self.buffers) or any(
                    a.shape != p.shape or a.dtype != p.dtype for a in st.values()):
                self.state[name] = {b: np.zeros_like(p) for b in self.buffers}
        for name in [n for n in self.state if n not in params]:
            del self.state[name]

    def _compile(self, model: Module, loss_fn, args, ties=()) -> CompileResult:
        loss_and_grads = _loss_and_grads(model, loss_fn, ties)

        def train_step(params, state, hyper, *batch):
            loss, grads = loss_and_grads(params, *batch)
            return (loss, *self._apply(params, grads, state, hyper))

        captures = scan(loss_fn, model)  # e.g. a GAN's discriminator, read at every step
        graph, in_tree, out_tree = trace_flat(train_step, args, captures)
        expect = tree_flatten((0.0, args[0], args[1]))[1]
        if out_tree != expect:  # the in-place copy in step() relies on this layout
            raise AssertionError(f"training step returned {out_tree}, expected {expect}")
        return CompileResult(graph, in_tree, out_tree, captures=captures)

    def _apply(self, params, grads, state, hyper) -> tuple[dict, dict]:
        """Traced: the update of every parameter, (new params, new state)."""
        new_params, new_state = {}, {}
        for name, p in params.items():
            new_params[name], new_state[name] = self._update(p, grads[name], state[name], hyper)
        return new_params, new_state

    # -- the step split at the gradients (the hook of lepton.distributed) ----------------------
    def step_reduced(self, model: Module, loss_fn, batch: tuple, reduce) -> float:
        """`step(model, loss_fn, *batch)` as two compiled graphs with `reduce(flat)` between
        them. The first writes every gradient, flattened, in `model.parameters()` order, then
        the loss, into ONE contiguous array `flat`; `reduce` changes it in place (e.g. averages
        it over processes); the second applies the update with the gradients `flat` then holds
        (views of it, no copy). Returns flat[-1], the loss after `reduce`, as a float."""
        params, hyper = self._begin(model)
        dtypes = {p.dtype for p in params.values()}
        if len(dtypes) > 1:
            raise TypeError(f"{type(self).__name__}.step_reduced: the gradients go into one "
                            f"buffer, so every parameter needs one dtype; got "
                            f"{sorted(map(str, dtypes))}")
        ties = _ties(params)
        fkey, static = function_key(loss_fn), self._static()
        args = (params, *batch)
        leaves, tree = tree_flatten(args)
        leaves = [_as_array(x) for x in leaves]
        key = (fkey, "gradients", tree, tuple((a.shape, a.dtype) for a in leaves), ties,
               _modes(model))
        flat = self._run(key, loss_fn, leaves, lambda: _compile_gradients(
            model, loss_fn, args, ties, list(params)))[0]
        reduce(flat)
        grads, start = {}, 0
        for name, p in params.items():
            grads[name] = flat[start:start + p.size].reshape(p.shape)
            start += p.size
        args = (params, self.state, hyper, grads)
        leaves, tree = tree_flatten(args)
        leaves = [_as_array(x) for x in leaves]
        key = (fkey, static, tree, tuple((a.shape, a.dtype) for a in leaves), "update")
        outs = self._run(key, loss_fn, leaves, lambda: self._compile_update(args))
        for dst, src in zip(leaves, outs):  # (new params, new state) into (params, state)
            np.copyto(dst, src)
        self.steps += 1
        return float(flat[-1])

    def _compile_update(self, args) -> CompileResult:
        graph, in_tree, out_tree = trace_flat(lambda p, s, h, g: self._apply(p, g, s, h), args)
        return CompileResult(graph, in_tree, out_tree)

    # -- inspection ----------------------------------------------------------------------------
    @property
    def num_graphs(self) -> int:
        """How many training-step graphs have been compiled (one per signature)."""
        return len(self._graphs)

    def ir(self) -> str:
        """The optimised IR of the most recent step's graph."""
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__} has not taken a step yet")
        return str(self._last.graph)

    def stats(self) -> dict:
        """Compile statistics of the most recent step's graph (as CompiledFunction.stats)."""
        if self._last is None:
            raise RuntimeError(f"{type(self).__name__} has not taken a step yet")
        return self._last.stats()


def _loss_and_grads(model: Module, loss_fn, ties):
    """Traced: (params, *batch) -> (loss, gradient of each parameter name)."""
    def loss_of(params, *batch):
        with model.bind(params):
            return loss_fn(model, *batch)

    def loss_and_grads(params, *batch):
        loss, grads = value_and_grad(loss_of)(params, *batch)
        for names in ties:  # one array under several names: its gradient is the sum
            total = grads[names[0]]
            for n in names[1:]:
                total = total + grads[n]
            grads.update({n: total for n in names})
        return loss, grads
    return loss_and_grads


def _compile_gradients(model: Module, loss_fn, args, ties, names) -> CompileResult:
    """The graph (params, *batch) -> one flat array: the gradients in the order of `names`
    (a pytree's dict is in sorted order, the model's is not), then the loss."""
    loss_and_grads = _loss_and_grads(model, loss_fn, ties)

    def gradients(params, *batch):
        loss, grads = loss_and_grads(params, *batch)
        dtype = next(iter(params.values())).dtype
        return ops.concatenate([grads[n].reshape(-1) for n in names]
                               + [loss.astype(dtype).reshape(1)])

    captures = scan(loss_fn, model)
    graph, in_tree, out_tree = trace_flat(gradients, args, captures)
    return CompileResult(graph, in_tree, out_tree, captures=captures)


def _ties(params: dict) -> tuple[tuple[str, ...], ...]:
    """Names that hold the very same array (tied weights, e.g. an embedding reused as the
    output layer): each name gets the sum of their gradients, so they stay one parameter."""
    groups: dict[int, list[str]] = {}
    for name, p in params.items():
        groups.setdefault(id(p), []).append(name)
    return tuple(tuple(g) for g in groups.values() if len(g) > 1)


def _modes(model: Module) -> tuple:
    """The train/eval mode of every submodule: part of a step's key, so steps in both modes
    stay compiled."""
    return tuple(m.training for m in model.modules())


def _as_array(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, float):
        return np.asarray(x, np.float32)
    if isinstance(x, bool):
        return np.asarray(x, np.bool_)
    if isinstance(x, int):
        return np.asarray(x, np.int64)
    return np.asarray(x)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as torch.optim.SGD:

        g = grad + weight_decay * p
        buf = momentum * buf + g             (when momentum > 0; buf starts at 0)
        g = buf                              (nesterov: g = g + momentum * buf)
        p = p - lr * g
    """

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(lr, weight_decay)
        self.momentum = _check_rate(momentum, "momentum")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov momentum needs momentum > 0")

    @property
    def buffers(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum else ()

    def _static(self) -> tuple:
        return (self.weight_decay, self.momentum, self.nesterov)

    def _update(self, p, g, state, h):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return p - h["lr"] * g, {}
        buf = self.momentum * state["momentum_buffer"] + g
        g = g + self.momentum * buf if self.nesterov else buf
        return p - h["lr"] * g, {"momentum_buffer": buf}


class Adam(Optimizer):
    """Adam, as torch.optim.Adam (weight_decay is an L2 term added to the gradient):

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    where t counts steps from 1; the bias corrections are computed on the host in float64.
    """

    buffers = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        b1, b2 = (float(b) for b in betas)
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.betas = (b1, b2)
        self.eps = _check_rate(eps, "eps")

    def _static(self) -> tuple:
        return (self.weight_decay, self.betas, self.eps)

    def _hyper(self, step: int) -> dict[str, float]:
        b1, b2 = self.betas
        return {"lr": self.lr, "step_size": self.lr / (1.0 - b1 ** step),
                "bc2_sqrt": math.sqrt(1.0 - b2 ** step)}

    def _update(self, p, g, state, h):
        b1, b2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                p = p * (1.0 - h["lr"] * self.weight_decay)
            else:
                g = g + self.weight_decay * p
        m = b1 * state["exp_avg"] + (1.0 - b1) * g
        v = b2 * state["exp_avg_sq"] + (1.0 - b2) * (g * g)
        denom = ops.sqrt(v) / h["bc2_sqrt"] + self.eps
        return p - h["step_size"] * (m / denom), {"exp_avg": m, "exp_avg_sq": v}


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW: p = p * (1 - lr * weight_decay)
    before the Adam update (the gradient itself is not changed). weight_decay defaults to 0.01."""

    decoupled = True

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(lr, betas, eps, weight_decay)
