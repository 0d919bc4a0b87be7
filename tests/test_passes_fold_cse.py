"""Constant folding, CSE and DCE (lepton/compiler/passes/), and the rewrite driver they and
canonicalisation share: inline IR before/after cases checked numerically, the driver's
guarantees, and a property test of the whole pipeline on random graphs against the reference
interpreter."""
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lepton.compiler.passes.constant_fold import FOLD_LIMIT, constant_fold
from lepton.compiler.passes.cse import cse
from lepton.compiler.passes.dce import dce
from lepton.compiler.passes.rewrite import RewriteError, Rule, op, rewrite, var
from lepton.compiler.pipeline import run_pipeline
from lepton.ir import Graph, TensorType, float32, interpret, parse, verify
from passcheck import SAME, assert_same_results, case, check_case
from random_graphs import random_graph

CONSTANT_FOLD = [
    case("fold", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=2.0]
          %2: f32[] = exp %1
          %3: f32[] = neg %2
          %4: f32[3] = mul %0, %3
          return %4
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=-7.3890557]
          %2: f32[3] = mul %0, %1
          return %2
        }
    """),
    case("fold/small-materialised", """
        graph @f(%0: f32[3,2]) {
          %1: i32[2,3] = constant[value=[[1, 2, 3], [4, 5, 6]]]
          %2: i32[3,2] = transpose[perm=(1, 0)] %1
          %3: f32[3,2] = cast[dtype=f32] %2
          %4: f32[3,2] = add %0, %3
          return %4
        }
    """, """
        graph @f(%0: f32[3,2]) {
          %1: f32[3,2] = constant[value=[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]]
          %2: f32[3,2] = add %0, %1
          return %2
        }
    """),
    case("fold/splat-result-lazy", """
        graph @f(%0: f32[1000,1000]) {
          %1: f32[] = constant[value=1.0]
          %2: f32[1000,1000] = broadcast_to[shape=(1000, 1000)] %1
          %3: f32[1000,1000] = neg %2
          %4: f32[1000000] = reshape[shape=(1000000,)] %3
          %5: f32[1000,1000] = reshape[shape=(1000, 1000)] %4
          %6: f32[1000,1000] = add %0, %5
          return %6
        }
    """, """
        graph @f(%0: f32[1000,1000]) {
          %1: f32[] = constant[value=-1.0]
          %2: f32[1000,1000] = broadcast_to[shape=(1000, 1000)] %1
          %3: f32[1000,1000] = add %0, %2
          return %3
        }
    """),
    case("fold/big-broadcast-unchanged", """
        graph @f(%0: f32[2000,3]) {
          %1: f32[3] = constant[value=[1.0, 2.0, 3.0]]
          %2: f32[2000,3] = broadcast_to[shape=(2000, 3)] %1
          %3: f32[2000,3] = exp %2
          %4: f32[2000,3] = add %0, %3
          return %4
        }
    """, SAME),
    case("splat", """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,3] = constant[value=[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]]
          %2: f32[2,3] = mul %0, %1
          %3: f32[2] = constant[value=[0.0, -0.0]]
          return %2, %3
        }
    """, """
        graph @f(%0: f32[2,3]) {
          %1: f32[] = constant[value=0.5]
          %2: f32[2,3] = broadcast_to[shape=(2, 3)] %1
          %3: f32[2,3] = mul %0, %2
          %4: f32[2] = constant[value=[0.0, -0.0]]
          return %3, %4
        }
    """),
]

CSE = [
    case("cse", """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = exp %0
          %3: f32[3] = exp %0
          %4: f32[3] = add %0, %1
          %5: f32[3] = add %1, %0
          %6: f32[3] = sub %0, %1
          %7: f32[3] = sub %1, %0
          %8: f32[3] = mul %2, %3
          %9: f32[3] = mul %4, %5
          return %8, %9, %6, %7
        }
    """, """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = exp %0
          %3: f32[3] = add %0, %1
          %4: f32[3] = sub %0, %1
          %5: f32[3] = sub %1, %0
          %6: f32[3] = mul %2, %2
          %7: f32[3] = mul %3, %3
          return %6, %7, %4, %5
        }
    """),
    case("cse/constants-by-bytes", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=0.0]
          %2: f32[] = constant[value=0.0]
          %3: f32[] = constant[value=-0.0]
          %4: f64[] = constant[value=0.0]
          %5: f32[3] = add %0, %1
          %6: f32[3] = add %0, %2
          %7: f32[3] = add %0, %3
          %8: f64[3] = cast[dtype=f64] %6
          %9: f64[3] = add %8, %4
          return %5, %6, %7, %9
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=0.0]
          %2: f32[] = constant[value=-0.0]
          %3: f64[] = constant[value=0.0]
          %4: f32[3] = add %0, %1
          %5: f32[3] = add %0, %2
          %6: f64[3] = cast[dtype=f64] %4
          %7: f64[3] = add %6, %3
          return %4, %4, %5, %7
        }
    """),
    case("cse/attributes-and-inputs", """
        graph @f(%0: f32[2,3], %1: f32[2,3]) {
          %2: f32[2] = sum[axes=(1,), keepdims=False] %0
          %3: f32[3] = sum[axes=(0,), keepdims=False] %0
          %4: f32[2] = sum[axes=(1,), keepdims=False] %1
          %5: f32[2] = sum[axes=(1,), keepdims=False] %0
          return %2, %3, %4, %5
        }
    """, """
        graph @f(%0: f32[2,3], %1: f32[2,3]) {
          %2: f32[2] = sum[axes=(1,), keepdims=False] %0
          %3: f32[3] = sum[axes=(0,), keepdims=False] %0
          %4: f32[2] = sum[axes=(1,), keepdims=False] %1
          return %2, %3, %4, %2
        }
    """),
]

