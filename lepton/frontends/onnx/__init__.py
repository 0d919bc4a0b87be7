"""The ONNX frontend: `load(model, compile)` (`lp.from_onnx(model)` passes `lp.compile`) turns an
ONNX model into a function compiled by Lepton.

    >>> f = lp.from_onnx("model.onnx")       # a path, an onnx.ModelProto or its bytes
    >>> outputs = f(*inputs)                 # NumPy arrays in graph-input order -> list

Needs the optional `onnx` package (imported when a model is loaded, not by `import lepton`).
loader.py reads the model and traces it node by node, op_table.py maps each ONNX op onto the
traced ops (neural.py holds the convolution, pooling and normalisation converters).
"""
from .loader import OnnxFunction, load

__all__ = ["load", "OnnxFunction"]
