"""The user guide (docs/) stays in step with the code: its links resolve, the ONNX page lists
exactly the op table, the settings page names every environment variable, the benchmarks page
describes every workload, and the README links to docs/ rather than to files outside the
repository."""
import re
from pathlib import Path

from lepton.bench import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def _links(path: Path):
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+://", target):
            yield target


def test_every_relative_link_resolves():
    for page in [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *PAGES]:
        for target in _links(page):
            file = target.split("#")[0]
            assert not file or (page.parent / file).exists(), f"{page.name}: {target}"


def test_index_links_every_page_and_readme_links_the_index():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "README.md":
            assert f"({page.name})" in index, page.name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/README.md" in readme
    assert "shared/" not in readme


def test_onnx_page_lists_exactly_the_op_table():
    from lepton.frontends.onnx.op_table import TABLE
    text = (DOCS / "onnx.md").read_text(encoding="utf-8").split("## Supported ops", 1)[1]
    listed = [name for line in text.splitlines()
              if line.startswith("| ") and not line.startswith("| group")
              for name in line.split("|")[2].split()]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(TABLE)
    assert f"## Supported ops ({len(TABLE)})" in (DOCS / "onnx.md").read_text(encoding="utf-8")


def test_settings_page_names_every_environment_variable():
    names = set(re.findall(r"LEPTON_[A-Z_]+", (ROOT / "lepton" / "config.py").read_text(encoding="utf-8")))
    settings = (DOCS / "settings.md").read_text(encoding="utf-8")
    assert names and all(f"`{n}`" in settings for n in names), names


def test_benchmarks_page_describes_every_workload():
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    for wid in WORKLOADS:
        assert f"| {wid} |" in text, wid
