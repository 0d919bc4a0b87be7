"""The `lepton` command line: `dump` on a small model file, its error cases (one line, status 2,
no traceback), and `bench` end to end on the call-overhead row."""
import json
import subprocess
import sys
import textwrap

import pytest

import lepton as lp
from lepton.cli import UsageError, load_function, parse_specs
from lepton.ir.types import TensorType

MODEL = textwrap.dedent("""
    import lepton as lp

    def mlp(x, w, b):
        return lp.relu(x @ w + b)

    class Models:
        @staticmethod
        def double(x):
            return x * 2.0

    not_a_function = 3

    def broken(x, w):
        return x @ w
""")

needs_compile = pytest.mark.skipif(not callable(getattr(lp, "compile", None)),
                                   reason="lp.compile is not available yet")


def lepton(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lepton.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    return path


def test_parse_specs_accepts_spaces_commas_and_0d():
    assert parse_specs("f32[64,784] f32[784,10]") == [TensorType.parse("f32[64,784]"),
                                                      TensorType.parse("f32[784,10]")]
    assert [str(t) for t in parse_specs("f32[2, 3], i64[]  bool[4]")] == \
        ["f32[2,3]", "i64[]", "bool[4]"]
    with pytest.raises(UsageError, match="q32"):
        parse_specs("f32[2] q32[3]")
    with pytest.raises(UsageError, match="bad argument type"):
        parse_specs("f32[2,x]")


def test_load_function_finds_dotted_names(model_file):
    assert load_function(f"{model_file}:Models.double")(1.5) == 3.0
    with pytest.raises(UsageError, match="not a function"):
        load_function(f"{model_file}:not_a_function")


@needs_compile
def test_dump_prints_traced_optimised_and_llvm_ir(model_file):
    r = lepton("dump", f"{model_file}:mlp", "--args", "f32[4,8] f32[8,3] f32[3]", "--llvm")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    traced = out.index("// traced IR")
    optimised = out.index("// optimised IR")
    llvm = out.index("// LLVM IR")
    assert traced < optimised < llvm
    before = out[traced:optimised]
    assert "f32[4,8]" in before and "f32[8,3]" in before and "matmul" in before
    assert "return" in out[optimised:llvm]
    assert "define" in out[llvm:]
    # The traced text is the parser's language: it reads back.
    graph_text = before.split("\n", 1)[1].strip()
    assert str(lp.ir.parse(graph_text)) == graph_text


@needs_compile
def test_dump_stages(model_file):
    before = lepton("dump", f"{model_file}:mlp", "--args", "f32[2,8] f32[8,3] f32[3]",
                    "--stage", "before")
    assert before.returncode == 0, before.stderr
    assert "// traced IR" in before.stdout and "// optimised IR" not in before.stdout
    after = lepton("dump", f"{model_file}:mlp", "--args", "f32[2,8] f32[8,3] f32[3]",
                   "--stage", "after")
    assert after.returncode == 0, after.stderr
    assert "// traced IR" not in after.stdout and "// optimised IR" in after.stdout
    assert "// LLVM IR" not in after.stdout


def _one_line_error(r, status, *words):
    assert r.returncode == status, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("target_suffix,args,words", [
    (":nope", "f32[4]", ["no function", "'nope'"]),
    (":mlp", "f32[4,8] q32[8,3]", ["bad argument type", "q32[8,3]"]),
    (":mlp", "f32[4,8", ["bad argument type"]),
    ("", "f32[4]", ["expected FILE.py:NAME"]),
])
def test_dump_usage_errors(model_file, target_suffix, args, words):
    _one_line_error(lepton("dump", f"{model_file}{target_suffix}", "--args", args), 2, *words)


def test_dump_missing_file(tmp_path):
    _one_line_error(lepton("dump", f"{tmp_path}/absent.py:f", "--args", "f32[2]"), 2,
                    "file not found", "absent.py")


def test_dump_file_that_fails_to_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import lepton as lp\nraise RuntimeError('boom at import')\n")
    _one_line_error(lepton("dump", f"{bad}:f", "--args", "f32[2]"), 2,
                    "importing", "RuntimeError", "boom at import")


def test_dump_model_error_is_one_line_status_1(model_file):
    # A shape error inside the user's function is not a usage error, but still one line.
    _one_line_error(lepton("dump", f"{model_file}:broken", "--args", "f32[4,8] f32[7,3]"), 1,
                    "matmul")


def test_bench_rejects_unknown_names():
    _one_line_error(lepton("bench", "--only", "W1,W42"), 2, "unknown workload W42")
    _one_line_error(lepton("bench", "--peers", "tensorflow"), 2, "unknown peer")


@needs_compile
def test_bench_call_row_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    r = lepton("bench", "--quick", "--only", "call", "--peers", "none", "--json", str(out))
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header[:3] == ["workload", "NumPy", "Lepton"]
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("call"))
    assert "ERROR" not in row and "CRASH" not in row and "WRONG" not in row, r.stdout
    data = json.loads(out.read_text())
    lepton_run = next(f for f in data["frameworks"] if f["name"] == "Lepton")
    assert lepton_run["results"]["call"]["status"] == "ok"
    assert lepton_run["results"]["call"]["ms"] < 1.0
