"""The typed graph IR: types, the op table, Graph/Value, printer, parser, verifier, interpreter."""
from .graph import Graph, Value
from .interpreter import evaluate, interpret
from .nxview import to_dot, to_networkx
from .ops import OPS, OpDef, OpError
from .parser import ParseError, parse
from .printer import print_graph
from .types import (DType, TensorType, TupleType, bfloat16, bool_, dtype, float4_e2m1fn,
                    float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu,
                    float16, float32, float64, int2, int4, int8, int16, int32, int64, promote,
                    uint2, uint4, uint8, uint16, uint32, uint64)
from .verifier import VerifyError, verify

__all__ = ["Graph", "Value", "evaluate", "interpret", "to_dot", "to_networkx", "OPS", "OpDef",
           "OpError", "ParseError", "parse", "print_graph", "DType", "TensorType", "TupleType",
           "bool_", "dtype", "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32",
           "int64", "uint8", "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e4m3fnuz",
           "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn", "int4", "uint4",
           "int2", "uint2", "promote", "VerifyError", "verify"]
