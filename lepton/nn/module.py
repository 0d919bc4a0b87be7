"""`Module`: the base class of models and layers (parameter discovery, loading, binding).

Parameters. A module's parameters are its public attributes (names not starting with "_") that
hold floating-point NumPy arrays, and, recursively, those of its child modules: attributes that
hold a `Module`, or a list, tuple or dict of them. Names are PyTorch's dotted paths in
registration order ("fc1.weight", "layers.0.bias", and "0.weight" inside a `Sequential`); a
module reached twice is listed once, under its first name. To keep a constant array that is not
trained, store it under a name starting with "_", or register it as a buffer.

Buffers (PyTorch's): arrays of a module's state that are not trained, such as BatchNorm's
running statistics. `register_buffer(name, array)` stores the array as attribute `name` and
marks it so: `parameters()` (hence the optimisers and `bind`) leaves it out, `buffers()` lists
it, and `state_dict()` holds it (unless persistent=False) under PyTorch's key. A buffer may be
of any dtype ("bn.num_batches_tracked" is int64 0-d) and may be None (then it is not listed).

Tracing. A compiled function that calls a module reads its arrays at every call (see
lepton/frontends/capture.py). `module.apply(params, *args)` calls the module with its parameters
temporarily replaced by `params` (a dict name -> traced Tensor or array, as `parameters()`
gives), so a trace sees them as the graph inputs a gradient is taken with respect to; `lp.optim`
uses it; `with module.bind(params):` is the same as a context. Binding swaps attributes, so one
module must not be called from two threads while bound.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np

from ..frontends.tensor import Tensor, assign
from ..ir.types import is_float_numpy


def _is_param(v) -> bool:
    # A bound parameter is a traced Tensor; it still counts, so binding can nest.
    return isinstance(v, Tensor) or (isinstance(v, np.ndarray) and is_float_numpy(v.dtype))


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict` returns, as PyTorch's `_IncompatibleKeys`."""
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of models and layers: parameter discovery, loading, and binding for traces.

    Subclasses define `forward(self, *args)` (PyTorch's way) or override `__call__`.
    """
    _lepton_state = True  # a compiled function reading a module reads its attributes afresh

    training = True  # PyTorch's default mode; train() / eval() set it on every submodule

    def __init__(self):
        self.training = True  # parameters need no registering: they are found in attributes

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines neither forward() nor "
                                  f"__call__()")

    # -- discovery -----------------------------------------------------------------------------
    def _slots(self, params: bool = True, buffers: str = "none"
               ) -> dict[str, tuple["Module", str]]:
        """name -> (owning module, attribute), in registration order, for every parameter (when
        `params`) and every buffer that is not None (`buffers` "all"), or persistent buffer
        ("persistent"), or none ("none")."""
        slots: dict[str, tuple[Module, str]] = {}
        seen: set[int] = set()

        def visit(m: Module, prefix: str) -> None:
            if id(m) in seen:
                return
            seen.add(id(m))
            marked = vars(m).get("_buffers", {})  # attribute -> persistent
            for attr, v in vars(m).items():
                if attr.startswith("_"):
                    continue
                if attr in marked:
                    if v is not None and (buffers == "all" or buffers == "persistent"
                                          and marked[attr]):
                        slots[prefix + attr] = (m, attr)
                elif _is_param(v):
                    if params:
                        slots[prefix + attr] = (m, attr)
                else:
                    children(v, prefix + attr, False)

        def children(v, name: str, in_container: bool) -> None:
            if isinstance(v, Module):
                visit(v, name + ".")
            elif isinstance(v, (list, tuple)):
                for i, c in enumerate(v):
                    children(c, f"{name}.{i}", True)
            elif isinstance(v, dict):
                for k, c in v.items():
                    children(c, f"{name}.{k}", True)
            elif in_container and _is_param(v):
                raise TypeError(f"{type(self).__name__} holds an array inside a list, tuple or "
                                f"dict ({name}); parameters must be module attributes (wrap it "
                                f"in a Module), or use a name starting with '_' for a constant")

        visit(self, "")
        return slots

    def parameters(self) -> dict[str, np.ndarray]:
        """name -> the parameter array itself (not a copy: copy it to keep a snapshot)."""
        return {name: vars(m)[attr] for name, (m, attr) in self._slots().items()}

    def buffers(self) -> dict[str, np.ndarray]:
        """name -> the buffer array itself, for every buffer that is not None (persistent or
        not), with PyTorch's dotted names ("bn.running_mean")."""
        slots = self._slots(params=False, buffers="all")
        return {name: vars(m)[attr] for name, (m, attr) in slots.items()}

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Stores `tensor` (a NumPy array of any dtype, or None) as attribute `name`, a buffer:
        state that is not trained (see the module docstring). persistent=False keeps it out of
        `state_dict()`. Assigning the attribute later keeps it a buffer."""
        if not isinstance(name, str):
            raise TypeError(f"register_buffer: name must be a string, got {name!r}")
        if not name or "." in name or name.startswith("_"):
            raise KeyError(f"register_buffer: name must be a non-empty string without '.' "
                           f"that does not start with '_', got {name!r}")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(f"register_buffer({name!r}): expected a NumPy array or None, got "
                            f"{type(tensor).__name__}")
        old = vars(self).get(name)
        if name not in vars(self).get("_buffers", {}) and (
                _is_param(old) or isinstance(old, Module)):
            held = "module" if isinstance(old, Module) else "parameter"
            raise KeyError(f"register_buffer: attribute {name!r} of {type(self).__name__} "
                           f"already holds a {held}")
        vars(self).setdefault("_buffers", {})[name] = bool(persistent)
        vars(self)[name] = tensor

    def num_parameters(self) -> int:
        """The total number of scalars in the parameters."""
        return sum(int(np.prod(p.shape)) for p in self.parameters().values())

    # -- loading -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> array for the parameters and the persistent buffers, with PyTorch's keys
        ("fc.weight", "bn.running_mean", "bn.num_batches_tracked"). As PyTorch's, the arrays are
        the module's own (not copies): `copy.deepcopy` it to keep a snapshot."""
        slots = self._slots(params=True, buffers="persistent")
        return {name: vars(m)[attr] for name, (m, attr) in slots.items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copies `state_dict` (name -> array, e.g. `{k: v.numpy() for k, v in
        torch_model.state_dict().items()}`) into the parameters and persistent buffers, in
        place, with `load_parameters`' shape and dtype checks. Returns (missing_keys,
        unexpected_keys); strict=True raises KeyError naming them when either is not empty,
        strict=False loads the keys that match and ignores the others. Nothing is written
        unless every key that loads matches."""
        return self._load(state_dict, self.state_dict(), strict, strict, "load_state_dict")

    def load_parameters(self, params, strict: bool = True) -> None:
        """Copies `params` (name -> array, e.g. a PyTorch state_dict's arrays) into the
        parameter arrays, in place. Names, shapes and dtypes must match exactly (dtype: a
        float64 array does not load into a float32 parameter); with strict=False names may be
        missing from `params`, never unknown. Nothing is written unless everything matches.
        `load_state_dict` loads the buffers too.

            >>> model.load_parameters({k: v.numpy() for k, v in net.state_dict().items()})
        """
        self._load(params, self.parameters(), strict, True, "load_parameters")

    def _load(self, given, own: dict, strict_missing: bool, strict_unexpected: bool,
              what: str) -> IncompatibleKeys:
        if not hasattr(given, "items"):
            raise TypeError(f"{what} takes a dict name -> array, got {type(given).__name__}")
        missing = [k for k in own if k not in given]
        unexpected = [k for k in given if k not in own]
        if (unexpected and strict_unexpected) or (missing and strict_missing):
            parts = []
            if missing and strict_missing:
                parts.append(f"missing {missing}")
            if unexpected and strict_unexpected:
                parts.append(f"unexpected {unexpected}")
            raise KeyError(f"{what} into {type(self).__name__}: {'; '.join(parts)} (its "
                           f"{'keys' if what == 'load_state_dict' else 'parameters'} are "
                           f"{list(own)})")
        arrays = {}
        for name, value in given.items():
            if name not in own:
                continue
            dst = own[name]
            if isinstance(dst, Tensor):
                raise RuntimeError(f"cannot load parameters while {type(self).__name__} is "
                                   f"bound to traced values")
            try:
                src = np.asarray(value)
            except Exception as e:  # e.g. a torch tensor that requires grad
                raise TypeError(f"{name!r}: cannot convert {type(value).__name__} to a NumPy "
                                f"array ({e}); pass arrays, e.g. tensor.detach().numpy()"
                                ) from None
            if src.shape != dst.shape:
                raise ValueError(f"{name!r}: expected shape {dst.shape}, got {src.shape}")
            if src.dtype != dst.dtype:
                raise TypeError(f"{name!r}: expected dtype {dst.dtype}, got {src.dtype} "
                                f"(convert it with .astype(np.{dst.dtype}))")
            arrays[name] = src
        for name, src in arrays.items():
            np.copyto(own[name], src)
        return IncompatibleKeys(missing, unexpected)

    # -- mode ------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (the default) for this module and every submodule, as PyTorch: a
        compiled function reading the module compiles anew for the other mode (cached)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) takes a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode: `train(False)`."""
        return self.train(False)

    def modules(self) -> list["Module"]:
        """This module and every submodule, each once, in registration order."""
        out, seen = [], set()

        def visit(v):
            if isinstance(v, Module):
                if id(v) in seen:
                    return
                seen.add(id(v))
                out.append(v)
                v = [c for k, c in vars(v).items() if not k.startswith("_")]
            if isinstance(v, dict):
                v = list(v.values())
            if isinstance(v, (list, tuple)):
                for c in v:
                    visit(c)
        visit(self)
        return out

    def _assign(self, name: str, value) -> None:
        """Inside a traced forward: each call of the compiled function ends by writing `value`
        into this module's array attribute `name`, in place (running statistics, generator
        states). See `lepton.frontends.tensor.assign`."""
        assign(vars(self)[name], value)

    # -- binding for traces --------------------------------------------------------------------
    @contextlib.contextmanager
    def bind(self, params):
        """Within the block, the parameters named in `params` are replaced by its values
        (traced Tensors or arrays); the originals come back on exit, even on an error.
        `params` must name every parameter, as `parameters()` does."""
        slots = self._slots()
        if not hasattr(params, "items") or set(params) != set(slots):
            given = list(params) if hasattr(params, "items") else type(params).__name__
            raise KeyError(f"bind/apply on {type(self).__name__}: expected the parameters "
                           f"{list(slots)}, got {given}")
        saved = []
        try:
            for name, value in params.items():
                m, attr = slots[name]
                saved.append((m, attr, vars(m)[attr]))
                vars(m)[attr] = value  # bypasses any __setattr__ a subclass defines
            yield self
        finally:
            for m, attr, old in reversed(saved):
                vars(m)[attr] = old

    def apply(self, params, *args, **kwargs):
        """Calls the module with `params` in place of its parameters: the functional form
        `lp.compile(model)` and the optimisers trace, e.g.
        `lp.trace(model.apply, model.parameters(), x)`."""
        with self.bind(params):
            return self(*args, **kwargs)

    # -- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        kids = [(k, v) for k, v in vars(self).items()
                if not k.startswith("_") and isinstance(v, Module)]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not kids:
            return head + ")"
        lines = [f"  ({k}): " + repr(v).replace("\n", "\n  ") for k, v in kids]
        return head + "\n" + "\n".join(lines) + "\n)"
