"""MkDocs hooks of the site: what the pages need beyond Markdown.

- MathJax (its SVG output: no web fonts) is served from the site itself (the PyPI package
  django-static-mathjax holds it), so the built folder works offline and on any static host.
- Figures committed beside their results (`benchmarks/results/`, `studies/`) are published
  under the same paths, so a page shows them without a copy in docs/.
- `<!-- flags: TASK -->` in a page becomes the table of that task's `lstm-zoo train` flags,
  read from its config dataclass (`<!-- flags: train -->`: the flags every task shares).
- `<!-- model cards -->` becomes a section per shipped preset, read from its card.json.
- Every public module, class and function of `zoo` and `pipelines` must have a docstring: one
  without is a warning, and the strict build fails.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import pathlib
import re

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.plugins.lstm_zoo")
ROOT = pathlib.Path(__file__).parents[2]
PACKAGES = ("zoo", "pipelines")
MATHJAX_FILES = ("tex-svg.js", "input/tex/extensions/*.js", "a11y/*.js", "ui/*.js")
FIGURES = ("benchmarks/results/**/*.png", "studies/*/*.png")
# Markers stand alone on their line (a mention inside a sentence or code stays as it is).
FLAGS = re.compile(r"^<!-- flags: (\w+) -->$", re.M)
CARDS = re.compile(r"^<!-- model cards -->$", re.M)


def on_files(files, config):
    """Add MathJax and the committed figures to the site."""
    import mathjax  # django-static-mathjax

    es5 = pathlib.Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    for pattern in MATHJAX_FILES:
        for path in sorted(es5.glob(pattern)):
            files.append(
                File.generated(
                    config, f"assets/mathjax/{path.relative_to(es5)}", abs_src_path=str(path)
                )
            )
    for pattern in FIGURES:
        for path in sorted(ROOT.glob(pattern)):
            files.append(
                File.generated(config, str(path.relative_to(ROOT)), abs_src_path=str(path))
            )
    return files


def on_page_markdown(markdown, page, config, files):
    """Expand `<!-- flags: TASK -->` into the task's flag table, `<!-- model cards -->` into
    the presets' cards."""
    if CARDS.search(markdown):
        markdown = CARDS.sub(lambda match: model_cards(), markdown)
    return FLAGS.sub(lambda match: flag_table(match.group(1), page.file.src_uri), markdown)


def model_cards() -> str:
    """A section per shipped preset, from its card.json."""
    sections = []
    for path in sorted((ROOT / "zoo" / "presets").glob("*/card.json")):
        card = json.loads(path.read_text(encoding="utf-8"))
        metrics = sorted(set(card["test"]) | set(card.get("test_float32", {})))
        rows = "\n".join(
            f"| {m} | {_shown(card['test'].get(m))} | "
            f"{_shown(card.get('test_float32', {}).get(m))} |"
            for m in metrics
        )
        versions = ", ".join(f"{k} {v}" for k, v in card["versions"].items())
        sections.append(
            f"### `{card['name']}`\n\n{card['description']}. Task `{card['task']}`, cell "
            f"`{card['cell']}`, {card['parameters']:,} parameters; {card['steps']:,} steps "
            f"(best epoch {card['best_epoch']} of {card['epochs']}), {card['cpu_minutes']} "
            f"CPU-minutes ({card['wall_minutes']} minutes of wall time) on 2 cores; headline "
            f"`{card['headline']['metric']}` = **{card['headline']['value']:.3f}** "
            f"({'lower' if card['headline']['lower_is_better'] else 'higher'} is better). "
            f"Data: {card['data']}; evaluated on the {card['split']}.\n\n"
            f"```\n{card['command']}\n```\n\n"
            f"| test metric | float16 weights (shipped) | float32 weights (the run) |\n"
            f"| --- | ---: | ---: |\n{rows}\n\n"
            f"Weights {card['weights']}; made {card['created']} with {versions}.\n"
        )
    return "\n".join(sections)


def _shown(value) -> str:
    """A card's metric as a table cell: numbers to 4 decimals, counts whole, text as code."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if isinstance(value, float) else f"`{value}`"


def flag_table(task: str, page: str) -> str:
    """A folded table of `lstm-zoo train --task=TASK`'s flags: name, default, help ("train":
    those every task shares)."""
    from pipelines import terminal

    with terminal.quiet_native_logs():  # TensorFlow's start-up lines stay off the build log
        from pipelines import train

        try:
            config_class = (
                train.TrainConfig if task == "train" else train.get_task(task).config_class
            )
        except KeyError as error:
            log.warning("%s: <!-- flags: %s -->: %s", page, task, error.args[0])
            return f"<!-- flags: {task} -->"
    rows = ["| flag | default | what it sets |", "| --- | --- | --- |"]
    for field in dataclasses.fields(config_class):
        default = "" if field.default in (None, "") else f"`{field.default}`"
        text = html.escape(field.metadata.get("help", "")).replace("|", "\\|")
        rows.append(f"| `--{field.name}` | {default} | {text} |")
    command = "lstm-zoo train" + ("" if task == "train" else f" --task={task}")
    return f'??? info "The flags of `{command}`, with their defaults"\n\n' + "\n".join(
        f"    {row}" for row in rows
    )


def on_pre_build(config):
    """Warn (an error under --strict) for each public object without a docstring."""
    for path in undocumented(api_filters(config)):
        log.warning(
            "%s has no docstring: every public module, class and function needs one "
            "(it is what the API reference shows)",
            path,
        )


def api_filters(config) -> list[re.Pattern]:
    """The member filters of the API reference (mkdocstrings' python options)."""
    options = config.plugins["mkdocstrings"].config.handlers["python"]["options"]
    return [re.compile(f) for f in options["filters"]]


def shown(name: str, filters: list[re.Pattern]) -> bool:
    """Whether mkdocstrings shows a member called `name` (its filters: "!re" hides)."""
    keep = True
    for pattern in filters:
        text = pattern.pattern
        if text.startswith("!") and re.search(text[1:], name):
            keep = False
        elif not text.startswith("!") and re.search(text, name):
            keep = True
    return keep


def undocumented(filters: list[re.Pattern]) -> list[str]:
    """Paths of the public modules, classes and functions of PACKAGES with no docstring."""
    import griffe

    extensions = griffe.load_extensions("griffe_inherited_docstrings")
    missing = []

    def walk(obj):
        for name, member in obj.members.items():
            if member.is_alias or not shown(name, filters):
                continue
            if member.is_module or member.is_class or member.is_function:
                if not member.docstring or not member.docstring.value.strip():
                    missing.append(member.path)
            if member.is_module or member.is_class:
                walk(member)

    for package in PACKAGES:
        root = griffe.load(package, search_paths=[str(ROOT)], extensions=extensions)
        if not root.docstring:
            missing.append(package)
        walk(root)
    return missing
