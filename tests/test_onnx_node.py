"""The ONNX backend node tests that docs/onnx-node-tests.md marks passed, each run as a test
(tests/onnx_node.py loads, runs and compares them as onnx's backend runner does), so that a
regression fails here. tools/onnx_node_table.py regenerates the table after a change.

A case the installed onnx does not have (another onnx version) is skipped."""
import re
from pathlib import Path

import pytest

pytest.importorskip("onnx")
import onnx_node  # noqa: E402

TABLE = Path(__file__).resolve().parent.parent / "docs" / "onnx-node-tests.md"


def passed_cases() -> list[str]:
    rows = re.findall(r"^\| (test_\w+) \| [\w?]+ \| passed \|", TABLE.read_text(), re.M)
    return sorted(rows)


@pytest.fixture(scope="module")
def root():
    return onnx_node.data_dir()


def test_the_table_lists_passed_cases():
    assert len(passed_cases()) > 500


@pytest.mark.parametrize("name", passed_cases())
def test_node(root, name):
    if not (root / name / "model.onnx").exists():
        pytest.skip(f"onnx {__import__('onnx').__version__} has no case {name}")
    onnx_node.run(root / name)
