"""Loading an ONNX model as a compiled Lepton function.

The model's graph is rebuilt as a Python function over traced Tensors, one ONNX node at a time
through the op table (op_table.py), and that function goes to `lp.compile` (one compilation per
input signature). Initializers and Constant nodes become graph constants, so constant folding
sees the weights; values computed only from constants (Shape -> Gather -> Concat -> Reshape
chains) are evaluated while tracing when a node needs them as static attributes.

    >>> f = load("mlp.onnx")                 # or an onnx.ModelProto, or its serialized bytes
    >>> [y] = f(x)                           # NumPy inputs in graph-input order -> list of outputs
    >>> print(f.ir()); f.stats()             # as for any lp.compile'd function

Input shapes are static. A symbolic dimension ("batch") is bound by the arrays of each call
(compiling once per signature); `load(model, shapes={"x": (8, 784)})` fixes it ahead of time.
"""
from __future__ import annotations

import os
import re

import numpy as np

from ...ir import halfs
from ...ir.types import DType
from ..tensor import Tensor, constant as _constant, current_graph
from ...random import split as random_split
from . import functions
from .random_ops import uses_random
from .node import ONNX_DTYPES, Node, Rule, onnx_type_name
from .op_table import TABLE


def _read_model(model):
    """A ModelProto from a path, serialized bytes or a ModelProto."""
    import onnx
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model))
    raise TypeError(f"from_onnx needs a path, an onnx.ModelProto or its bytes, got "
                    f"{type(model).__name__}")


class InputSpec:
    """One graph input: its name, dtype and dims (ints, or a dim_param name / None if unknown);
    dims is None when the model does not give the rank."""

    def __init__(self, name: str, dtype: DType, dims: tuple | None):
        self.name, self.dtype, self.dims = name, dtype, dims

    @property
    def static(self) -> bool:
        return self.dims is not None and all(isinstance(d, int) for d in self.dims)

    def describe(self) -> str:
        dims = "?" if self.dims is None else ",".join(
            str(d) if d is not None else "?" for d in self.dims)
        return f"'{self.name}': {self.dtype.name}[{dims}]"


def _input_spec(vi, shapes: dict) -> InputSpec:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        raise NotImplementedError(f"graph input '{vi.name}' is not a tensor (sequences, maps "
                                  f"and optionals are not supported)")
    if tt.elem_type not in ONNX_DTYPES:
        raise NotImplementedError(f"graph input '{vi.name}' has element type "
                                  f"{onnx_type_name(tt.elem_type)}; Lepton supports "
                                  f"{', '.join(onnx_type_name(c) for c in ONNX_DTYPES)}")
    dims = None
    if tt.HasField("shape"):
        dims = tuple(d.dim_value if d.HasField("dim_value")
                     else (d.dim_param or None) for d in tt.shape.dim)
    if vi.name in shapes:
        given = tuple(int(s) for s in shapes[vi.name])
        if dims is not None and (len(given) != len(dims) or any(
                isinstance(d, int) and d != s for d, s in zip(dims, given))):
            raise ValueError(f"shapes['{vi.name}'] = {given} does not fit the model's input "
                             f"{InputSpec(vi.name, ONNX_DTYPES[tt.elem_type], dims).describe()}")
        dims = given
    return InputSpec(vi.name, ONNX_DTYPES[tt.elem_type], dims)


def _initializer(t) -> np.ndarray:
    from onnx import numpy_helper
    if t.data_type not in ONNX_DTYPES:
        raise NotImplementedError(f"initializer '{t.name}' has element type "
                                  f"{onnx_type_name(t.data_type)}, which Lepton does not support")
    arr = numpy_helper.to_array(t)
    arr = np.array(arr, dtype=ONNX_DTYPES[t.data_type].np, copy=True)
    arr.flags.writeable = False
    return arr


def _graph_name(name: str) -> str:
    return re.sub(r"[^\w.\-]", "", name) or "onnx"