DCE = [
    case("dead", """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = exp %0
          %3: f32[3] = log %0
          %4: f32[3] = add %3, %1
          return %2
        }
    """, """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = exp %0
          return %2
        }
    """),
]


@pytest.mark.parametrize("name,before,after", CONSTANT_FOLD)
def test_constant_fold(name, before, after):
    check_case(constant_fold, name, before, after)


@pytest.mark.parametrize("name,before,after", CSE)
def test_cse(name, before, after):
    check_case(cse, name, before, after)


@pytest.mark.parametrize("name,before,after", DCE)
def test_dce(name, before, after):
    check_case(dce, name, before, after)


def test_a_big_same_size_transform_of_a_constant_is_folded():
    """What freeze=True relies on: a weight's transpose is bigger than FOLD_LIMIT but no
    bigger than the weight, so it is computed once; the weight itself is then dead."""
    w = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    assert w.size > FOLD_LIMIT
    g = Graph("f")
    x = g.input(TensorType(float32, (2, 64)))
    wt = g.add("transpose", [g.add("constant", [], value=w)], perm=(1, 0))
    g.set_outputs([g.add("matmul", [x, g.add("transpose", [wt], perm=(1, 0))])])
    counts = Counter()
    out = constant_fold(g, counts)
    assert [v.op for v in out.nodes] == ["input", "constant", "matmul"]
    np.testing.assert_array_equal(out.nodes[1].attrs["value"], w)
    assert counts == {"fold": 2}
    assert_same_results(g, out)


def test_an_op_whose_reference_fails_is_left_to_fail_at_run_time():
    g = parse("""graph @f(%0: f32[2]) {
      %1: f32[3] = constant[value=[1.0, 2.0, 3.0]]
      %2: i64[2] = constant[value=[0, 7]]
      %3: f32[2] = take[axis=0] %1, %2
      %4: f32[2] = add %0, %3
      return %4
    }""")
    counts = Counter()
    out = constant_fold(g, counts)
    assert str(out) == str(g) and not counts
    with pytest.raises(IndexError, match="out of range"):
        interpret(out, np.ones(2, np.float32))


# -- the driver --------------------------------------------------------------------------------
X = var("x")


def test_rules_that_undo_each_other_are_reported():
    rules = [Rule("wrap", op("exp", X), lambda b, x: b.op("exp", b.op("neg", b.op("neg", x)))),
             Rule("unwrap", op("neg", op("neg", X)), lambda b, x: x)]
    g = parse("graph @f(%0: f32[3]) {\n  %1: f32[3] = exp %0\n  return %1\n}")
    with pytest.raises(RewriteError,
                       match=r"do not terminate: more than 64 nested.*rules rewriting: wrap$"):
        rewrite(g, rules)


def test_a_rule_that_would_change_the_type_does_not_apply():
    # x + y -> x is wrong whenever y broadcasts x; the driver keeps only same-typed results
    rules = [Rule("drop", op("add", X, var("y")), lambda b, x, y: x)]
    g = parse("""graph @f(%0: f32[3], %1: f32[2,3], %2: f32[3]) {
      %3: f32[2,3] = add %0, %1
      %4: f32[3] = add %0, %2
      return %3, %4
    }""")
    counts = Counter()
    out = rewrite(g, rules, counts)
    assert counts == {"drop": 1}
    assert [v.op for v in out.nodes] == ["input", "input", "input", "add"]


def test_patterns_name_unknown_ops_at_definition():
    with pytest.raises(ValueError, match="unknown ops"):
        op("frobnicate", X)


# -- the whole pipeline on random graphs ---------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graph(), st.integers(0, 2 ** 31))
def test_pipeline_preserves_results_on_random_graphs(g, seed):
    rng = np.random.default_rng(seed)
    args = [rng.uniform(-3, 3, v.shape).astype(np.float32) for v in g.inputs]
    out, _ = run_pipeline(g, verify_each=True)
    verify(out)
    with np.errstate(all="ignore"):
        assert_same_results(g, out, args, rtol=1e-5)
