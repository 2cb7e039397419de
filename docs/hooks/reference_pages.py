"""The API reference: one page per module and package of `zoo` and `pipelines`, generated.

Run by the mkdocs-gen-files plugin at every build: `zoo/cells/lstm.py` becomes the page
`reference/zoo/cells/lstm.md` holding `::: zoo.cells.lstm`, a package's `__init__.py` its
section's index page; names starting with `_` stay private. `reference/SUMMARY.md` is the
section's navigation (mkdocs-literate-nav), so a new module appears with no edit here.
"""

from __future__ import annotations

import pathlib

import mkdocs_gen_files

ROOT = pathlib.Path(__file__).parents[2]
PACKAGES = ("zoo", "pipelines")


def modules(package: str) -> list[tuple[str, ...]]:
    """The dotted parts of every public module and package under `package`, sorted."""
    parts = []
    for path in sorted((ROOT / package).rglob("*.py")):
        names = path.relative_to(ROOT).with_suffix("").parts
        if names[-1] == "__init__":
            names = names[:-1]
        if not any(name.startswith("_") for name in names):
            parts.append(names)
    return parts


def write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(f"reference/{path}", "w") as f:
        f.write(text)


nav = mkdocs_gen_files.Nav()
write(
    "index.md",
    "# API reference\n\nGenerated from the docstrings, a page per module. Two "
    "packages: " + ", ".join(f"[`{p}`]({p}/index.md)" for p in PACKAGES) + ".\n\n"
    "`zoo` holds the models (cells, layers, task models, decoding, presets, export) and "
    "depends on Keras alone; `pipelines` holds the data, the training loop and the "
    "`lstm-zoo` command line, and depends on `zoo`.\n",
)
nav["Overview"] = "index.md"
for package in PACKAGES:
    for parts in modules(package):
        name = ".".join(parts)
        is_package = (ROOT.joinpath(*parts) / "__init__.py").is_file()
        page = "/".join(parts) + ("/index.md" if is_package else ".md")
        write(
            page,
            f"# `{name}`\n\n::: {name}\n    options:\n      show_root_heading: false\n"
            "      show_submodules: false\n",
        )
        nav[parts] = page
write("SUMMARY.md", "".join(nav.build_literate_nav()))
