"""README.md tells the truth: the two set-up commands and the current cell table."""

import pathlib
import re

from zoo import cells

README = (pathlib.Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_cell_table_is_current():
    table = re.search(r"<!-- cells:start -->\n(.*?)\n<!-- cells:end -->", README, re.S).group(1)
    assert table == cells.table(), "README cell table is stale: paste `python -m zoo.cells`"


def test_names_the_two_setup_commands():
    block = re.search(r"## Set up and run.*?```\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
