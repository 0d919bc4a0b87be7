"""The workloads as ONNX models built with onnx.helper (no exporter), for the onnxruntime peer.

    >>> model = build(WORKLOADS["W4"], args)          # an onnx.ModelProto, opset 20
    >>> onnxruntime.InferenceSession(model.SerializeToString()).run(None, dict(zip(names, args)))

Every workload argument is a graph input (as in every other framework: weights are not baked in
as initializers, which would let the runtime pre-pack them); the model's own constants (W3's
scalars, W8's mask) are initializers.
"""
from __future__ import annotations

import math

import numpy as np

from .workloads import Workload, causal_mask

SUPPORTED = ("W1", "W2", "W3", "W4", "W5", "W7", "W8", "W10", "call")   # the ids `build` knows
# (no W6, W9, W11: onnxruntime training is not a peer here)
OPSET = 20          # LayerNormalization (17) and Gelu with approximate="tanh" (20)
IR_VERSION = 10


class _Builder:
    """Accumulates nodes; `op` returns the new tensor's name so graphs read like code."""

    def __init__(self, workload: Workload, args):
        from onnx import TensorProto, helper
        self.helper = helper
        self.inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
                       for n, a in zip(workload.arg_names, args)]
        self.nodes, self.initializers, self.count = [], [], 0

    def _fresh(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        out = self._fresh(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def const(self, value, dtype=np.float32) -> str:
        from onnx import numpy_helper
        name = self._fresh("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def model(self, output: str):
        from onnx import TensorProto
        h = self.helper
        graph = h.make_graph(self.nodes, "workload", self.inputs,
                             [h.make_tensor_value_info(output, TensorProto.FLOAT, None)],
                             initializer=self.initializers)
        m = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)],
                         producer_name="lepton.bench")
        m.ir_version = IR_VERSION
        return m


def _linear(b: _Builder, x: str, w: str, bias: str) -> str:
    return b.op("Add", b.op("MatMul", x, w), bias)


def _mlp(b, x, w1, b1, w2, b2, w3, b3):
    h = b.op("Relu", _linear(b, x, w1, b1))
    h = b.op("Relu", _linear(b, h, w2, b2))
    return _linear(b, h, w3, b3)


def _w3(b, x, a=0.0, bb=0.0):
    z = b.op("Add", b.op("Mul", x, b.const(a)), b.const(bb))
    g = b.op("Gelu", z, approximate="tanh")
    return b.op("Add", b.op("Mul", g, b.const(0.5)), x)


def _w7(b, x, c1w, c1b, c2w, c2b, fw, fb):
    def block(h, w, bias):
        h = b.op("Relu", b.op("Conv", h, w, bias, pads=[1, 1, 1, 1], kernel_shape=[3, 3]))
        return b.op("MaxPool", h, kernel_shape=[2, 2], strides=[2, 2])
    h = block(block(x, c1w, c1b), c2w, c2b)
    return _linear(b, b.op("Flatten", h, axis=1), fw, fb)


def _w8(b, args, heads, eps, x, ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b,
        fc1_w, fc1_b, fc2_w, fc2_b, causal=True):
    t, d = args[0].shape
    hd = d // heads
    qkv = _linear(b, b.op("LayerNormalization", x, ln1_w, ln1_b, axis=-1, epsilon=eps),
                  qkv_w, qkv_b)
    qkv = b.op("Transpose", b.op("Reshape", qkv, b.const([t, 3, heads, hd], np.int64)),
               perm=[1, 2, 0, 3])                                 # 3, heads, t, hd
    q, k, v = (b.op("Gather", qkv, b.const(i, np.int64), axis=0) for i in range(3))
    s = b.op("MatMul", q, b.op("Transpose", k, perm=[0, 2, 1]))
    s = b.op("Mul", s, b.const(1.0 / math.sqrt(hd)))
    if causal:
        s = b.op("Add", s, b.const(causal_mask(t)))
    a = b.op("MatMul", b.op("Softmax", s, axis=-1), v)
    a = b.op("Reshape", b.op("Transpose", a, perm=[1, 0, 2]), b.const([t, d], np.int64))
    y = b.op("Add", x, _linear(b, a, proj_w, proj_b))
    h = _linear(b, b.op("LayerNormalization", y, ln2_w, ln2_b, axis=-1, epsilon=eps),
                fc1_w, fc1_b)
    h = b.op("Gelu", h, approximate="tanh")
    return b.op("Add", y, _linear(b, h, fc2_w, fc2_b))


def build(workload: Workload, args):
    """The ONNX ModelProto computing `workload` on inputs shaped like `args`."""
    b = _Builder(workload, args)
    names = workload.arg_names
    a = workload.attrs
    wid = workload.id
    if wid in ("W1", "W2"):
        out = _mlp(b, *names)
    elif wid == "W3":
        out = _w3(b, names[0], a["a"], a["b"])
    elif wid == "W4":
        out = b.op("LayerNormalization", *names, axis=-1, epsilon=a["eps"])
    elif wid == "W5":
        out = b.op("MatMul", *names)
    elif wid == "W7":
        out = _w7(b, *names)
    elif wid == "W8":
        out = _w8(b, args, a["heads"], a["eps"], *names)
    elif wid == "W10":
        per = (len(names) - 3) // a["blocks"]
        out = names[0]
        for i in range(a["blocks"]):
            out = _w8(b, args, a["heads"], a["eps"], out,
                      *names[1 + i * per:1 + (i + 1) * per], causal=False)
        out = b.op("LayerNormalization", out, names[-2], names[-1], axis=-1, epsilon=a["eps"])
    elif wid == "call":
        out = b.op("Add", names[0], b.const(1.0))
    else:
        raise NotImplementedError(f"no ONNX graph for workload {wid}")
    return b.model(out)
