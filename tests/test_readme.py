"""README.md is the product page: short, the two set-up commands, a runnable tour, working
links into the documentation. (Its tables, Python blocks and command lines are checked with
the rest of the documentation in tests/test_docs.py.)"""

import pathlib
import re

ROOT = pathlib.Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_names_the_two_setup_commands():
    block = re.search(r"## Set up and run.*?```\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]


def test_is_a_product_page_not_a_lab_notebook():
    lines = README.count("\n")
    assert lines <= 250, f"README.md has {lines} lines: results belong on a docs/ page"
    headings = re.findall(r"^## (.*)$", README, re.M)
    for section in (
        "Set up and run",
        "A quick tour",
        "Trained presets",
        "Cells",
        "When things go wrong",
        "Documentation",
    ):
        assert any(h.startswith(section) for h in headings), (section, headings)


def test_tour_shows_a_cell_a_preset_training_and_export_in_code():
    tour = README.split("## A quick tour", 1)[1].split("\n## ", 1)[0]
    assert tour.count("```python") == 2  # a cell in a Keras model; a preset
    for command in ("lstm-zoo train", "lstm-zoo sample", "lstm-zoo export"):
        assert command in tour, command
    for task in ("chorales", "melody", "translation", "speech", "moving_shapes"):
        assert f"--task={task}" in tour, task


def test_relative_links_point_to_files_that_exist():
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"
