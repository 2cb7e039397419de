"""The documentation tells the truth: the site builds strictly, its tables are the registry's,
its Python runs and its command lines use real flags (README.md and docs/ alike)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from zoo import cells

ROOT = pathlib.Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TEXT = {page: page.read_text(encoding="utf-8") for page in PAGES}
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "NO_MKDOCS_2_WARNING": "1",
    "DISABLE_MKDOCS_2_WARNING": "true",
    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
}


def name(page: pathlib.Path) -> str:
    return str(page.relative_to(ROOT))


def test_site_builds_with_warnings_as_errors(tmp_path):
    """`make docs`'s build: a broken link or anchor, a page missing from the navigation, a
    public object without a docstring or a stale Args entry fails it."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    lstm = (site / "reference" / "zoo" / "cells" / "lstm" / "index.html").read_text()
    assert 'class="arithmatex"' in lstm and r"\begin{aligned}" in lstm  # equations as TeX
    assert (site / "assets" / "mathjax" / "tex-svg.js").is_file()  # served by the site itself
    assert (site / "search" / "search_index.json").is_file()
    text = (site / "tasks" / "text" / "index.html").read_text()
    assert "--random_crops" in text and "<!-- flags" not in text  # the generated flag table
    presets = (site / "guides" / "presets" / "index.html").read_text()
    assert all(
        f"<code>{p.parent.name}</code>" in presets
        for p in (ROOT / "zoo" / "presets").glob("*/card.json")
    )


def tables(marker: str):
    """(page, table) for every `<!-- marker:start -->` table of the pages."""
    pattern = re.compile(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", re.S)
    return [
        (page, match.group(1).strip()) for page in PAGES for match in pattern.finditer(TEXT[page])
    ]


def test_cell_tables_are_the_registry():
    found = tables("cells")
    assert {name(page) for page, _ in found} >= {"README.md", "docs/guides/cells.md"}
    for page, table in found:
        assert table == cells.table(), (
            f"{name(page)}: cell table is stale: paste `python -m zoo.cells`"
        )


def test_preset_tables_are_the_model_cards():
    from pipelines import presets

    found = tables("presets")
    assert {name(page) for page, _ in found} >= {"README.md", "docs/guides/presets.md"}
    for page, table in found:
        assert table == presets.table().strip(), (
            f"{name(page)}: preset table is stale: paste `python -m pipelines.presets --table`"
        )


def code_blocks(language: str):
    """(page, heading, code) of every fenced block in `language` ('' for none), in order."""
    blocks = []
    for page in PAGES:
        heading, info, code = "", None, []
        for line in TEXT[page].splitlines(keepends=True):
            if info is None and line.startswith("#"):
                heading = line.lstrip("# ").strip()
            elif info is None and line.startswith("```"):
                info, code = line[3:].strip(), []
            elif info is not None and line.startswith("```"):
                if info == language:
                    blocks.append((page, heading, "".join(code)))
                info = None
            elif info is not None:
                code.append(line)
    return blocks


def python_blocks():
    """{code: "page: heading" of its first appearance} (a block shown twice runs once)."""
    unique = {}
    for page, heading, code in code_blocks("python"):
        unique.setdefault(code, f"{name(page)}: {heading}")
    return unique


@pytest.mark.parametrize("code", list(python_blocks()), ids=list(python_blocks().values()))
def test_python_blocks_run_as_written(code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"block failed:\n{code}\n--- stderr ---\n" + (result.stderr[-4000:])
    )


def command_lines():
    """(page, `lstm-zoo ...` line) of every command shown in a code block or a code span."""
    lines = []
    for page, _, block in code_blocks(""):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith("lstm-zoo "):
                lines.append((page, line.split("#")[0].strip()))
    for page in PAGES:
        for span in re.findall(r"`(lstm-zoo [^`]+)`", TEXT[page]):
            lines.append((page, " ".join(span.split())))
    return lines


def test_command_lines_use_real_commands_and_flags():
    from pipelines import cli

    checked = 0
    for page, line in command_lines():
        words = line.split()
        command = words[1] if len(words) > 1 and not words[1].startswith("-") else None
        if command in (None, "bench") or command == "COMMAND":  # bench parses its own flags
            continue
        assert command in cli.COMMANDS, f"{name(page)}: `{line}`: no command {command!r}"
        flags = [w[2:].split("=")[0] for w in words[2:] if w.startswith("--")]
        task = next((w.split("=", 1)[1] for w in words if w.startswith("--task=")), "text")
        known = set(cli._specs(command, [] if task == "TASK" else [f"--task={task}"]))
        unknown = sorted(set(flags) - known - {"help"})
        assert not unknown, f"{name(page)}: `{line}`: no such flags {unknown}"
        checked += 1
    assert checked > 50, checked


def test_the_troubleshooting_table_is_the_readmes():
    def table(text):
        start = text.index("| what | what you see | what is kept |")
        return text[start : text.index("\n\n", start)]

    assert table(TEXT[ROOT / "docs/guides/troubleshooting.md"]) == table(TEXT[ROOT / "README.md"])
