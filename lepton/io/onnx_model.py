"""An ONNX model behind the interface of `LoadedModel` (`lp.load_model("x.onnx")`).

    m = lp.load_model("mlp.onnx")
    [y] = m.predict(x)        # a list, as lp.from_onnx returns
    m.signature               # symbolic dims are None; batch_axis 0 when every input's first
                              # dim is the same symbolic name (each batch size compiles once)
"""
from __future__ import annotations

import numpy as np

from ..compile import from_onnx
from ..frontends.onnx.loader import _input_spec
from ..frontends.pytree import LEAF_DEF, LIST, TUPLE, PyTreeDef
from .signature import Signature, TensorSpec


class OnnxModel:
    def __init__(self, data: bytes, label: str):
        try:
            self._fn = from_onnx(data)
        except (ImportError, NotImplementedError, TypeError):
            raise
        except Exception as e:   # protobuf's DecodeError and other parse failures
            raise ValueError(f"{label}: not a readable ONNX model ({type(e).__name__}: {e})") \
                from None
        self.name = self._fn.name
        ins = self._fn.inputs
        firsts = {s.dims[0] if s.dims else None for s in ins}
        batched = len(firsts) == 1 and isinstance(next(iter(firsts)), str)
        outs = [_input_spec(vi, {}) for vi in self._fn.graph.output]
        self.signature = Signature(
            tuple(_spec(s) for s in ins), tuple(_spec(s) for s in outs),
            PyTreeDef(TUPLE, None, (LEAF_DEF,) * len(ins)),
            PyTreeDef(LIST, None, (LEAF_DEF,) * len(outs)), 0 if batched else None)

    def predict(self, *inputs) -> list[np.ndarray]:
        return self._fn(*inputs)

    __call__ = predict

    def run_flat(self, inputs) -> list[np.ndarray]:
        return self._fn(*inputs)

    def ir(self) -> str:
        """The optimised IR of the most recent compilation."""
        return self._fn.ir()

    def __repr__(self) -> str:
        return f"<OnnxModel {self.name}{self.signature}>"


def _spec(s) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in (s.dims or ()))
    return TensorSpec(s.name, shape, np.dtype(s.dtype.np))