class _Builder:
    """Builds one trace of the ONNX graph: name -> Tensor, with constants evaluated on demand."""

    def __init__(self, model: "OnnxFunction"):
        self.model = model
        self.env: dict[str, Tensor] = {}
        self.memo: dict = {}          # Value -> np.ndarray, or None when not a constant
        self.keys: list = []          # [the random key left to split], shared with subgraphs

    def static(self, t: Tensor) -> np.ndarray | None:
        """t's value when it depends on constants only (by the ops' NumPy references)."""
        memo = self.memo
        stack = [t.value]
        while stack:
            v = stack[-1]
            if v in memo:
                stack.pop()
                continue
            if v.op == "constant":
                memo[v] = v.attrs["value"]
            elif v.op == "input":
                memo[v] = None
            else:
                pending = [i for i in v.inputs if i not in memo]
                if pending:
                    stack.extend(pending)
                    continue
                ins = [memo[i] for i in v.inputs]
                memo[v] = (None if any(x is None for x in ins)
                           else np.asarray(halfs.reference(v.opdef, ins, v.attrs, [v.type])))
            stack.pop()
        return memo[t.value]

    def next_key(self) -> Tensor:
        """A fresh random key for one random node, split off the call's key."""
        if not self.keys:
            raise NotImplementedError("a random op inside a graph the loader did not give a key "
                                      "(it looks for random ops before loading)")
        if self.keys[0].graph is not current_graph():
            # inside a loop body's region: key 2 + j of a wider split, j counting such nodes
            # (the same every iteration; never one of the pairs the nodes outside split off,
            # and the key outside is left to them)
            self.keys.append(None)
            j = len(self.keys) - 2
            return random_split(self.keys[0], 3 + j)[2 + j]
        pair = random_split(self.keys[0])
        self.keys[0] = pair[0]
        return pair[1]

    def run(self, inputs: tuple[Tensor, ...]) -> list[Tensor]:
        m = self.model
        if m.random:      # the hidden last input: this call's random key
            self.keys.append(inputs[-1])
            inputs = inputs[:-1]
        for spec, t in zip(m.inputs, inputs):
            if isinstance(t, Frozen):   # a specialised input: a constant of this compilation
                t = _constant(t.array)
                t.value.loc = f"onnx input '{spec.name}' (specialised on its value)"
            self.env[spec.name] = t
        for name, arr in m.initializers.items():
            if name not in self.env:   # an input shadows an initializer of the same name
                t = self.env[name] = _constant(arr)
                t.value.loc = f"onnx initializer '{name}'"
        return self.nodes(m.graph)

    def nodes(self, graph, opset: int | None = None) -> list[Tensor]:
        """Converts graph's nodes in order over self.env; returns its outputs."""
        self.convert(graph.node, self.model.opset if opset is None else opset)
        missing = [o.name for o in graph.output if o.name not in self.env]
        if missing:
            raise ValueError(f"the graph's outputs {missing} are produced by no node")
        return [self.env[o.name] for o in graph.output]

    def convert(self, protos, opset: int) -> None:
        """Converts the nodes in order, adding their outputs to self.env. An op type without a
        converter is expanded to its ONNX function body (functions.py)."""
        g = current_graph()
        for index, proto in enumerate(protos):
            start = len(g.nodes)
            node = Node(proto, index, opset,
                        [self._lookup(n, proto, index) for n in proto.input], self.static)
            node.builder = self
            rule = table_rule(proto) or Rule(
                functions.expand, tuple(a.name for a in proto.attribute))
            outs = node.convert(rule)
            for v in g.nodes[start:]:
                v.loc = node.loc       # IR errors and dumps name the ONNX node
            for out_name, t in zip(proto.output, outs):
                if out_name:
                    self.env[out_name] = t

    def function(self, protos, env: dict, opset: int, outputs: list[str]) -> list[Tensor]:
        """A function body's nodes over `env` (its inputs only); the named outputs."""
        child = _Builder(self.model)
        child.memo, child.keys = self.memo, self.keys
        child.env = dict(env)
        child.convert(protos, opset)
        return [child.env[o] if o else None for o in outputs]

    def subgraph(self, graph, args) -> list[Tensor]:
        """A subgraph (If's branches, Scan's body) on `args` for its inputs; it reads the
        names of the graphs around it."""
        child = _Builder(self.model)
        child.memo, child.keys = self.memo, self.keys
        child.env = dict(self.env)
        for t in graph.initializer:
            child.env[t.name] = _constant(_initializer(t))
        for vi, a in zip(graph.input, args):
            child.env[vi.name] = a
        return child.nodes(graph)

    def _lookup(self, name: str, proto, index: int) -> Tensor | None:
        if not name:
            return None             # an omitted optional input
        if name not in self.env:
            raise ValueError(f"ONNX node '{proto.name or '#%d' % index}' ({proto.op_type}) "
                             f"reads '{name}', which "
                             f"no earlier node, input or initializer defines (nodes must be "
                             f"in topological order)")
        return self.env[name]


