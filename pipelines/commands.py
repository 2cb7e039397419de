"""What each `lstm-zoo` command does, given its parsed flags (`pipelines.cli` parses them).

Each command calls the library functions the notebooks call; results go to stdout (JSON where
a program may read them), progress and summaries to stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys

from pipelines import terminal


class UsageError(ValueError):
    """A command line that cannot run as written."""


def _needs(values, name, command, what):
    if not values.get(name):
        raise UsageError(f"`lstm-zoo {command}` needs --{name}={what}")
    return values.pop(name)


def list_all() -> str:
    """The text of `lstm-zoo list`: the cells with their papers, the tasks, the model sizes."""
    import zoo
    from pipelines import train as training
    from zoo.models import language_model

    lines = ["Cells:"] + [f"  {name:<18} {zoo.cells.get(name).paper}" for name in zoo.cells.names()]
    lines += ["Tasks:"]
    for name in training.task_modules():
        try:
            lines.append(f"  {name:<18} {type(training.get_task(name)).__doc__.splitlines()[0]}")
        except ImportError as error:
            lines.append(f"  {name:<18} (not installed: {error})")
    lines += [f"Trained presets: {', '.join(zoo.presets.names()) or 'none'} (lstm-zoo presets)"]
    lines += ["Language model sizes (--size):"]
    lines += [
        f"  {name:<18} {', '.join(f'{k}={v}' for k, v in size.items())}"
        for name, size in language_model.SIZES.items()
    ]
    return "\n".join(lines)


def _train(values):
    from pipelines import train as training

    task = training.get_task(values.get("task", "text"))
    if values.get("resume"):
        run_dir = _needs(dict(values), "run_dir", "train --resume", "DIR (the run to continue)")
        saved = training.load_config(run_dir)
        if values.get("task", saved.task) != saved.task:
            raise UsageError(f"--task={values['task']} but {run_dir} holds a {saved.task} run")
        config = dataclasses.replace(saved, **values)
    else:
        config = task.config_class(**values)
    command = " ".join(["lstm-zoo", *sys.argv[1:]])
    with contextlib.redirect_stdout(sys.stderr):  # Keras's progress bar; stdout is the JSON
        _, metrics = training.train(config, command=command)
    print(terminal.training_summary(config, metrics), file=sys.stderr, flush=True)
    print(
        json.dumps(
            {k: metrics[k] for k in ("run_dir", "parameters", "seconds", "best", "test")}, indent=2
        )
    )


def _study(values):
    from pipelines import study as studies
    from pipelines.study_report import markdown

    study_dir = _needs(values, "study_dir", "study", "DIR (where the study's runs go)")
    if os.path.exists(study_dir) and not os.path.isdir(study_dir):
        raise UsageError(f"--study_dir={study_dir}: a file, not a folder")
    workers = values.pop("workers", 1)
    storage, heartbeat = values.pop("storage", None), values.pop("heartbeat", None)
    own = {k: values.pop(k) for k in ("task", "cells", "trials", "baseline", "seed") if k in values}
    saved = studies.saved_study(study_dir, storage)
    if saved is None and not {"cells", "trials"} <= set(own):
        raise UsageError("a new study needs --cells=A,B,... and --trials=N")
    study = None
    if own or values or saved is None:
        study = studies.Study(
            task=own.get("task", saved.task if saved else "text"),
            cells=own.get("cells", saved.cells if saved else []),
            trials=own.get("trials", saved.trials if saved else 1),
            fixed=values if values or saved is None else saved.fixed,
            seed=own.get("seed", saved.seed if saved else 0),
            baseline=own.get("baseline"),
        )
    results = studies.run_study(
        study_dir, study, workers=workers, storage=storage, heartbeat=heartbeat
    )
    print(markdown(results), file=sys.stderr)
    print(
        json.dumps(
            {
                cell: {k: v for k, v in summary.items() if k != "records"}
                for cell, summary in results["cells"].items()
            },
            indent=2,
        )
    )


def _sample(values):
    from pipelines import train as training

    run_dir = _needs(values, "run_dir", "sample", "DIR (a run directory) or --preset=NAME")
    print(training.sample(run_dir, **values))


def _translate(values):
    from pipelines.translate import translate_lines
    from zoo.files import atomic_path, same_file

    run_dir = _needs(
        values, "run_dir", "translate", "DIR (a translation run) or --preset=NAME (e.g. en_es_gru)"
    )
    source, target = values.pop("input", None), values.pop("output", None)
    if source and target and same_file(source, target):
        raise UsageError(
            f"--output={target} is the --input file; write the translations to another file"
        )
    # The run is loaded before the input is opened (a FIFO would wait for its writer) and the
    # output is written beside its target, replacing it only once every line is translated.
    translations = translate_lines(
        run_dir, _file_lines(source) if source else sys.stdin, name=source or "<stdin>", **values
    )
    if target is None:
        for line in translations:
            print(line, flush=True)
        return
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for line in translations:
            print(line, file=out)


def _file_lines(path):
    """The lines of the text file `path`, opened when the first one is read."""
    with open(path, encoding="utf-8") as lines:
        yield from lines


def _preset_run(command, values):
    """Replace --preset=NAME by the run directory that holds it (--run_dir and --preset are
    alternatives); an exported preset goes to ./NAME-export unless --out_dir says otherwise."""
    name = values.pop("preset", None)
    if name is None:
        return
    if values.get("run_dir"):
        raise UsageError("give --run_dir or --preset, not both")
    from pipelines import presets

    if command == "evaluate":
        presets.check_dataset(name)
    values["run_dir"] = presets.run_dir(name)
    if command == "export":
        values.setdefault("out_dir", f"{name}-export")


def _evaluate(values):
    from pipelines import train as training

    run_dir = _needs(values, "run_dir", "evaluate", "DIR (a run directory) or --preset=NAME")
    print(json.dumps(training.evaluate(run_dir, **values), indent=2))


def _export(values):
    from pipelines.export import export_run

    run_dir = _needs(values, "run_dir", "export", "DIR (a run directory) or --preset=NAME")
    manifest = export_run(run_dir, **values)
    print(
        json.dumps(
            {
                name: {k: v for k, v in info.items() if k != "ops"}
                for name, info in manifest["files"].items()
            },
            indent=2,
        )
    )


def _bench_tflite(values):
    from pipelines.export import bench_tflite

    model = _needs(values, "model", "bench-tflite", "FILE (a .tflite file)")
    print(json.dumps(bench_tflite(model, **values), indent=2))


def _presets(values):
    from pipelines.presets import listing

    print(listing())


RUNNERS = {
    "list": lambda values: print(list_all()),
    "presets": _presets,
    "train": _train,
    "sample": _sample,
    "evaluate": _evaluate,
    "export": _export,
    "translate": _translate,
    "study": _study,
    "bench-tflite": _bench_tflite,
}


def run_command(command, values):
    """Run `lstm-zoo COMMAND` with its parsed flags `values`."""
    _preset_run(command, values)
    RUNNERS[command](values)
