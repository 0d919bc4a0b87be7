"""The typed graph IR: types, the op table, Graph/Value, printer, parser, verifier, interpreter."""
from .graph import Graph, Value
from .interpreter import evaluate, interpret
from .nxview import to_dot, to_networkx
from .ops import OPS, OpDef, OpError
from .parser import ParseError, parse
from .printer import print_graph
from .types import (DType, TensorType, TupleType, bool_, dtype, float32, float64, int32, int64,
                    promote)
from .verifier import VerifyError, verify

__all__ = ["Graph", "Value", "evaluate", "interpret", "to_dot", "to_networkx", "OPS", "OpDef",
           "OpError", "ParseError", "parse", "print_graph", "DType", "TensorType", "TupleType",
           "bool_",
           "dtype", "float32", "float64", "int32", "int64", "promote", "VerifyError", "verify"]
