"""Neural-network modules with PyTorch's parameter names, weight layouts and initialisations.

    class MLP(lp.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = lp.nn.Linear(784, 256)
            self.fc2 = lp.nn.Linear(256, 10)
        def __call__(self, x):                 # or `def forward(self, x)`, as in PyTorch
            return self.fc2(lp.relu(self.fc1(x)))

    model = MLP()
    model.parameters()           # {"fc1.weight": f32 (256, 784), "fc1.bias": (256,), ...}
    model.load_parameters({k: v.numpy() for k, v in torch_model.state_dict().items()})
    y = lp.compile(model)(x)     # the model's current parameters travel with every call

Parameters. A module's parameters are its public attributes (names not starting with "_") that
hold floating-point NumPy arrays, and, recursively, those of its child modules: attributes that
hold a `Module`, or a list, tuple or dict of them. Names are PyTorch's dotted paths in
registration order ("fc1.weight", "layers.0.bias", and "0.weight" inside a `Sequential`); a
module reached twice is listed once, under its first name. To keep a constant array that is not
trained, store it under a name starting with "_". The built-in layers hold float32 arrays.

Randomness. Layers draw their initial values from `rng=` (a `numpy.random.Generator`) when given,
else from this module's generator, which `manual_seed(n)` resets (like `torch.manual_seed`):

    lp.nn.manual_seed(0); a = lp.nn.Linear(3, 2)
    lp.nn.manual_seed(0); b = lp.nn.Linear(3, 2)   # a and b hold equal arrays

Tracing. `module.apply(params, *args)` calls the module with its parameters temporarily replaced
by `params` (a dict name -> traced Tensor or array, as `parameters()` gives), so a trace sees
the parameters as graph inputs instead of baking them in as constants. `lp.compile(model)` and
`lp.optim` use it; `with module.bind(params):` is the same as a context. Binding swaps
attributes, so one module must not be called from two threads while bound.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np

from .frontends import nn_ops, ops, shapes
from .frontends.tensor import Tensor

__all__ = ["Module", "Linear", "Conv2d", "LayerNorm", "Embedding", "Sequential", "ReLU", "GELU",
           "Tanh", "Sigmoid", "Flatten", "MaxPool2d", "AvgPool2d", "manual_seed"]

_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reseeds the generator that layers created without `rng=` draw their initial values from."""
    global _rng
    _rng = np.random.default_rng(seed)


def _generator(rng) -> np.random.Generator:
    if rng is None:
        return _rng
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _uniform(rng, bound: float, shape) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def _kaiming_uniform(rng, shape, fan_in: int) -> np.ndarray:
    """PyTorch's kaiming_uniform_(w, a=sqrt(5)), the default for Linear and Conv weights:
    gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in)."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0
    return _uniform(rng, bound, shape)


def _bias_init(rng, shape, fan_in: int) -> np.ndarray:
    """PyTorch's default bias: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return _uniform(rng, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0, shape)


def _is_param(v) -> bool:
    # A bound parameter is a traced Tensor; it still counts, so binding can nest.
    return isinstance(v, Tensor) or (isinstance(v, np.ndarray) and v.dtype.kind == "f")


def _positive_int(v, what: str) -> int:
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{what} must be a positive int, got {v!r}")
    return int(v)


class Module:
    """Base class of models and layers: parameter discovery, loading, and binding for traces.

    Subclasses define `forward(self, *args)` (PyTorch's way) or override `__call__`.
    """
    _lepton_state = True  # a compiled function reading a module reads its attributes afresh

    def __init__(self):
        pass  # nothing to register: parameters are discovered from the attributes

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines neither forward() nor "
                                  f"__call__()")

    # -- discovery -----------------------------------------------------------------------------
    def _slots(self) -> dict[str, tuple["Module", str]]:
        """name -> (owning module, attribute) for every parameter, in registration order."""
        slots: dict[str, tuple[Module, str]] = {}
        seen: set[int] = set()

        def visit(m: Module, prefix: str) -> None:
            if id(m) in seen:
                return
            seen.add(id(m))
            for attr, v in vars(m).items():
                if attr.startswith("_"):
                    continue
                if _is_param(v):
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

    def num_parameters(self) -> int:
        """The total number of scalars in the parameters."""
        return sum(int(np.prod(p.shape)) for p in self.parameters().values())

    # -- loading -------------------------------------------------------------------------------
    def load_parameters(self, params, strict: bool = True) -> None:
        """Copies `params` (name -> array, e.g. a PyTorch state_dict's arrays) into the
        parameter arrays, in place. Names, shapes and dtypes must match exactly (dtype: a
        float64 array does not load into a float32 parameter); with strict=False names may be
        missing from `params`, never unknown. Nothing is written unless everything matches.

            >>> model.load_parameters({k: v.numpy() for k, v in net.state_dict().items()})
        """
        if not hasattr(params, "items"):
            raise TypeError(f"load_parameters takes a dict name -> array, got "
                            f"{type(params).__name__}")
        own = self.parameters()
        missing = [k for k in own if k not in params]
        unexpected = [k for k in params if k not in own]
        if unexpected or (missing and strict):
            parts = []
            if missing and strict:
                parts.append(f"missing {missing}")
            if unexpected:
                parts.append(f"unexpected {unexpected}")
            raise KeyError(f"load_parameters into {type(self).__name__}: "
                           f"{'; '.join(parts)} (its parameters are {list(own)})")
        arrays = {}
        for name, value in params.items():
            dst = own[name]
            if isinstance(dst, Tensor):
                raise RuntimeError(f"cannot load parameters while {type(self).__name__} is "
                                   f"bound to traced values")
            try:
                src = np.asarray(value)
            except Exception as e:  # e.g. a torch tensor that requires grad
                raise TypeError(f"parameter {name!r}: cannot convert {type(value).__name__} to a "
                                f"NumPy array ({e}); pass arrays, e.g. tensor.detach().numpy()"
                                ) from None
            if src.shape != dst.shape:
                raise ValueError(f"parameter {name!r}: expected shape {dst.shape}, got "
                                 f"{src.shape}")
            if src.dtype != dst.dtype:
                raise TypeError(f"parameter {name!r}: expected dtype {dst.dtype}, got "
                                f"{src.dtype} (convert it with .astype(np.{dst.dtype}))")
            arrays[name] = src
        for name, src in arrays.items():
            np.copyto(own[name], src)

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


