"""ONNX ops that the standard defines as functions of other ops, expanded to those ops.

An op type without a converter in the op table, whose ONNX schema (at the model's opset) has a
function body, is converted as its body: the body's nodes, with attribute references
(`ref_attr_name`) replaced by the node's attributes (or the schema's defaults), run over the
node's inputs. A context-dependent body (LinearAttention, CausalConvWithState, Bernoulli...)
is asked of onnx with the node's input types:

    SwiGLU(A, B)  ->  Swish(A, alpha) -> Mul(_, B)

The body's nodes are themselves converted through the table (or expanded again).
"""
from __future__ import annotations

from .node import ONNX_DTYPES


def schema(op_type: str, opset: int, domain: str = ""):
    """The op's schema in force at `opset`, or None."""
    import onnx.defs
    try:
        return onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None


def expandable(op_type: str, opset: int) -> bool:
    s = schema(op_type, opset)
    return s is not None and (s.has_function or s.has_context_dependent_function)


def _type_proto(t):
    from onnx import helper
    elem = {d: k for k, d in ONNX_DTYPES.items()}[t.dtype]
    return helper.make_tensor_type_proto(elem, list(t.shape)).SerializeToString()


def body(n):
    """The FunctionProto of node n's op, or None when its schema defines none."""
    from onnx import FunctionProto
    s = schema(n.op_type, n.opset)
    if s is None:
        return None
    if s.has_function:
        return s.function_body
    if s.has_context_dependent_function:
        types = [_type_proto(t) if t is not None else b"" for t in n.inputs]
        f = FunctionProto()
        f.ParseFromString(s.get_context_dependent_function(n.proto.SerializeToString(), types))
        return f
    return None


def _bind_attributes(f, node_proto, s):
    """f's nodes with ref_attr_name attributes replaced by the node's (or default) values."""
    from onnx import AttributeProto
    given = {a.name: a for a in node_proto.attribute}
    defaults = {name: a.default_value for name, a in s.attributes.items()
                if a.default_value is not None and a.default_value.type != AttributeProto.UNDEFINED}
    nodes = []
    for proto in f.node:
        if not any(a.ref_attr_name for a in proto.attribute):
            nodes.append(proto)
            continue
        new = type(proto)()
        new.CopyFrom(proto)
        del new.attribute[:]
        for a in proto.attribute:
            if a.ref_attr_name:
                src = given.get(a.ref_attr_name) or defaults.get(a.ref_attr_name)
                if src is None:
                    continue      # an unset optional attribute: the inner op's default
                b = new.attribute.add()
                b.CopyFrom(src)
                b.name = a.name
            else:
                new.attribute.add().CopyFrom(a)
        nodes.append(new)
    return nodes


def expand(n):
    """Node n converted as its op's function body (a list of Tensors, one per output)."""
    f = body(n)
    if f is None:
        n.unsupported(f"op type {n.op_type} is not supported by Lepton's ONNX frontend")
    nodes = _bind_attributes(f, n.proto, schema(n.op_type, n.opset))
    opset = next((int(i.version) for i in f.opset_import if i.domain in ("", "ai.onnx")),
                 n.opset)
    env = {name: t for name, t in zip(f.input, n.inputs) if t is not None}
    outs = n.builder.function(nodes, env, opset, list(f.output))
    return outs[:n.n_outputs]
