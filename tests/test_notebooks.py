"""The committed notebooks are executed (outputs visible where they are read) and self-contained."""

import json
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_without_errors(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in cells]
    assert None not in counts, f"{path.name}: run `make notebooks-execute` and commit the result"
    assert counts == sorted(counts), f"{path.name}: cells were run out of order"
    errors = [o for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"


def test_nothing_cites_files_outside_the_repository():
    root = pathlib.Path(__file__).parents[1]
    for folder in ("zoo", "pipelines", "notebooks", "benchmarks"):
        for path in (root / folder).rglob("*"):
            if path.suffix in (".py", ".ipynb", ".md"):
                text = path.read_text(encoding="utf-8")
                assert "DESIGN.md" not in text and "../shared" not in text, path
