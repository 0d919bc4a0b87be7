"""The tracing frontend: traced Tensors, pytrees, NumPy-named ops, neural ops and `trace`.

`from lepton.frontends import *` gives exactly the public names of module `lepton` that live
here (ops, creation functions, dtypes, `trace`); `lepton/__init__.py` re-exports them.
"""
from ..ir.types import (bfloat16, bool_, float4_e2m1fn, float8_e4m3fn, float8_e4m3fnuz,
                        float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu, float16, float32, float64,
                        int2, int4, int8, int16, int32, int64, uint2, uint4, uint8, uint16, uint32,
                        uint64)
from .control import cond, fori_loop, scan, while_loop
from .nn_ops import (avg_pool2d, batch_norm, conv2d, cross_entropy, layer_norm, log_softmax,
                     max_pool2d, softmax)
from .ops import (abs, add, arange, argmax, bitcast, bitwise_and, bitwise_or, bitwise_xor,
                  broadcast_to, clip, concatenate, constant, cos, divide, dot, erf, exp,
                  expand_dims, floor_divide, full, gelu, invert, left_shift, log, logsumexp,
                  matmul, max, maximum, mean, min, minimum, mod, multiply, negative, ones, power,
                  prod, reciprocal, relu, remainder, reshape, right_shift, rsqrt, sigmoid, sin,
                  split, sqrt, square, squeeze, stack, stop_gradient, subtract, sum, take, tanh,
                  transpose, var, where, zeros)
from .tensor import Tensor
from .upsampling import conv_transpose2d, interpolate
from .trace import trace, trace_flat

__all__ = [
    # elementwise
    "add", "subtract", "multiply", "divide", "power", "negative", "abs", "exp", "log", "sqrt",
    "rsqrt", "tanh", "sigmoid", "relu", "gelu", "erf", "sin", "cos", "maximum", "minimum",
    "where", "clip", "square", "reciprocal", "stop_gradient",
    # integers
    "floor_divide", "remainder", "mod", "left_shift", "right_shift", "bitwise_and", "bitwise_or",
    "bitwise_xor", "invert", "bitcast",
    # reductions
    "sum", "mean", "max", "min", "argmax", "prod", "logsumexp", "var",
    # shape
    "reshape", "transpose", "broadcast_to", "expand_dims", "squeeze", "concatenate", "stack",
    "split", "take",
    # linear algebra
    "matmul", "dot",
    # neural
    "softmax", "log_softmax", "layer_norm", "batch_norm", "conv2d", "max_pool2d", "avg_pool2d",
    "cross_entropy", "conv_transpose2d", "interpolate",
    # control flow
    "scan", "fori_loop", "while_loop", "cond",
    # creation
    "zeros", "ones", "full", "arange", "constant",
    # dtypes
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "bool_", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
    "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn", "int4", "uint4", "int2", "uint2",
    # tracing
    "trace",
]
_internal = (Tensor, trace_flat)  # importable from here, not part of `lepton`'s namespace
