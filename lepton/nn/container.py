"""Sequential and the parameter-free layers (activations, Flatten)."""
from __future__ import annotations

from ..frontends import ops, shapes
from .module import Module


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
