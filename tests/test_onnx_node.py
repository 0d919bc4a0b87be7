"""The ONNX backend node tests that docs/onnx-node-tests.md marks passed, each run as a test
(tests/onnx_node.py loads, runs and compares them as onnx's backend runner does), so that a
regression fails here. tools/onnx_node_table.py regenerates the table after a change.
By default a fixed subset runs (every op type, and every 20th case); LEPTON_ONNX_NODE_ALL=1
runs them all.

A case the installed onnx does not have (another onnx version) is skipped."""
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("onnx")
import onnx_node  # noqa: E402

TABLE = Path(__file__).resolve().parent.parent / "docs" / "onnx-node-tests.md"


def passed_cases() -> list[str]:
    rows = re.findall(r"^\| (test_\w+) \| [\w?]+ \| passed \|", TABLE.read_text(), re.M)
    return sorted(rows)


def selected_cases() -> list[str]:
    """All passed cases with LEPTON_ONNX_NODE_ALL=1; else (to keep the suite's time) the first
    passed case of each op type and every 20th of the rest, a fixed choice."""
    rows = re.findall(r"^\| (test_\w+) \| ([\w?]+) \| passed \|", TABLE.read_text(), re.M)
    rows.sort()
    if os.environ.get("LEPTON_ONNX_NODE_ALL") == "1":
        return [name for name, _ in rows]
    seen, out = set(), []
    for i, (name, op) in enumerate(rows):
        if op not in seen or i % 20 == 0:
            out.append(name)
        seen.add(op)
    return out


@pytest.fixture(scope="module")
def root():
    return onnx_node.data_dir()


def test_the_table_lists_passed_cases():
    assert len(passed_cases()) > 500


@pytest.mark.parametrize("name", selected_cases())
def test_node(root, name):
    if not (root / name / "model.onnx").exists():
        pytest.skip(f"onnx {__import__('onnx').__version__} has no case {name}")
    onnx_node.run(root / name)
