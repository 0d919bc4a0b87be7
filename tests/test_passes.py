"""Canonicalisation rules (lepton/compiler/passes/canonicalize.py), one case or more each: the
IR before, the IR expected after (inline text, parsed and printed), and a numeric check with
the reference interpreter that both compute the same. A case named "rule/..." must fire that
rule; a SAME case must change nothing."""
from collections import Counter

import numpy as np
import pytest

import lepton as lp
from lepton.compiler.passes.canonicalize import RULES, canonicalize
from lepton.compiler.pipeline import run_pipeline
from passcheck import SAME, assert_same_results, case, check_case

CANONICALIZE = [
    case("commute-const", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=2.0]
          %2: f32[3] = mul %1, %0
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=2.0]
          %2: f32[3] = mul %0, %1
          return %2
        }
    """),
    case("mul-by-one", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=1.0]
          %2: f32[3] = mul %0, %1
          %3: f32[3] = mul %1, %2
          return %3
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("mul-by-one/broadcasting-unchanged", """
        graph @f(%0: f32[3]) {
          %1: f32[1,1] = constant[value=[[1.0]]]
          %2: f32[1,3] = mul %0, %1
          %3: f32[] = constant[value=1.0]
          %4: f32[2,3] = broadcast_to[shape=(2, 3)] %3
          %5: f32[2,3] = mul %0, %4
          return %2, %5
        }
    """, SAME),
    case("add-zero", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=0.0]
          %2: f32[3] = add %0, %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("sub-zero", """
        graph @f(%0: i32[3]) {
          %1: i32[] = constant[value=0]
          %2: i32[3] = sub %0, %1
          return %2
        }
    """, """
        graph @f(%0: i32[3]) {
          return %0
        }
    """),
    case("div-by-one", """
        graph @f(%0: f64[3]) {
          %1: f64[] = constant[value=1.0]
          %2: f64[3] = div %0, %1
          return %2
        }
    """, """
        graph @f(%0: f64[3]) {
          return %0
        }
    """),
    case("pow-one", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=1.0]
          %2: f32[3] = pow %0, %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("mul-zero-int", """
        graph @f(%0: f32[3], %1: i64[2,3]) {
          %2: f32[] = constant[value=0.0]
          %3: f32[3] = mul %0, %2
          %4: i64[] = constant[value=0]
          %5: i64[2,3] = mul %1, %4
          return %3, %5
        }
    """, """
        graph @f(%0: f32[3], %1: i64[2,3]) {
          %2: f32[] = constant[value=0.0]
          %3: f32[3] = mul %0, %2
          %4: i64[] = constant[value=0]
          %5: i64[2,3] = broadcast_to[shape=(2, 3)] %4
          return %3, %5
        }
    """),
    case("pow-two", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=2.0]
          %2: f32[3] = pow %0, %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = square %0
          return %1
        }
    """),
    case("pow-minus-one", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=-1.0]
          %2: f32[3] = pow %0, %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = reciprocal %0
          return %1
        }
    """),
    case("mul-minus-one", """
        graph @f(%0: i64[3]) {
          %1: i64[] = constant[value=-1]
          %2: i64[3] = mul %0, %1
          return %2
        }
    """, """
        graph @f(%0: i64[3]) {
          %1: i64[3] = neg %0
          return %1
        }
    """),
    case("mul-self", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = mul %0, %0
          return %1
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = square %0
          return %1
        }
    """),
    case("sub-const", """
        graph @f(%0: f32[2,3]) {
          %1: f32[3] = constant[value=[1.0, -2.0, 0.5]]
          %2: f32[2,3] = sub %0, %1
          return %2
        }
    """, """
        graph @f(%0: f32[2,3]) {
          %1: f32[3] = constant[value=[-1.0, 2.0, -0.5]]
          %2: f32[2,3] = add %0, %1
          return %2
        }
    """),
    case("div-const", """
        graph @f(%0: f32[4]) {
          %1: f32[] = constant[value=8.0]
          %2: f32[4] = div %0, %1
          %3: f32[] = constant[value=1e-40]
          %4: f32[4] = div %0, %3
          return %2, %4
        }
    """, """
        graph @f(%0: f32[4]) {
          %1: f32[] = constant[value=0.125]
          %2: f32[4] = mul %0, %1
          %3: f32[] = constant[value=1e-40]
          %4: f32[4] = div %0, %3
          return %2, %4
        }
    """),
    case("stop-gradient", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = stop_gradient %0
          %2: f32[3] = exp %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = exp %0
          return %1
        }
    """),
    case("double-neg", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = neg %0
          %2: f32[3] = neg %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("add-neg", """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = neg %1
          %3: f32[3] = add %0, %2
          %4: f32[3] = add %2, %0
          return %3, %4
        }
    """, """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = sub %0, %1
          %3: f32[3] = sub %0, %1
          return %2, %3
        }
    """),
    case("sub-neg", """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = neg %1
          %3: f32[3] = sub %0, %2
          return %3
        }
    """, """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[3] = add %0, %1
          return %2
        }
    """),
    case("neg-mul-const", """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=3.0]
          %2: f32[3] = mul %0, %1
          %3: f32[3] = neg %2
          return %3
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=-3.0]
          %2: f32[3] = mul %0, %1
          return %2
        }
    """),
    case("mul-neg-const", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = neg %0
          %2: f32[] = constant[value=3.0]
          %3: f32[3] = mul %1, %2
          return %3
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[] = constant[value=-3.0]
          %2: f32[3] = mul %0, %1
          return %2
        }
    """),
    case("abs-neg", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = neg %0
          %2: f32[3] = abs %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = abs %0
          return %1
        }
    """),
    case("square-neg", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = neg %0
          %2: f32[3] = square %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = square %0
          return %1
        }
    """),
    case("exp-log", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = log %0
          %2: f32[3] = exp %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("log-exp", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = exp %0
          %2: f32[3] = log %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("idempotent", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = relu %0
          %2: f32[3] = relu %1
          %3: f32[3] = abs %2
          %4: f32[3] = abs %3
          return %4
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[3] = relu %0
          %2: f32[3] = abs %1
          return %2
        }
    """),
    case("cast-same", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = cast[dtype=f32] %0
          return %1
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("cast-roundtrip", """
        graph @f(%0: f32[3], %1: f64[3]) {
          %2: f64[3] = cast[dtype=f64] %0
          %3: f32[3] = cast[dtype=f32] %2
          %4: f32[3] = cast[dtype=f32] %1
          %5: f64[3] = cast[dtype=f64] %4
          return %3, %5
        }
    """, """
        graph @f(%0: f32[3], %1: f64[3]) {
          %2: f32[3] = cast[dtype=f32] %1
          %3: f64[3] = cast[dtype=f64] %2
          return %0, %3
        }
    """),
    case("bitcast-same", """
        graph @f(%0: f32[3]) {
          %1: f32[3] = bitcast[dtype=f32] %0
          return %1
        }
    """, """
        graph @f(%0: f32[3]) {
          return %0
        }
    """),
    case("bitcast-bitcast", """
        graph @f(%0: f32[3], %1: f16[3]) {
          %2: i32[3] = bitcast[dtype=i32] %0
          %3: u32[3] = bitcast[dtype=u32] %2
          %4: i16[3] = bitcast[dtype=i16] %1
          %5: f16[3] = bitcast[dtype=f16] %4
          return %3, %5
        }
    """, """
        graph @f(%0: f32[3], %1: f16[3]) {
          %2: u32[3] = bitcast[dtype=u32] %0
          return %2, %1
        }
    """),
    case("where-same", """
        graph @f(%0: bool[3], %1: f32[3]) {
          %2: f32[3] = where %0, %1, %1
          return %2
        }
    """, """
        graph @f(%0: bool[3], %1: f32[3]) {
          return %1
        }
    """),
    case("into-select", """
        graph @f(%0: bool[2,3]) {
          %1: f32[] = constant[value=0.25]
          %2: f32[] = constant[value=0.0]
          %3: f32[2,3] = where %0, %1, %2
          %4: f32[2,3] = neg %3
          %5: f32[] = constant[value=4.0]
          %6: f32[2,3] = mul %3, %5
          return %4, %6
        }
    """, """
        graph @f(%0: bool[2,3]) {
          %1: f32[] = constant[value=-0.25]
          %2: f32[] = constant[value=-0.0]
          %3: f32[2,3] = where %0, %1, %2
          %4: f32[] = constant[value=1.0]
          %5: f32[] = constant[value=0.0]
          %6: f32[2,3] = where %0, %4, %5
          return %3, %6
        }
    """),
    case("implicit-broadcast", """
        graph @f(%0: f32[2,3], %1: f32[3]) {
          %2: f32[2,3] = broadcast_to[shape=(2, 3)] %1
          %3: f32[2,3] = add %0, %2
          %4: f32[1] = constant[value=[2.0]]
          %5: f32[2,3] = broadcast_to[shape=(2, 3)] %4
          %6: f32[2,3] = mul %3, %5
          %7: f32[2,3] = sub %2, %4
          return %6, %7
        }
    """, """
        graph @f(%0: f32[2,3], %1: f32[3]) {
          %2: f32[2,3] = broadcast_to[shape=(2, 3)] %1
          %3: f32[2,3] = add %0, %1
          %4: f32[] = constant[value=2.0]
          %5: f32[2,3] = mul %3, %4
          %6: f32[] = constant[value=-2.0]
          %7: f32[2,3] = add %2, %6
          return %5, %7
        }
    """),
    case("implicit-broadcast/needed-unchanged", """
        graph @f(%0: f32[3], %1: f32[3]) {
          %2: f32[2,3] = broadcast_to[shape=(2, 3)] %1
          %3: f32[2,3] = add %0, %2
          return %3
        }
    """, SAME),
    case("splat-move", """
        graph @f(%0: f32[]) {
          %1: f32[2,3] = broadcast_to[shape=(2, 3)] %0
          %2: f32[3,2] = transpose[perm=(1, 0)] %1
          %3: f32[6] = reshape[shape=(6,)] %2
          return %3
        }
    """, """
        graph @f(%0: f32[]) {
          %1: f32[6] = broadcast_to[shape=(6,)] %0
          return %1
        }
    """),
    case("broadcast-same", """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,3] = broadcast_to[shape=(2, 3)] %0
          return %1
        }
    """, """
        graph @f(%0: f32[2,3]) {
          return %0
        }
    """),
    case("broadcast-size-one", """
        graph @f(%0: f32[]) {
          %1: f32[1,1] = reshape[shape=(1, 1)] %0
          %2: f32[4,3] = broadcast_to[shape=(4, 3)] %1
          return %2
        }
    """, """
        graph @f(%0: f32[]) {
          %1: f32[4,3] = broadcast_to[shape=(4, 3)] %0
          return %1
        }
    """),
    case("broadcast-broadcast", """
        graph @f(%0: f32[3]) {
          %1: f32[2,3] = broadcast_to[shape=(2, 3)] %0
          %2: f32[4,2,3] = broadcast_to[shape=(4, 2, 3)] %1
          return %2
        }
    """, """
        graph @f(%0: f32[3]) {
          %1: f32[4,2,3] = broadcast_to[shape=(4, 2, 3)] %0
          return %1
        }
    """),
    case("reshape-same", """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,3] = reshape[shape=(2, 3)] %0
          return %1
        }
    """, """
        graph @f(%0: f32[2,3]) {
          return %0
        }
    """),
    case("reshape-reshape", """
        graph @f(%0: f32[2,3]) {
          %1: f32[6] = reshape[shape=(6,)] %0
          %2: f32[3,2] = reshape[shape=(3, 2)] %1
          %3: f32[2,3] = reshape[shape=(2, 3)] %1
          return %2, %3
        }
    """, """
        graph @f(%0: f32[2,3]) {
          %1: f32[3,2] = reshape[shape=(3, 2)] %0
          return %1, %0
        }
    """),
    case("transpose-identity", """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,3] = transpose[perm=(0, 1)] %0
          return %1
        }
    """, """
        graph @f(%0: f32[2,3]) {
          return %0
        }
    """),
    case("transpose-transpose", """
        graph @f(%0: f32[2,3,4]) {
          %1: f32[3,4,2] = transpose[perm=(1, 2, 0)] %0
          %2: f32[4,3,2] = transpose[perm=(1, 0, 2)] %1
          %3: f32[2,3,4] = transpose[perm=(2, 0, 1)] %1
          return %2, %3
        }
    """, """
        graph @f(%0: f32[2,3,4]) {
          %1: f32[4,3,2] = transpose[perm=(2, 1, 0)] %0
          return %1, %0
        }
    """),
    case("transpose-as-reshape", """
        graph @f(%0: f32[2,1,8,8], %1: f32[1,4,3,3]) {
          %2: f32[2,1,1,8,8] = reshape[shape=(2, 1, 1, 8, 8)] %0
          %3: f32[1,1,2,8,8] = transpose[perm=(2, 1, 0, 3, 4)] %2
          %4: f32[1,2,8,8] = reshape[shape=(1, 2, 8, 8)] %3
          %5: f32[4,1,3,3] = transpose[perm=(1, 0, 2, 3)] %1
          %6: f32[1,4,3,3] = transpose[perm=(0, 1, 3, 2)] %1
          return %4, %5, %6
        }
    """, """
        graph @f(%0: f32[2,1,8,8], %1: f32[1,4,3,3]) {
          %2: f32[1,2,8,8] = reshape[shape=(1, 2, 8, 8)] %0
          %3: f32[4,1,3,3] = reshape[shape=(4, 1, 3, 3)] %1
          %4: f32[1,4,3,3] = transpose[perm=(0, 1, 3, 2)] %1
          return %2, %3, %4
        }
    """),
    case("reduce-size-one", """
        graph @f(%0: f32[4,1,3]) {
          %1: f32[4,3] = sum[axes=(1,), keepdims=False] %0
          %2: f32[4,1,3] = max[axes=(1,), keepdims=True] %0
          %3: f32[4] = sum[axes=(1, 2), keepdims=False] %0
          return %1, %2, %3
        }
    """, """
        graph @f(%0: f32[4,1,3]) {
          %1: f32[4,3] = reshape[shape=(4, 3)] %0
          %2: f32[4] = sum[axes=(1, 2), keepdims=False] %0
          return %1, %0, %2
        }
    """),
    case("slice-whole", """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,3] = slice[starts=(0, 0), stops=(2, 3), steps=(1, 1)] %0
          %2: f32[2,2] = slice[starts=(0, 0), stops=(2, 3), steps=(1, 2)] %0
          return %1, %2
        }
    """, """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,2] = slice[starts=(0, 0), stops=(2, 3), steps=(1, 2)] %0
          return %0, %1
        }
    """),
    case("concat-single", """
        graph @f(%0: f32[2,3]) {
          %1: f32[2,3] = concatenate[axis=0] %0
          return %1
        }
    """, """
        graph @f(%0: f32[2,3]) {
          return %0
        }
    """),
]


@pytest.mark.parametrize("name,before,after", CANONICALIZE)
def test_canonicalize(name, before, after):
    check_case(canonicalize, name, before, after)


def test_every_rule_has_a_case():
    tested = {p.values[0].split("/")[0] for p in CANONICALIZE}
    assert {r.name for r in RULES} <= tested


def test_float_multiplication_by_zero_is_kept():
    # inf * 0 and nan * 0 are nan: x * 0 -> 0 would be wrong for floats
    g = lp.ir.parse("""graph @f(%0: f32[3]) {
      %1: f32[] = constant[value=0.0]
      %2: f32[3] = mul %0, %1
      return %2
    }""")
    out = canonicalize(g)
    assert [v.op for v in out.nodes] == ["input", "constant", "mul"]
    x = np.array([np.inf, np.nan, 2.0], np.float32)
    np.testing.assert_array_equal(lp.ir.interpret(out, x)[0], [np.nan, np.nan, 0.0])


def _mlp_loss(p, x, y):
    h = lp.relu(x @ p["w"] + p["b"])
    return lp.cross_entropy(lp.layer_norm(h), y) + lp.softmax(h).var()


def test_traced_gradient_graph_loses_its_redundancy():
    """A gradient graph (broadcasts of scalars, reshapes to the same shape, divisions by
    counts) through the whole pipeline: none of those remain, and the results agree."""
    rng = np.random.default_rng(1)
    p = {"w": rng.standard_normal((6, 5)).astype(np.float32),
         "b": rng.standard_normal(5).astype(np.float32)}
    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = np.array([0, 4, 2, 1])
    g = lp.trace(lp.grad(_mlp_loss), p, x, y)
    out, records = run_pipeline(g, verify_each=True)
    ops = Counter(v.op for v in out.nodes)
    assert ops["broadcast_to"] == 0
    assert not any(v.op == "reshape" and v.shape == v.inputs[0].shape for v in out.nodes)
    assert not any(v.op == "div" and v.inputs[1].op == "constant" for v in out.nodes)
    assert len(out.nodes) < 0.75 * len(g.nodes)
    assert_same_results(g, out, [p["b"], p["w"], x, y], rtol=2e-5)
