"""The trained presets of `zoo.presets` for the command line: made from runs, used as runs.

    python -m pipelines.presets NAME --run_dir=DIR --description="..."   # make one (maintainers)
    python -m pipelines.presets --table                                   # the README's table
    lstm-zoo presets                                                      # list them
    lstm-zoo sample --preset=NAME / evaluate --preset=NAME / export --preset=NAME

`make` turns a finished run directory into a preset folder (float16 weights, model card with
the test metrics measured with those weights); `run_dir` turns a preset back into a run
directory in the cache, so every command that reads a run reads a preset the same way.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from pipelines import rundir
from zoo import presets
from zoo.files import atomic_write, read_json


def run_dir(name: str) -> str:
    """A run directory holding preset `name` (config, best.keras, the run's inputs such as a
    vocabulary, test metrics), built once in the cache (`rundir.default_cache_dir()`/presets)
    and reused."""
    presets.check_files(name)
    folder = presets.directory(name)
    digest = presets.digest(folder / presets.CARD)[:12]  # the card lists every file's sha256
    target = rundir.default_cache_dir() / "presets" / f"{name}-{digest}"
    if (target / rundir.BEST).is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        # The config and the run's inputs (`Task.inputs`: a vocabulary, a feature layout):
        # every file the card lists but the model's own.
        for file in presets.card(name)["files"]:
            if file not in (presets.MODEL, presets.WEIGHTS):
                shutil.copyfile(folder / file, staging / file)
        presets.load_model(name).save(staging / rundir.BEST)
        rundir.write_metrics(staging, test=presets.card(name).get("test", {}))
        os.replace(staging, target)  # another process may have built it first: keep theirs
    except OSError:
        if not (target / rundir.BEST).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def dataset_of(config) -> dict | None:
    """{name, version} of the dataset a run of `config` reads (None for generated data)."""
    from pipelines import datasets
    from pipelines.tasks import get_task

    name = get_task(config.task).dataset(config)
    if name is None:
        return None
    builder = datasets.register_all()[name.split("/")[0]]  # "name/config" names a config
    return {"name": name, "version": str(builder.VERSION)}


def check_dataset(name: str) -> None:
    """Refuse to re-measure preset `name` on another version of the dataset its card's test
    metrics come from (its splits may differ), or on a test split other than the one this
    installation pins for that version (`pipelines.datasets.FINGERPRINTS`: the corpus it is
    generated from, e.g. a Debian package, changed)."""
    from pipelines import datasets

    measured = presets.card(name).get("dataset")
    if not measured:
        return
    builders = datasets.register_all()
    installed = builders.get(measured["name"].split("/")[0])
    version = None if installed is None else str(installed.VERSION)
    if version != measured["version"]:
        raise ValueError(
            f"preset {name} was measured on {measured['name']} "
            f"{measured['version']}, and this installation has "
            f"{version or 'no such dataset'}: its splits may differ, so the card's "
            "test metrics cannot be re-measured here"
        )
    pinned = json.loads(datasets.FINGERPRINTS.read_text()).get(measured["name"], {})
    if pinned.get("version") != version or installed.LOCAL:
        return  # a local corpus, or a dataset this installation does not pin
    rows = datasets.examples(measured["name"], "test")
    found = {"examples": len(rows), "sha256": datasets.split_fingerprint(rows)}
    if found != pinned["splits"]["test"]:
        folder = datasets.builder(measured["name"]).data_dir
        raise ValueError(
            f"{folder}: its test split ({found['examples']} examples, sha256 "
            f"{found['sha256']}) is not the one preset {name} was measured on "
            f"(sha256 {pinned['splits']['test']['sha256']}): it was prepared from "
            "another version of the corpus; with this release's corpus installed, "
            f"remove that folder (rm -r {folder}) to prepare it anew"
        )


def listing() -> str:
    """`lstm-zoo presets`: one line per preset with its test metric."""
    lines = []
    for name in presets.names():
        try:
            card = presets.card(name)
            lines.append(_listed(name, card))
        except (ValueError, KeyError, TypeError) as error:
            reason = str(error.args[0] if isinstance(error, KeyError) else error)
            lines.append(f"  {name:<20} unusable: {reason}")
    if not lines:
        return "No trained presets are installed."
    return "\n".join(["Trained presets (lstm-zoo sample/evaluate/export --preset=NAME):", *lines])


def _listed(name, card) -> str:
    """One line of `listing` (KeyError or TypeError for a card without the fields)."""
    metric = card.get("headline", {})
    score = (
        f"test {metric['metric']} {metric['value']:.3f}" if "value" in metric else "not evaluated"
    )
    return (
        f"  {name:<20} {card['task']:<12} {card['cell']:<10} "
        f"{card['parameters']:>10,} params  {score}  {card.get('description', '')}"
    )


def table() -> str:
    """The README's table of the shipped presets (`python -m pipelines.presets --table`)."""
    lines = [
        "| preset | task | cell | parameters | test (float16 weights) | steps | "
        "CPU-minutes | trained with |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for name in presets.names():
        card = presets.card(name)
        metric = card["headline"]
        lines.append(
            f"| `{name}` | {card['task']} | `{card['cell']}` | "
            f"{card['parameters']:,} | {metric['metric']} {metric['value']:.3f} | "
            f"{card['steps']:,} | {card['cpu_minutes']:.0f} | `{card['command']}` |"
        )
    return "\n".join(lines)


def _versions() -> dict:
    import keras
    import numpy
    import tensorflow

    import zoo

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "lstm_zoo": zoo.__version__,
    }


