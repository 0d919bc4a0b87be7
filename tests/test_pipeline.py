"""The pass pipeline (lepton/compiler/pipeline.py): the order of passes, what each record says,
LEPTON_DUMP files, the verifier naming a broken pass and its node, the check that a pass does
not mutate its input, speed on a big gradient graph, and `lp.compile(model, freeze=True)`."""
import os
import re
import time
from collections import Counter

import numpy as np
import pytest

import lepton as lp
from lepton import config
from lepton.compiler.passes.canonicalize import canonicalize
from lepton.compiler.pipeline import PIPELINE, PassError, run_pipeline
from lepton.ir import Graph, TensorType, Value, VerifyError, float32, parse
from passcheck import assert_same_results

TEXT = """graph @f(%0: f32[3]) {
  %1: f32[] = constant[value=1.0]
  %2: f32[3] = mul %0, %1
  %3: f32[] = constant[value=2.0]
  %4: f32[] = exp %3
  %5: f32[3] = mul %2, %4
  %6: f32[3] = exp %0  # m.py:3
  %7: f32[3] = exp %0
  %8: f32[3] = add %6, %7
  %9: f32[3] = mul %1, %8
  %10: f32[3] = log %0
  %11: f32[3] = add %5, %9
  return %11
}"""

OPTIMISED = """graph @f(%0: f32[3]) {
  %1: f32[] = constant[value=7.3890557]
  %2: f32[3] = mul %0, %1
  %3: f32[3] = exp %0  # m.py:3
  %4: f32[3] = add %3, %3
  %5: f32[3] = add %2, %4
  return %5
}"""


def test_records_name_each_pass_in_order_with_what_it_changed():
    g = parse(TEXT)
    out, records = run_pipeline(g, verify_each=True)
    assert str(out) == OPTIMISED
    assert_same_results(g, out)
    assert [r.name for r in records] == [name for name, _ in PIPELINE] == [
        "expand", "canonicalize", "constant_fold", "cse", "canonicalize", "merge_scans",
        "scan_residuals", "scan_weights", "dce"]
    assert [r.change for r in records] == [
        "no change",
        "-4 values, 3 rewrites (mul-by-one x2, commute-const x1)",  # and the dead log
        "-1 values, 1 rewrite (fold x1)",
        "-1 values, 1 rewrite (cse x1)",
        "no change",
        "no change",
        "no change",
        "no change",
        "no change"]
    assert records[1].rewrites == {"mul-by-one": 2, "commute-const": 1}
    assert all(r.seconds >= 0 for r in records)


def test_compiled_function_stats_list_the_passes():
    f = lp.compile(lambda x: lp.exp(x * 1.0) + 0.0, example_args=(np.ones(4, np.float32),))
    passes = f.stats()["passes"]
    assert [p["name"] for p in passes] == [name for name, _ in PIPELINE]
    assert "mul-by-one x1" in passes[1]["change"] and "add-zero x1" in passes[1]["change"]
    assert passes[1]["rewrites"] == {"mul-by-one": 1, "add-zero": 1}
    assert all(isinstance(p["seconds"], float) for p in passes)
    assert [v.op for v in f._last.graph.nodes] == ["input", "exp"]


def test_dump_writes_the_ir_before_and_after_every_pass(tmp_path, monkeypatch):
    monkeypatch.setenv("LEPTON_DUMP", str(tmp_path))
    f = lp.compile(lambda x: lp.exp(x * 1.0), example_args=(np.ones(4, np.float32),))
    names = sorted(os.listdir(tmp_path))
    assert names == ["lambda.00-input.ir", "lambda.01-expand.ir", "lambda.02-canonicalize.ir",
                     "lambda.03-constant_fold.ir", "lambda.04-cse.ir",
                     "lambda.05-canonicalize.ir", "lambda.06-merge_scans.ir",
                     "lambda.07-scan_residuals.ir", "lambda.08-scan_weights.ir", "lambda.09-dce.ir",
                     "lambda.llvm-opt.ll", "lambda.llvm.ll", "lambda.partition.txt",
                     "lambda.plan.txt"]
    assert (tmp_path / "lambda.partition.txt").read_text() == \
        "group 0: rows[exp] -> exp:f32[4]"
    assert "intermediate bytes 0" in (tmp_path / "lambda.plan.txt").read_text()
    assert parse((tmp_path / "lambda.00-input.ir").read_text()) == parse(f.traced_ir())
    head, body = (tmp_path / "lambda.02-canonicalize.ir").read_text().split("\n", 1)
    assert re.fullmatch(r"// pass canonicalize: \d+\.\d{3} ms, -2 values, "
                        r"1 rewrite \(mul-by-one x1\)", head)
    assert "mul" not in body
    last = (tmp_path / "lambda.09-dce.ir").read_text().split("\n", 1)[1]
    assert last.strip() == f.ir()


def _copy(g: Graph) -> tuple[Graph, dict]:
    """A new graph of new Values (same ops, attrs and types) and the old -> new map."""
    out, new = Graph(g.name), {}
    for v in g.nodes:
        w = Value(v.op, tuple(new[i] for i in v.inputs), v.attrs, v.type, v.loc)
        new[v] = w
        out.nodes.append(w)
        if v.op == "input":
            out.inputs.append(w)
    out.outputs = [new[o] for o in g.outputs]
    return out, new


