"""README.md tells the truth: the set-up commands, the cell table, and its Python blocks run."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from zoo import cells

ROOT = pathlib.Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_cell_table_is_current():
    table = re.search(r"<!-- cells:start -->\n(.*?)\n<!-- cells:end -->", README, re.S).group(1)
    assert table == cells.table(), "README cell table is stale: paste `python -m zoo.cells`"


def test_preset_table_is_current():
    from pipelines import presets

    table = re.search(r"<!-- presets:start -->\n(.*?)<!-- presets:end -->", README, re.S).group(1)
    assert table.strip() == presets.table().strip(), (
        "README preset table is stale: paste `python -m pipelines.presets --table`")


def test_names_the_two_setup_commands():
    block = re.search(r"## Set up and run.*?```\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def python_blocks():
    """(section heading, code) of every ```python block, in order."""
    blocks, heading = [], ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", README, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            blocks.append((heading, match.group(2)))
    return blocks


@pytest.mark.parametrize("code", [code for _, code in python_blocks()],
                         ids=[heading for heading, _ in python_blocks()])
def test_python_blocks_run_as_written(code, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n" + (
        result.stderr[-4000:])


def test_python_blocks_are_found():
    headings = [heading for heading, _ in python_blocks()]
    assert {"Use", "Export to mobile"} <= set(headings), headings