class OnnxFunction:
    """A loaded ONNX model: call it with NumPy arrays (graph-input order), get a list of
    NumPy arrays (graph-output order). Compiles with `lp.compile`, once per input signature;
    `.ir()`, `.llvm_ir()`, `.stats()` describe the most recent compilation."""

    def __init__(self, model, compile, *, shapes: dict | None = None, check: bool = False):
        proto = _read_model(model)
        self.proto = proto
        self.graph = proto.graph
        self.opset = _default_opset(proto)
        shapes = dict(shapes or {})
        init_names = {t.name for t in self.graph.initializer}
        # Before IR version 4 initializers were also listed as inputs; they stay constants.
        self.inputs = [_input_spec(vi, shapes) for vi in self.graph.input
                       if vi.name not in init_names]
        unknown = set(shapes) - {s.name for s in self.inputs}
        if unknown:
            raise ValueError(f"shapes= names {sorted(unknown)}, which are not graph inputs "
                             f"(inputs: {[s.name for s in self.inputs]})")
        self.input_names = [s.name for s in self.inputs]
        self.output_names = [o.name for o in self.graph.output]
        self.initializers = {t.name: _initializer(t) for t in self.graph.initializer}
        self._check_ops()
        self.specialised = _shape_inputs(self.graph, {s.name for s in self.inputs})
        self._frozen = [i for i, s in enumerate(self.inputs) if s.name in self.specialised]
        self.random = uses_random(self.graph)   # then each call passes a fresh key last
        self._rng = np.random.default_rng()

        # One output is returned bare: lp.compile's fast path then hands back the array itself
        # (no container), and its output buffer is reused by the next call.
        single = len(self.output_names) == 1

        def forward(*tensors):
            outs = _Builder(self).run(tensors)
            return outs[0] if single else outs

        forward.__name__ = _graph_name(self.graph.name)
        self.name = forward.__name__
        self.compiled = compile(forward, check=check)
        self._checked: set = set()   # signatures bind() accepted
        if all(s.static for s in self.inputs) and not self._frozen:
            self.compiled.lower(*[np.zeros(s.dims, s.dtype.np) for s in self.inputs],
                                *([np.zeros(2, np.int32)] if self.random else []))

    def _check_ops(self, graph=None) -> None:
        """Every op type must be in the table (subgraphs too): refuse the model now, not at the
        first call."""
        from onnx import AttributeProto
        for i, node in enumerate((graph or self.graph).node):
            for a in node.attribute:
                if a.type == AttributeProto.GRAPH:
                    self._check_ops(a.g)
            label = f"'{node.name or '#%d' % i}'"
            rule = table_rule(node)
            if _domain(node) and rule is None:
                raise NotImplementedError(f"ONNX node {label}: op {node.op_type} of domain "
                                          f"'{node.domain}' is not supported")
            if node.op_type in DATA_SHAPED:
                raise NotImplementedError(
                    f"ONNX node {label}: op {node.op_type}'s output shape depends on its input "
                    f"values, which a static graph cannot express ({DATA_SHAPED[node.op_type]})")
            if rule is None and not functions.expandable(node.op_type, self.opset):
                raise NotImplementedError(f"ONNX node {label}: op type {node.op_type} is not "
                                          f"supported by Lepton's ONNX frontend")

    # -- calling ----------------------------------------------------------------------------
    def bind(self, args) -> list[np.ndarray]:
        """The call's arrays, checked against the graph's inputs: count (TypeError), dtype
        (TypeError), rank and static dims (ValueError), one size per symbolic dim name."""
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} inputs "
                            f"({', '.join(s.describe() for s in self.inputs)}), got {len(args)}")
        arrays, bound = [], {}
        for i, (spec, a) in enumerate(zip(self.inputs, args)):
            a = a if isinstance(a, np.ndarray) else np.asarray(a, dtype=spec.dtype.np)
            where = f"input {i} {spec.describe()}"
            if a.dtype != spec.dtype.np:
                raise TypeError(f"{where}: got an array of dtype {a.dtype}; convert it with "
                                f".astype(np.{spec.dtype.np.name})")
            if spec.dims is not None:
                if a.ndim != len(spec.dims) or any(
                        isinstance(d, int) and d != n for d, n in zip(spec.dims, a.shape)):
                    raise ValueError(f"{where}: got shape {a.shape}")
                for d, n in zip(spec.dims, a.shape):
                    if isinstance(d, str):
                        if bound.setdefault(d, (n, spec.name))[0] != n:
                            raise ValueError(f"{where}: dim '{d}' is {n} here but "
                                             f"{bound[d][0]} in input '{bound[d][1]}'")
            arrays.append(a)
        return arrays

    def __call__(self, *args) -> list[np.ndarray]:
        try:   # arrays of a signature already checked skip the checks (saves ~2 us a call)
            known = tuple((a.shape, a.dtype) for a in args) in self._checked
        except AttributeError:
            known = False
        if not known:
            args = self.bind(args)
            self._checked.add(tuple((a.shape, a.dtype) for a in args))
        if self._frozen:
            args = list(args)
            for i in self._frozen:
                args[i] = Frozen(args[i])
        if self.random:
            args = (*args, self._rng.integers(-2**31, 2**31, 2, dtype=np.int32))
        outs = self.compiled(*args)
        return [outs] if len(self.output_names) == 1 else list(outs)

    # -- inspection -------------------------------------------------------------------------
    def _inspect(self, what: str):
        try:
            return getattr(self.compiled, what)()
        except RuntimeError:   # lp.compile's "not compiled yet"
            symbolic = [s.describe() for s in self.inputs if not s.static]
            raise ValueError(f"{self.name} is not compiled yet: inputs {', '.join(symbolic)} "
                             f"have symbolic dims; call it with arrays (it compiles for their "
                             f"shapes) or load it with shapes={{name: shape}}") from None

    def ir(self) -> str:
        """The optimised IR of the most recent compilation."""
        return self._inspect("ir")

    def traced_ir(self) -> str:
        """The IR as traced from the ONNX graph, before optimisation."""
        return self._inspect("traced_ir")

    def llvm_ir(self) -> str:
        return self._inspect("llvm_ir")

    def stats(self) -> dict:
        return self._inspect("stats")

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs)
        return f"<OnnxFunction {self.name}({ins}) -> {self.output_names}, opset {self.opset}>"