def _wrong_type(g, counts=None):
    """A broken pass: its copy of the exp from m.py:3 claims the wrong shape."""
    out, new = _copy(g)
    bad = new[next(v for v in g.nodes if v.op == "exp" and v.loc)]
    bad.type = TensorType(float32, (4,))
    return out


def _uses_undefined(g, counts=None):
    """A broken pass: drops the exp from m.py:3 but keeps its users."""
    out, new = _copy(g)
    out.nodes.remove(new[next(v for v in g.nodes if v.op == "exp" and v.loc)])
    return out


def test_verifier_names_the_broken_pass_and_the_node():
    g = parse(TEXT)
    passes = [("canonicalize", canonicalize), ("breaker", _wrong_type)]
    with pytest.raises(VerifyError, match=r"after pass 'breaker': %4 \(exp at m\.py:3\): "
                                          r"stored type f32\[4\], op rule gives f32\[3\]"):
        run_pipeline(g, verify_each=True, passes=passes)
    with pytest.raises(VerifyError, match=r"after pass 'dropper': %5 \(add\): uses "
                                          r"a value not defined before it"):
        run_pipeline(g, verify_each=True, passes=passes[:1] + [("dropper", _uses_undefined)])
    run_pipeline(g, verify_each=False, passes=passes)  # verification is what catches it


def _mutator(g, counts=None):
    v = g.nodes[2]
    v.inputs = v.inputs[::-1]  # edits a Value of the input graph in place
    return g


def test_a_pass_that_mutates_its_input_is_named():
    g = parse(TEXT)
    with pytest.raises(PassError, match=r"pass 'mutator' mutated %2 \(mul\) of its input"):
        run_pipeline(g, verify_each=True, passes=[("mutator", _mutator)])


def test_a_pass_must_return_a_graph_and_the_input_must_be_valid():
    with pytest.raises(PassError, match="pass 'lazy' returned NoneType"):
        run_pipeline(parse(TEXT), passes=[("lazy", lambda g, counts: None)])
    g = parse(TEXT)
    g.nodes[2].type = TensorType(float32, (5,))
    with pytest.raises(VerifyError, match=r"input graph is broken: %2 \(mul\)"):
        run_pipeline(g, verify_each=True)


def test_the_test_suite_runs_with_verification_on():
    assert config.current().debug  # tests/conftest.py sets LEPTON_DEBUG=1


def test_a_five_thousand_node_gradient_graph_is_optimised_quickly():
    layers = 52
    rng = np.random.default_rng(0)
    params = {f"w{i}": (0.2 * rng.standard_normal((16, 16))).astype(np.float32)
              for i in range(layers)}

    def loss(p, x, y):
        h = x
        for i in range(layers):
            h = lp.layer_norm(lp.gelu(h @ p[f"w{i}"])) + h
            h = lp.softmax(h) * h
        return lp.cross_entropy(h, y)
    g = lp.trace(lp.grad(loss), params, np.ones((8, 16), np.float32), np.zeros(8, np.int64))
    assert len(g.nodes) > 4000
    best = float("inf")
    for _ in range(3):  # CPU time of this process: other work on the machine does not count
        t = time.process_time()
        out, _ = run_pipeline(g)
        best = min(best, time.process_time() - t)
    assert best < 0.25, f"{len(g.nodes)} nodes took {best:.3f} s"
    assert len(out.nodes) < len(g.nodes)


# -- freeze=True ---------------------------------------------------------------------------------
class MLP(lp.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = lp.nn.Linear(40, 32, rng=np.random.default_rng(0))
        self.norm = lp.nn.LayerNorm(32)
        self.fc2 = lp.nn.Linear(32, 3, rng=np.random.default_rng(1))

    def __call__(self, x):
        return self.fc2(lp.relu(self.norm(self.fc1(x))))


def test_freeze_folds_weight_transforms_and_ignores_later_updates():
    model = MLP()
    x = np.random.default_rng(2).standard_normal((5, 40)).astype(np.float32)
    live, frozen = lp.compile(model), lp.compile(model, freeze=True)
    want = live(x)
    np.testing.assert_allclose(frozen(x), want, rtol=1e-5, atol=1e-6)
    g = frozen._last.graph
    assert len(g.inputs) == 1  # x only: the parameters are constants
    ops = Counter(v.op for v in g.nodes)
    assert ops["transpose"] == 0 and ops["matmul"] == 2
    # LayerNorm's weight (ones) and bias (zeros) are gone: x * 1 and x + 0
    assert not any(v.op == "constant" and v.type.shape == (32,) and
                   np.all(v.attrs["value"] == 1) for v in g.nodes)
    passes = frozen.stats()["passes"]
    assert "fold x2" in passes[2]["change"]  # the two weight transposes
    model.fc1.weight[:] = 0.0  # an update after freezing: only the live compile sees it
    np.testing.assert_allclose(frozen(x), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(live(x), want)
