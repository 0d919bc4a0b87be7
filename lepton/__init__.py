"""Lepton: a static computation-graph compiler for Python (the public API of shared/API.md).

    import lepton as lp
    f = lp.compile(lambda x, w: lp.relu(x @ w))
    y = f(x, w)
"""
from . import ir, nn, optim, random
from .compile import compile, from_onnx
from .grad import grad, value_and_grad
from .nn.dropout import dropout
from .io import load_model, save
from .export import export
from .frontends import *  # noqa: F401,F403  the traced ops, dtypes and trace
from .frontends import __all__ as _frontend_names

__version__ = "0.1.0"
__all__ = ["ir", "nn", "optim", "random", "dropout", "compile", "grad", "value_and_grad",
           "from_onnx", "save", "load_model", "export", *_frontend_names]
