"""The IR on its own: types, construction errors, printer/parser round trip, verifier,
interpreter and the networkx view."""
import numpy as np
import pytest

from lepton.ir import (OPS, Graph, OpError, ParseError, TensorType, VerifyError, float32, int64,
                       interpret, parse, to_dot, to_networkx, verify)
from lepton.ir.types import bool_, dtype, promote


def test_tensor_type_text_round_trip():
    for t in [TensorType(float32, (64, 256)), TensorType(int64, ()), TensorType(bool_, (0, 3))]:
        assert TensorType.parse(str(t)) == t
    assert str(TensorType(float32, ())) == "f32[]"
    with pytest.raises(ValueError):
        TensorType.parse("f32(3)")


def test_dtype_conversion_and_promotion():
    assert dtype(np.float32) is float32 and dtype("i64") is int64 and dtype(bool) is bool_
    assert promote(float32, float32) is float32
    assert promote(int64, float32) is float32
    assert str(promote(bool_, int64)) == "i64"
    with pytest.raises(TypeError, match="unsupported dtype"):
        dtype(np.complex64)


def test_add_infers_type_and_errors_name_op_and_line():
    g = Graph()
    x = g.input(TensorType(float32, (2, 3)))
    y = g.input(TensorType(float32, (4, 3)))
    with pytest.raises(OpError, match=r"do not broadcast in op 'add' at model.py:7"):
        g.add("add", [x, y], loc="model.py:7")
    with pytest.raises(OpError, match="expected 2 inputs"):
        g.add("add", [x])
    with pytest.raises(OpError, match="unknown op"):
        g.add("frobnicate", [x])
    with pytest.raises(OpError, match="axes"):
        g.add("sum", [x], axes=(2,), keepdims=False)
    with pytest.raises(OpError, match="share one dtype"):
        g.add("add", [x, g.add("cast", [x], dtype=int64)])


def _sample_graph():
    g = Graph("sample")
    x = g.input(TensorType(float32, (2, 3)))
    c = g.add("constant", [], value=np.array([1.5, -np.inf, np.nan], np.float32))
    big = g.add("constant", [], value=np.arange(12, dtype=np.int64).reshape(3, 4))
    e = g.add("exp", [x], loc="m.py:3")
    s = g.add("sum", [g.add("add", [e, c])], axes=(1,), keepdims=True)
    i = g.add("check_index", [g.add("constant", [], value=np.array([2, -3], np.int32))],
              bound=3, wrap=True, what="getitem", loc="m.py:4")
    t = g.add("take", [x, i], axis=1)
    g.set_outputs([s, big, t, g.add("cast", [t], dtype=bool_)])
    return g


def test_print_parse_round_trip():
    g = _sample_graph()
    text = str(g)
    assert "%3: f32[2,3] = exp %0  # m.py:3" in text
    assert "sum[axes=(1,), keepdims=True]" in text
    assert "check_index[bound=3, wrap=True, what='getitem'] %6  # m.py:4" in text
    g2 = parse(text)
    assert g2 == g and str(g2) == text
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    for a, b in zip(interpret(g, x), interpret(g2, x)):
        np.testing.assert_array_equal(a, b)


def test_parse_errors_name_the_line():
    with pytest.raises(ParseError, match="line 1"):
        parse("graf @x() {")
    with pytest.raises(ParseError, match="line 2.*declared type"):
        parse("graph @g(%0: f32[2]) {\n  %1: f32[3] = exp %0\n  return %1\n}")
    with pytest.raises(ParseError, match="line 2"):
        parse("graph @g(%0: f32[2]) {\n  %1: f32[2] = exp %7\n  return %1\n}")


def test_verifier_catches_broken_graphs():
    g = _sample_graph()
    assert verify(g) is g
    bad = Graph()
    bad.inputs, bad.nodes, bad.outputs = g.inputs, list(reversed(g.nodes)), g.outputs
    with pytest.raises(VerifyError, match="after pass 'reverse'.*not defined before"):
        verify(bad, after="reverse")
    g.nodes[3].type = TensorType(float32, (9,))
    with pytest.raises(VerifyError, match="stored type"):
        verify(g)


def test_interpreter_checks_arguments():
    g = _sample_graph()
    with pytest.raises(TypeError, match="takes 1 arguments"):
        interpret(g)
    with pytest.raises(TypeError, match=r"argument 0: expected f32\[2,3\]"):
        interpret(g, np.zeros((2, 3), np.float64))


def test_networkx_view_and_dot():
    g = _sample_graph()
    d = to_networkx(g)
    import networkx as nx
    assert nx.is_directed_acyclic_graph(d)
    assert list(nx.topological_sort(d))[0] in g.nodes
    assert d.number_of_nodes() == len(g.nodes)
    dot = to_dot(g)
    assert dot.startswith('digraph "sample"') and "->" in dot


def test_every_op_has_a_kind_and_reference():
    kinds = {"source", "elementwise", "reduce", "movement", "matmul", "conv", "pool", "check",
             "control"}
    for name, op in OPS.items():
        assert op.kind in kinds, name
        assert callable(op.infer) and callable(op.ref), name


def test_op_facts_live_on_the_op_records():
    """Fusion, canonicalisation, CSE, memory planning and lowering read these fields."""
    from lepton.ir.ops import OPS
    assert {n for n, d in OPS.items() if not d.kernel} == {"input", "constant", "reshape", "get"}
    assert {n for n, d in OPS.items() if d.commutative} == {"add", "mul", "maximum", "minimum",
                                                              "eq", "ne"}
    assert all(d.kind == "elementwise" for d in OPS.values() if d.epilogue)
    assert OPS["relu"].epilogue and not OPS["lt"].epilogue and not OPS["where"].epilogue
    assert OPS["exp"].expensive and OPS["pow"].expensive and not OPS["add"].expensive
    assert not any(d.lowered for d in OPS.values() if d.expand)