class Linear(Module):
    """y = x @ weight.T + bias, weight (out_features, in_features), bias (out_features,).

        >>> fc = Linear(64, 10)          # x (..., 64) -> (..., 10)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "Linear in_features")
        self.out_features = _positive_int(out_features, "Linear out_features")
        g = _generator(rng)
        self.weight = _kaiming_uniform(g, (out_features, in_features), in_features)
        self.bias = _bias_init(g, (out_features,), in_features) if bias else None

    def forward(self, x):
        y = ops.matmul(x, shapes.transpose(self.weight))
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


def _pair(v, what: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise TypeError(f"{what} must be an int or a pair of ints, got {v!r}")


class Conv2d(Module):
    """2-d convolution of NCHW images: weight (out, in/groups, kh, kw), bias (out,).

        >>> conv = Conv2d(1, 8, 3, padding=1)    # x (N, 1, H, W) -> (N, 8, H, W)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, *, rng=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "Conv2d in_channels")
        self.out_channels = _positive_int(out_channels, "Conv2d out_channels")
        self.groups = _positive_int(groups, "Conv2d groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = _pair(kernel_size, "Conv2d kernel_size")
        self.stride = _pair(stride, "Conv2d stride")
        self.padding = _pair(padding, "Conv2d padding")
        self.dilation = _pair(dilation, "Conv2d dilation")
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        g = _generator(rng)
        self.weight = _kaiming_uniform(
            g, (out_channels, in_channels // groups) + self.kernel_size, fan_in)
        self.bias = _bias_init(g, (out_channels,), fan_in) if bias else None

    def forward(self, x):
        return nn_ops.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, groups=self.groups)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class LayerNorm(Module):
    """Normalises over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, with
    weight = ones(dim), bias = zeros(dim) at first (PyTorch's elementwise_affine=True)."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(f"LayerNorm normalises over the last axis only: "
                                 f"normalized_shape must be an int or (int,), "
                                 f"got {normalized_shape!r}")
            normalized_shape = normalized_shape[0]
        self.dim = _positive_int(normalized_shape, "LayerNorm normalized_shape")
        self.eps = float(eps)
        self.weight = np.ones(self.dim, np.float32) if elementwise_affine else None
        self.bias = np.zeros(self.dim, np.float32) if elementwise_affine else None

    def forward(self, x):
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"LayerNorm({self.dim}) got an input of shape {tuple(x.shape)}")
        return nn_ops.layer_norm(x, self.weight, self.bias, eps=self.eps)

    def extra_repr(self) -> str:
        return f"({self.dim},), eps={self.eps}, elementwise_affine={self.weight is not None}"


class Embedding(Module):
    """A lookup table: weight (num_embeddings, embedding_dim) drawn from N(0, 1);
    `emb(indices)` gathers rows, shape indices.shape + (embedding_dim,)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, rng=None):
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "Embedding num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "Embedding embedding_dim")
        self.weight = _generator(rng).standard_normal(
            (num_embeddings, embedding_dim)).astype(np.float32)

    def forward(self, indices):
        return shapes.gather(self.weight, indices, 0, "Embedding")

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Sequential(Module):
    """Applies its modules in order; they are named "0", "1", ... as in PyTorch, so
    Sequential(Linear(4, 8), ReLU(), Linear(8, 2)) has parameters "0.weight", "0.bias",
    "2.weight", "2.bias". Plain functions (e.g. lp.relu) are accepted as parameter-free steps."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not callable(m):
                raise TypeError(f"Sequential: item {i} is a {type(m).__name__}, not a module "
                                f"or function")
            vars(self)[str(i)] = m

    def _items(self) -> list:
        return [v for k, v in vars(self).items() if k.isdigit()]

    def forward(self, x):
        for m in self._items():
            x = m(x)
        return x

    def __getitem__(self, i):
        items = self._items()
        return Sequential(*items[i]) if isinstance(i, slice) else items[i]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self):
        return iter(self._items())


# -- parameter-free layers, so a Sequential can say what PyTorch's does ------------------------
class ReLU(Module):
    def forward(self, x):
        return ops.relu(x)


class GELU(Module):
    """approximate="none" (the erf form, PyTorch's default) or "tanh"."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return ops.gelu(x, approximate=self.approximate == "tanh")

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class Flatten(Module):
    """Flattens the dimensions from start_dim (default 1: keeps the batch axis) to the end."""

    def __init__(self, start_dim: int = 1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        s = self.start_dim % x.ndim if x.ndim else 0
        return shapes.reshape(x, tuple(x.shape[:s]) + (-1,))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


class _Pool2d(Module):
    """A parameter-free 2-d pooling layer over `pool` (an nn_ops function)."""
    pool = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        return type(self).pool(x, self.kernel_size, self.stride, self.padding)


class MaxPool2d(_Pool2d):
    pool = staticmethod(nn_ops.max_pool2d)


class AvgPool2d(_Pool2d):
    pool = staticmethod(nn_ops.avg_pool2d)
