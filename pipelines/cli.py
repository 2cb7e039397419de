"""`lstm-zoo COMMAND [--flags]`: a thin command line over pipelines.train, .export, .translation.

    lstm-zoo --help                          the commands
    lstm-zoo COMMAND --help                  that command's flags
    lstm-zoo train --task=TASK --help        that task's training flags, with its defaults

Each command defines only its own flags (absl), checks them before anything runs, and reports
a user's or the environment's error as one line (`--debug` shows the traceback).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import re
import sys

from absl import flags

from pipelines import terminal, threads
from pipelines.commands import UsageError, run_command

COMMANDS = {
    "list": "The cells, tasks and model sizes.",
    "presets": "The trained presets that ship with the zoo, with their test metrics.",
    "train": "Train a task with a cell; writes a run directory (--resume continues one).",
    "sample": "Generate from a run's best checkpoint (text, music, a translation, ...).",
    "evaluate": "Test metrics of a run's best checkpoint, as JSON.",
    "export": "SavedModel and TFLite files of a run, checked in LiteRT.",
    "translate": "Translate lines of a file or stdin with a translation run or preset.",
    "study": "Compare cells over random hyper-parameter draws (Greff et al.); resumable.",
    "bench-tflite": "Per-step latency of a .tflite file in LiteRT.",
    "bench": "The speed benchmark suite (lstm-zoo bench --help lists its flags).",
}
# Flags of the commands other than train: name -> (type, help[, (lowest, highest) of a number,
# None for no bound]); train's flags are its task's config fields, which declare their own.
OPTIONS = {
    "run_dir": (str, "A run directory written by `lstm-zoo train`."),
    "preset": (str, "A trained preset (see `lstm-zoo presets`) instead of --run_dir."),
    "data": (str, "Evaluate on all of this corpus instead of the run's test split."),
    "seed": (int, "Seed of the sampling."),
    "prompt": (str, "Text, or a MIDI file (music), that the sample starts with."),
    "melody": (
        str,
        "A melody to harmonise: a MIDI file or a Bach chorale of the corpus "
        "(bach/bwv269); its highest line is the soprano, kept exactly.",
    ),
    "rules": (
        bool,
        "Harmonise under the voice-leading rules: voice ranges kept, no crossings, no "
        "parallel fifths or octaves (pipelines.music.voice_leading).",
    ),
    "length": (int, "Tokens or steps to generate.", (1, 100_000)),
    "temperature": (float, "Sampling temperature; 0 = greedy.", (0.0, 100.0)),
    "top_k": (int, "Sample among the k most likely tokens only.", (1, None)),
    "top_p": (float, "Sample among the most likely tokens holding probability p.", (1e-6, 1.0)),
    "beam_size": (int, "Beam search with this many beams.", (1, 1024)),
    "length_penalty": (float, "Beam-search length penalty alpha.", (0.0, 10.0)),
    "output": (str, "Output path (sample: a path stem; translate: a file, default stdout)."),
    "text": (str, "Sentence to translate."),
    "count": (int, "Utterances to transcribe.", (1, 10_000)),
    "format": (list, "Export formats: saved_model, tflite (default both)."),
    "quantize": (list, "TFLite files: none, dynamic, float16, int8 (default none)."),
    "out_dir": (str, "Export directory (default <run_dir>/export)."),
    "seq_len": (
        int,
        "Steps of the fixed-length `predict` signature (default the run's).",
        (1, 1 << 20),
    ),
    "max_quality_loss": (
        float,
        "Bits per token (nats per step for music and frames, bits "
        "per target token for a translator, bits per frame of KL "
        "divergence from Keras for speech) a quantised file may lose "
        "(default 0.05; a classifier: accuracy points, default 1).",
        (0.0, None),
    ),
    "allow_quality_loss": (bool, "Write quantised files that lose more than that anyway."),
    "input": (str, "File of sentences, one per line (default stdin)."),
    "batch_size": (int, "Sentences translated together.", (1, 1 << 20)),
    "model": (str, "A .tflite file to benchmark."),
    "num_threads": (int, "LiteRT interpreter threads (default 2).", (1, 256)),
    "study_dir": (str, "Study directory: study.json, a run per cell and trial, the results."),
    "cells": (list, "Cells to compare (registered names, comma-separated)."),
    "trials": (int, "Hyper-parameter draws; every cell trains once with each."),
    "baseline": (str, "Cell the others are tested against (default vanilla_lstm or the first)."),
    "workers": (
        int,
        "Worker processes on this machine, each training one trial at a time (default 1).",
        (1, 64),
    ),
    "storage": (
        str,
        "Where the trials are coordinated and recorded: a journal file (default "
        "DIR/trials.journal) or a database URL (postgresql://user@host/db); "
        "workers on any machine given the same one share the study.",
    ),
    "heartbeat": (
        int,
        "Seconds between a running trial's heartbeats; a trial silent for 4 "
        "is retried by another worker (default 30).",
        (1, 3600),
    ),
}
STUDY_OPTIONS = ("study_dir", "cells", "trials", "baseline", "workers", "storage", "heartbeat")
COMMAND_OPTIONS = {
    "list": (),
    "presets": (),
    "evaluate": ("run_dir", "preset", "data"),
    "export": (
        "run_dir",
        "preset",
        "format",
        "quantize",
        "out_dir",
        "seq_len",
        "max_quality_loss",
        "allow_quality_loss",
    ),
    "translate": (
        "run_dir",
        "preset",
        "input",
        "output",
        "batch_size",
        "beam_size",
        "length_penalty",
    ),
    "bench-tflite": ("model", "num_threads"),
}
COMMON = {
    "debug": (bool, "Show the Python traceback of an error."),
    "verbosity": (int, "1 or more: also TensorFlow's start-up and INFO lines."),
}
_DEFINE = {
    bool: flags.DEFINE_boolean,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
    list: flags.DEFINE_list,
}


def _flag_value(argv, name):
    """The value of --name=V or --name V in argv, before parsing (None if absent)."""
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def _field_type(field):
    kind = str(field.type)
    return bool if "bool" in kind else int if "int" in kind else float if "float" in kind else str


def _train_task(argv, command="train"):
    """The task whose flags `train` or `study` takes: --task, the resumed run's or study's, or
    text."""
    from pipelines import train as training

    task = _flag_value(argv, "task")
    run_dir = _flag_value(argv, "run_dir")
    resume = any(a == "--resume" or a.lower() in ("--resume=true", "--resume=1") for a in argv)
    if task is None and run_dir and resume and command == "train":
        task = training.load_config(run_dir).task
    study_dir = _flag_value(argv, "study_dir")
    if task is None and command == "study" and study_dir:
        from pipelines.study import saved_study

        saved = saved_study(study_dir, _flag_value(argv, "storage"))
        task = saved.task if saved else None
    return training.get_task(task or "text")


def _sample_options(task):
    names = [
        p.name
        for p in inspect.signature(task.sample).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in ("config", "run_dir", "model")
    ]
    return ["run_dir", "preset", *names]


def _specs(command, argv):
    """{flag: (type, help, default)} of `command` given its arguments (task-specific ones)."""
    if command in ("train", "study"):
        task = _train_task(argv, command)
        specs = {
            f.name: (_field_type(f), f.metadata.get("help", ""), f.default)
            for f in dataclasses.fields(task.config_class)
            if command == "train" or f.name not in ("cell", "run_dir", "resume")
        }
        if command == "study":
            specs.update({n: (*OPTIONS[n][:2], None) for n in STUDY_OPTIONS})
    elif command == "sample":
        from pipelines import train as training

        run_dir, preset = _flag_value(argv, "run_dir"), _flag_value(argv, "preset")
        if run_dir or preset:
            import zoo.presets

            task = (
                zoo.presets.card(preset)["task"] if preset else training.load_config(run_dir).task
            )
            names = _sample_options(training.get_task(task))
        else:  # every task's options
            names = {}
            for name in training.task_modules():
                with contextlib.suppress(ImportError):
                    names.update(dict.fromkeys(_sample_options(training.get_task(name))))
        specs = {n: (*OPTIONS[n][:2], None) for n in names}
    else:
        specs = {n: (*OPTIONS[n][:2], None) for n in COMMAND_OPTIONS[command]}
    return {**specs, **{n: (*spec, None) for n, spec in COMMON.items()}}


def _help(command, argv) -> str:
    if command is None:
        width = max(map(len, COMMANDS))
        return "\n".join(
            ["Usage: lstm-zoo COMMAND [--flags]   (lstm-zoo COMMAND --help)", "", "Commands:"]
            + [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
        )
    specs = _specs(command, argv)
    lines = [f"Usage: lstm-zoo {command} [--flags]", "", COMMANDS[command], ""]
    if command == "study":
        from pipelines.study import SPACE

        lines += [
            "Each trial draws " + ", ".join(d.name for d in SPACE) + " (those the task "
            "has and the command does not fix) from pipelines.study.SPACE.",
            "",
        ]
    if command in ("train", "study"):
        task = _train_task(argv, command)
        lines += [
            f"Flags of the {task.name} task (another task: lstm-zoo {command} "
            "--task=TASK --help)"
            + (", fixed for every trial; the study's own flags last" if command == "study" else "")
            + ":"
        ]
    elif command == "sample" and not (_flag_value(argv, "run_dir") or _flag_value(argv, "preset")):
        lines += ["Flags (each task takes some; --run_dir=DIR --help shows that run's):"]
    else:
        lines += ["Flags:"]
    for name, (_, text, default) in specs.items():
        shown = "" if default in (None, "") or name in COMMON else f" (default: {default})"
        lines.append(f"  --{name:<18} {text}{shown}")
    return "\n".join(lines)


def _parse(command, argv):
    """{flag: value} of the flags given on the command line, checked."""
    if command in ("train", "study") and _flag_value(argv, "preset") is not None:
        raise UsageError(
            "--preset names a trained preset (for sample, evaluate and export); "
            "the model size of a new run is --size (tiny, small, medium, large)"
        )
    specs = _specs(command, argv)
    values = flags.FlagValues()
    for name, (kind, text, _) in specs.items():
        _DEFINE[kind](name, None, text, flag_values=values)
    try:
        rest = values([f"lstm-zoo {command}", *argv])
    except flags.Error as error:
        raise UsageError(f"{error} (see lstm-zoo {command} --help)") from None
    if len(rest) > 1:
        raise UsageError(f"`lstm-zoo {command}` takes flags only; received {' '.join(rest[1:])}")
    given = {name: values[name].value for name in specs if values[name].present}
    for name, value in given.items():
        if isinstance(value, list) and not [v for v in value if v.strip()]:
            raise UsageError(
                f"--{name} is empty; give one or more values, comma-separated "
                f"(see lstm-zoo {command} --help)"
            )
    from pipelines.configs import check_range

    own = STUDY_OPTIONS if command == "study" else () if command == "train" else given
    for name in own:  # a task's settings are checked by its config
        declared = OPTIONS.get(name, ())
        if name in given and len(declared) > 2:
            check_range(name, given[name], declared[2])
    return given


def _expected_errors():
    """The exception classes reported as one line: bad input, the environment, interruptions."""
    import tensorflow as tf

    parity = sys.modules.get("zoo.export.parity")  # loaded only if an export ran
    return (
        ValueError,
        KeyError,
        OSError,
        ImportError,
        FloatingPointError,
        MemoryError,
        tf.errors.OpError,
        *([parity.ParityError] if parity else []),
    )


def _one_line(error) -> str:
    import tensorflow as tf

    from pipelines.train import EXTRAS

    if isinstance(error, tf.errors.OpError) and "No space left on device" in error.message:
        written = error.message.split(";")[0].strip()
        return (
            f"no space left on device writing {re.sub(r'[.]tmp[0-9a-f]{32}$', '', written)}"
            "; free some space or write elsewhere"
        )
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return (
            "out of memory: "
            + error.message.splitlines()[0][:200]
            + "; try a smaller --batch_size or --units"
        )
    if isinstance(error, tf.errors.OpError):
        return error.message.strip().splitlines()[0][:300]
    if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in EXTRAS:
        return (
            f"this needs {error.name}: pip install 'lstm-zoo[{EXTRAS[error.name.split('.')[0]]}]'"
        )
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror.lower()}"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def run(argv=None) -> int:
    """Entry point of the `lstm-zoo` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # the benchmark suite defines its flags beside its settings
        from benchmarks import run as benchmarks

        benchmarks.main(argv[1:], prog="lstm-zoo bench")  # the report is written to --out
        return 0
    command = argv[0] if argv and not argv[0].startswith("-") else None
    rest = argv[1:] if command else argv
    debug = "--debug" in rest
    verbose = bool(os.environ.get("LSTM_ZOO_VERBOSE")) or any(
        a.startswith("--verbosity") and not a.endswith("=0") for a in rest
    )
    try:
        if command is not None and command not in COMMANDS:
            raise UsageError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
        if command is None or any(a in ("--help", "-h", "--helpfull") for a in rest):
            with terminal.quiet_native_logs(verbose or command is None):
                print(_help(command, [a for a in rest if a not in ("--help", "-h", "--helpfull")]))
            return 0 if argv else 2
        with terminal.quiet_native_logs(verbose):
            values = _parse(command, rest)
            threads.import_tensorflow(
                values.get("intra_op_threads"), values.get("inter_op_threads")
            )
            from absl import logging

            flags.FLAGS.mark_as_parsed()
            logging.set_verbosity(logging.INFO if verbose else logging.WARNING)
            for name in COMMON:
                values.pop(name, None)
            run_command(command, values)
        return 0
    except BrokenPipeError:  # the reader went away (`lstm-zoo ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt as interrupt:
        import logging as python_logging

        # Graphs cut off mid-trace report their unused parts at exit: noise after Ctrl-C.
        python_logging.getLogger("tensorflow").setLevel(python_logging.CRITICAL)
        print(f"lstm-zoo: {str(interrupt).strip() or 'interrupted'}", file=sys.stderr)
        return 130
    except UsageError as error:
        if debug:
            raise
        print(f"lstm-zoo {command or ''}: error: {error}".replace("  ", " "), file=sys.stderr)
        return 2
    except Exception as error:
        if debug:
            raise
        if not isinstance(error, _expected_errors()):
            print(
                f"lstm-zoo: internal error: {type(error).__name__}: {_one_line(error)} "
                "(rerun with --debug for the traceback)",
                file=sys.stderr,
            )
            return 1
        print(f"lstm-zoo: error: {_one_line(error)}", file=sys.stderr)
        return 1


def main():
    """Console script: exit with `run`'s status; SIGTERM stops training like Ctrl-C."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    sys.exit(run())


if __name__ == "__main__":
    main()
