"""`lstm-zoo list | train | sample | evaluate | export | bench-tflite | bench`: a thin command
line over pipelines.train, pipelines.export and benchmarks.run.

    lstm-zoo list
    lstm-zoo train [--task=text] [--cell=lstm] [--data=PATH] [--run_dir=DIR] [--epochs=5] ...
    lstm-zoo sample --run_dir=DIR [--prompt=TEXT --length=500 --temperature=0.8 --top_k --top_p
                    --seed]
    lstm-zoo evaluate --run_dir=DIR [--data=PATH]
    lstm-zoo export --run_dir=DIR [--format=saved_model,tflite --quantize=none,dynamic,float16,int8
                    --seq_len --out_dir]
    lstm-zoo bench-tflite --model=FILE [--num_threads=2]
    lstm-zoo bench [--cells=lstm,gru --sizes=256,512 --quick ...]   (see `lstm-zoo bench --help`)

The training flags are the fields of the tasks' config dataclasses (pipelines/configs.py).
"""

from __future__ import annotations

import dataclasses
import json
import sys

from absl import app, flags, logging

import zoo
from pipelines import moving_shapes, music, speech, text, translation  # noqa: F401 - tasks
from pipelines import train as training
from pipelines.configs import TrainConfig
from pipelines.export import bench_tflite, export_run
from zoo.export import ParityError
from zoo.models import language_model

FLAGS = flags.FLAGS
COMMANDS = ("list", "train", "sample", "evaluate", "export", "bench-tflite")
SAMPLE_FLAGS = {
    "prompt": (flags.DEFINE_string, "Text the sample starts with (default a new line)."),
    "length": (flags.DEFINE_integer, "Tokens to generate (default 500)."),
    "temperature": (flags.DEFINE_float, "Sampling temperature; 0 = greedy (default 1.0)."),
    "top_k": (flags.DEFINE_integer, "Sample among the k most likely tokens only."),
    "top_p": (flags.DEFINE_float, "Sample among the most likely tokens holding probability p."),
    "beam_size": (flags.DEFINE_integer, "Beam search with this many beams (melody, translation)."),
    "output": (flags.DEFINE_string, "Output path stem (music: writes .mid and .png)."),
    "text": (flags.DEFINE_string, "Sentence to translate (translation)."),
    "length_penalty": (flags.DEFINE_float, "Beam-search length penalty alpha (translation)."),
}
EXPORT_FLAGS = {
    "format": (flags.DEFINE_list, "Export formats: saved_model, tflite (default both)."),
    "quantize": (flags.DEFINE_list, "TFLite files: none, dynamic, float16, int8 (default none)."),
    "out_dir": (flags.DEFINE_string, "Export directory (default <run_dir>/export)."),
    "model": (flags.DEFINE_string, "A .tflite file to benchmark."),
    "num_threads": (flags.DEFINE_integer, "LiteRT interpreter threads (default 2)."),
}
_EXTRA_HELP = {
    "task": lambda: f" One of: {', '.join(sorted(training.TASKS))}.",
    "cell": lambda: f" One of: {', '.join(zoo.cells.names())}.",
    "preset": lambda: f" One of: {', '.join(language_model.PRESETS)}.",
}


def _config_fields():
    """Every config field of every registered task, first definition wins."""
    fields = {}
    for task in [TrainConfig, *(t.config_class for t in training.TASKS.values())]:
        for field in dataclasses.fields(task):
            fields.setdefault(field.name, field)
    return fields


def _define_flags():
    for name, field in _config_fields().items():
        kind = str(field.type)
        define = (flags.DEFINE_boolean if "bool" in kind else flags.DEFINE_integer
                  if "int" in kind else flags.DEFINE_float if "float" in kind
                  else flags.DEFINE_string)
        extra = _EXTRA_HELP.get(name, lambda: "")()
        default = "" if field.default is None else f" (default: {field.default})"
        define(name, None, f"{field.metadata.get('help', '')}{extra}{default}")
    for name, (define, help_text) in {**SAMPLE_FLAGS, **EXPORT_FLAGS}.items():
        if name not in FLAGS:  # a task may also have it as a config field
            define(name, None, help_text)