def card_for(name: str, source: str, model, config, description: str) -> dict:
    """The model card of a preset made from run directory `source` (test metrics added by
    `make` once measured with the stored float16 weights)."""
    from pipelines.tasks import get_task

    metrics = rundir.read_metrics(source)
    saved = read_json(os.path.join(source, rundir.CONFIG), expect=dict)
    invocations = saved.get("invocations", [])
    history = metrics.get("history", [])
    metric, lower = get_task(config.task).headline(config)
    return {
        "name": name,
        "description": description,
        "task": config.task,
        "cell": getattr(config, "cell", None),
        "parameters": int(model.count_params()),
        "data": getattr(config, "data", None) or "the task's default corpus",
        "split": "held-out test split of the run (see the task's documentation)",
        "command": invocations[0]["command"] if invocations else None,
        "resumed_with": [i["command"] for i in invocations[1:]],
        "epochs": len(history),
        "best_epoch": (metrics.get("best") or {}).get("epoch"),
        "steps": len(history) * (config.steps or 0) or None,
        "cpu_minutes": round(metrics.get("cpu_seconds", 0) / 60, 1),
        "wall_minutes": round(metrics.get("seconds", 0) / 60, 1),
        "test_float32": metrics.get("test", {}),
        "headline": {"metric": metric, "lower_is_better": lower},
        "dataset": dataset_of(config),
        "weights": "float16",
        "versions": _versions(),
        "created": datetime.date.today().isoformat(),
    }


def make(name: str, source: str, description: str = "") -> dict:
    """Make preset `name` from the run directory `source`; returns its model card."""
    from pipelines import train

    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"{name!r}: a preset name is lower_snake_case")
    config = train.load_config(source)
    model = rundir.load_checkpoint(source)
    folder = presets.ROOT / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=presets.ROOT))
    staging.chmod(0o755)  # installed with the package: readable by everyone
    try:
        presets.save_model(model, staging)
        shutil.copyfile(os.path.join(source, rundir.CONFIG), staging / presets.CONFIG)
        for file in train.get_task(config.task).inputs(config):  # a vocabulary, a layout...
            shutil.copyfile(os.path.join(source, file), staging / file)
        card = card_for(name, source, model, config, description)
        card["files"] = {p.name: presets.digest(p) for p in sorted(staging.iterdir())}
        atomic_write(staging / presets.CARD, json.dumps(card, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    card["test"] = train.evaluate(run_dir(name))  # with the float16 weights, as shipped
    metric = card["headline"]["metric"]
    card["headline"]["value"] = card["test"].get(metric)
    atomic_write(folder / presets.CARD, json.dumps(card, indent=2))
    shutil.rmtree(run_dir(name), ignore_errors=True)  # rebuilt with the final card on use
    return card


def main(argv=None):
    """`python -m pipelines.presets`: make a preset from a run, or print the presets table."""
    from absl import flags

    values = flags.FlagValues()
    flags.DEFINE_string(
        "run_dir", None, "The finished run to make the preset from.", flag_values=values
    )
    flags.DEFINE_string(
        "description", "", "One line shown by `lstm-zoo presets`.", flag_values=values
    )
    flags.DEFINE_boolean(
        "table", False, "Print the README's table of the presets.", flag_values=values
    )
    rest = values(list(sys.argv if argv is None else argv))
    if values.table:
        print(table())
        return
    if len(rest) != 2 or not values.run_dir:
        sys.exit("usage: python -m pipelines.presets NAME --run_dir=DIR [--description=...]")
    print(json.dumps(make(rest[1], values.run_dir, values.description), indent=2))


if __name__ == "__main__":
    main()