class Frozen:
    """An input array passed to lp.compile as a hashable compile-time constant: each value is
    its own compiled signature (lp.compile's static leaves)."""
    __slots__ = ("array", "_key")

    def __init__(self, array: np.ndarray):
        self.array = np.array(array, copy=True)
        self.array.flags.writeable = False
        self._key = (self.array.dtype.str, self.array.shape, self.array.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Frozen) and self._key == other._key

    def __repr__(self) -> str:
        return f"Frozen({self.array.tolist()!r})"


def _domain(proto) -> str:
    """A node's domain, "" for the default one (also spelt "ai.onnx")."""
    return "" if proto.domain in ("", "ai.onnx") else proto.domain


def table_rule(proto) -> Rule | None:
    """The op table's rule for a node, when the table has its op type in the node's domain."""
    rule = TABLE.get(proto.op_type)
    return rule if rule is not None and rule.domain == _domain(proto) else None


# Ops whose output shape is a function of their input values: refused, with what decides it.
DATA_SHAPED = {
    "NonZero": "the count of non-zero elements",
    "Compress": "the count of true conditions",
    "Unique": "the count of distinct values",
    "NonMaxSuppression": "the count of boxes kept",
    "StringSplit": "the count of substrings",
}


def _shape_inputs(graph, input_names: set) -> set:
    """The graph inputs whose values decide a shape, axis or pad: those the `consts` inputs of
    the op table's rules depend on (through any node but Shape and Size, whose outputs depend on
    shapes only), in subgraphs too (If's branches, Loop's and Scan's bodies read the names
    around them: AffineGrid's expanded form takes N, H, W from `size` in an If)."""
    return _needed(graph.node, set()) & input_names


def _subgraphs(proto) -> list:
    from onnx import AttributeProto
    out = []
    for a in proto.attribute:
        if a.type == AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def _needed(nodes, needed: set) -> set:
    """`needed` (names whose values must be known while tracing) grown by what decides them
    and by the consts of `nodes`, walking back from the last node; a subgraph adds the names
    of the graphs around it that it needs (its own names are not theirs)."""
    for proto in reversed(nodes):
        rule = table_rule(proto)
        if proto.op_type in ("Shape", "Size") or rule is None:
            continue
        wanted = [i for i, o in enumerate(proto.output) if o in needed]
        if wanted:
            needed.update(proto.input)
        else:
            needed.update(proto.input[i] for i in rule.consts if i < len(proto.input))
        for g in _subgraphs(proto):
            outs = [o.name for o in g.output]
            if proto.op_type == "If":      # a branch's outputs are the node's, in order
                outs = [outs[i] for i in wanted if i < len(outs)]
            elif not wanted:
                outs = []
            own = ({n for node in g.node for n in node.output} | {v.name for v in g.input}
                   | {t.name for t in g.initializer})
            needed.update(_needed(g.node, set(outs)) - own)
    return needed


def _default_opset(proto) -> int:
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    # none: only ops of other domains can follow, and _check_ops refuses them by name
    if any(node.domain in ("", "ai.onnx") for node in proto.graph.node):
        raise ValueError("the model imports no version of the default ONNX domain "
                         "(opset_import)")
    return 0


def load(model, compile, *, shapes: dict | None = None, check: bool = False) -> OnnxFunction:
    """Loads an ONNX model (a path, an onnx.ModelProto or its bytes) as a function compiled by
    `compile` (`lp.compile`: a frontend does not import the compiler above it; `lp.from_onnx`
    passes it).

    shapes: optional {input name: shape} fixing symbolic dims ahead of the first call. A model
    whose inputs all have concrete dims is compiled now, so errors surface at load time.
    check=True: every call is also run by the reference interpreter (as lp.compile's check).
    Raises NotImplementedError naming the node and the op (or attribute) Lepton lacks.
    """
    return OnnxFunction(model, compile, shapes=shapes, check=check)