_define_flags()


def _given(names, command):
    """Values of the flags given on the command line; an error for those `command` ignores."""
    given = {name for name in _config_fields().keys() | SAMPLE_FLAGS.keys() | EXPORT_FLAGS.keys()
             if FLAGS[name].present}
    unused = sorted(given - set(names))
    if unused:
        raise app.UsageError(f"`lstm-zoo {command}` does not take --{', --'.join(unused)}")
    return {name: FLAGS[name].value for name in given}


def _require_run_dir(values, command):
    if "run_dir" not in values:
        raise app.UsageError(f"`lstm-zoo {command}` needs --run_dir=DIR (a directory written by "
                             "`lstm-zoo train`)")
    return values.pop("run_dir")


def list_all():
    lines = ["Cells:"]
    lines += [f"  {name:<18} {zoo.cells.get(name).paper}" for name in zoo.cells.names()]
    lines += ["Tasks:"] + [f"  {name:<18} {type(task).__doc__.splitlines()[0]}"
                           for name, task in sorted(training.TASKS.items())]
    lines += ["Language model presets:"]
    lines += [f"  {name:<18} {', '.join(f'{k}={v}' for k, v in preset.items())}"
              for name, preset in language_model.PRESETS.items()]
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"Usage: lstm-zoo {{{'|'.join(COMMANDS)}}} [--flags]; "
                             f"received {' '.join(argv[1:]) or 'no command'}. See --help.")
    command = argv[1]
    if not FLAGS["verbosity"].present:  # the TFLite converter logs at INFO through absl
        logging.set_verbosity(logging.WARNING)
    if command == "list":
        _given((), command)
        print(list_all())
    elif command == "train":
        config_class = training.get_task(FLAGS.task or TrainConfig.task).config_class
        values = _given([f.name for f in dataclasses.fields(config_class)], command)
        _, metrics = training.train(config_class(**values))
        print(json.dumps({"best": metrics["best"], "test": metrics["test"]}, indent=2))
    elif command == "sample":
        values = _given(["run_dir", "task", "seed", *SAMPLE_FLAGS], command)
        run_dir = _require_run_dir(values, command)
        task = values.pop("task", None)
        if task is not None and task != training.load_config(run_dir).task:
            raise app.UsageError(f"--task={task} but {run_dir} holds a "
                                 f"{training.load_config(run_dir).task} run")
        print(training.sample(run_dir, **values))
    elif command == "export":
        values = _given(["run_dir", "format", "quantize", "out_dir", "seq_len"], command)
        manifest = export_run(_require_run_dir(values, command), **values)
        print(json.dumps({name: {k: v for k, v in info.items() if k != "ops"}
                          for name, info in manifest["files"].items()}, indent=2))
    elif command == "bench-tflite":
        values = _given(["model", "num_threads"], command)
        if "model" not in values:
            raise app.UsageError("`lstm-zoo bench-tflite` needs --model=FILE (a .tflite file)")
        print(json.dumps(bench_tflite(values.pop("model"), **values), indent=2))
    else:
        values = _given(["run_dir", "data"], command)
        run_dir = _require_run_dir(values, command)
        print(json.dumps(training.evaluate(run_dir, **values), indent=2))


def run():
    """Entry point of the `lstm-zoo` console script."""
    if sys.argv[1:2] == ["bench"]:  # the benchmark suite parses its own flags
        from benchmarks import run as benchmarks

        return benchmarks.main(sys.argv[2:], prog="lstm-zoo bench")
    try:
        app.run(main)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, FloatingPointError,
            ParityError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        sys.exit(f"lstm-zoo: error: {message}")


if __name__ == "__main__":
    run()
