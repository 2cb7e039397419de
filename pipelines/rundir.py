"""The run directory: one owner at a time, its config and history, its data, its checkpoints.

    run_dir/
        .lock          held by the command using the run: one writer or many readers
                       (`pipelines.locks`)
        config.json    the run's settings, the fingerprint of its data, every invocation
        vocab.json...  the task's inputs (vocabulary, splits, tokenizer), derived from the config
        last.keras     the latest weights and optimizer state (its step count is the position)
        best.keras     the weights of the epoch with the lowest validation loss
        metrics.json   per-epoch history, best epoch, test metrics
        logs/          TensorBoard

A new run prepares its inputs in a marked `.prepare-*` folder and moves them in only once its
model is built: a failed attempt leaves nothing that a later one could pick up by mistake.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import keras

from pipelines import datasets, locks
from pipelines.configs import RESUMABLE, migrated
from pipelines.locks import LOCK, RunLock, staging  # noqa: F401 (the run's own helpers)
from pipelines.tasks import get_task
from zoo.files import atomic_path, atomic_write, read_json

CONFIG, LAST, BEST, METRICS = "config.json", "last.keras", "best.keras", "metrics.json"
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$LSTM_ZOO_CACHE, else $XDG_CACHE_HOME/lstm-zoo, else ~/.cache/lstm-zoo (read per call)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")  # relative paths are invalid (XDG spec)
    default = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "lstm-zoo"
    return Path(os.environ.get("LSTM_ZOO_CACHE") or default).expanduser()


def default_run_dir(config) -> str:
    """runs/<task>-<cell>-<date>-<time>: the run directory when --run_dir is not given."""
    cell = getattr(config, "cell", "model")
    return os.path.join("runs", f"{config.task}-{cell}-{time.strftime('%Y%m%d-%H%M%S')}")


def load_config(run_dir):
    """The config saved in `run_dir` (its class comes from the task it names)."""
    path = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file; is --run_dir={run_dir} a run directory?")
    task = migrated(read_json(path, expect=dict)).get("task")
    if not isinstance(task, str):
        raise ValueError(f"{path}: names no task")
    return get_task(task).config_class.load(path)


def check_new(run_dir):
    """Refuse a run directory that holds a run or files that are not the tool's; then remove
    the marked staging folders of killed attempts. Call it holding the run's lock: nothing is
    removed from a folder that is refused."""
    entries = {
        e
        for e in os.listdir(run_dir)
        if e != LOCK and not locks.is_staging(os.path.join(run_dir, e))
    }
    if LAST in entries:
        raise FileExistsError(
            f"{run_dir}: already holds a run; pass --resume to continue it "
            "or choose another --run_dir"
        )
    if CONFIG in entries:
        raise FileExistsError(
            f"{run_dir}: already holds a run that stopped before its first "
            "checkpoint; pass --resume to start it again as saved, or choose "
            "another --run_dir"
        )
    if entries:
        shown = ", ".join(sorted(entries)[:3])
        raise FileExistsError(
            f"{run_dir}: holds files that are not an lstm-zoo run ({shown}); "
            "choose an empty or new --run_dir"
        )
    locks.remove_stale_staging(run_dir)


def data_fingerprint(path) -> str | None:
    """The fingerprint of a --data file or folder (`pipelines.datasets.data_fingerprint`);
    None for the default corpus (no `--data`)."""
    return None if path is None else datasets.data_fingerprint(path)


def saved_fingerprint(run_dir):
    """The fingerprint of the data the run in `run_dir` was prepared from (None if unknown)."""
    return read_json(os.path.join(run_dir, CONFIG), expect=dict).get("data_fingerprint")


def save_config(config, run_dir, fingerprint, command=None):
    """Write config.json: the settings, the data fingerprint and one more invocation entry.

    The first invocation also records the settings the run started with, so that a config.json
    edited by hand is caught on `--resume` (`check_unedited`).
    """
    path = os.path.join(run_dir, CONFIG)
    invocations = (
        read_json(path, expect=dict).get("invocations", []) if os.path.isfile(path) else []
    )
    values = json.loads(config.to_json())
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resume": config.resume,
        "command": command or " ".join(sys.argv),
    }
    if not invocations:
        entry["started_with"] = {k: v for k, v in values.items() if k not in RESUMABLE}
    values.update(data_fingerprint=fingerprint, invocations=[*invocations, entry])
    atomic_write(path, json.dumps(values, indent=2))


def check_unedited(run_dir, saved):
    """Refuse a config.json whose run-defining settings are not the ones the run started with
    (`saved` is the config read from it)."""
    path = os.path.join(run_dir, CONFIG)
    invocations = read_json(path, expect=dict).get("invocations") or [{}]
    started = invocations[0].get("started_with") if isinstance(invocations[0], dict) else None
    if not isinstance(started, dict):
        return  # written before runs recorded their start
    now = json.loads(saved.to_json())
    edited = [
        f"{k}={now.get(k)!r} (the run started with {v!r})"
        for k, v in started.items()
        if k in now and now[k] != v
    ]
    if edited:
        raise ValueError(
            f"{path}: edited by hand: {', '.join(edited[:3])}; the checkpoints "
            "were trained with the settings the run started with. Restore them, "
            "or start a new --run_dir"
        )


def _architecture(model) -> dict:
    """A model's serialized config without names (which Keras numbers per process)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("name", "dtype")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(model.get_config())


def check_checkpoint(model, expected, path):
    """Refuse checkpoint `model` (read from `path`) when it is not the model the run's config
    builds (`expected`): other cell, sizes or vocabulary."""
    held, wanted = _architecture(model), _architecture(expected)
    shapes = [tuple(w.shape) for w in model.weights]
    if held == wanted and (
        not expected.built  # a subclassed model builds on its first call
        or shapes == [tuple(w.shape) for w in expected.weights]
    ):
        return
    differ = [
        f"{k}={held.get(k)!r} (config.json gives {wanted.get(k)!r})"
        for k in wanted
        if held.get(k) != wanted.get(k)
    ] or [f"{len(shapes)} weight arrays of other shapes"]
    raise ValueError(
        f"{path}: holds another model than config.json describes: "
        f"{', '.join(differ[:3])}; restore config.json or start a new --run_dir"
    )


def save_checkpoint(model, run_dir, best=False):
    """Write last.keras (and best.keras from the same bytes), each atomically."""
    with atomic_path(os.path.join(run_dir, LAST)) as tmp:
        model.save(tmp)
        if best:
            with atomic_path(os.path.join(run_dir, BEST)) as tmp_best:
                shutil.copyfile(tmp, tmp_best)


def _reason(error):
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]


def load_checkpoint(run_dir, which=BEST):
    """The model saved in `run_dir`: `which` (default best.keras), else the other checkpoint.

    An unreadable file (truncated, empty, naming an unknown class) is skipped with a warning
    when the other one loads; a ValueError naming both files otherwise.
    """
    errors = []
    for name in (which, LAST if which == BEST else BEST):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            continue
        if not zipfile.is_zipfile(path):
            errors.append(
                f"{path}: unreadable checkpoint (not a whole .keras file: "
                f"{os.path.getsize(path):,} bytes, truncated or overwritten)"
            )
            continue
        try:
            model = keras.models.load_model(path)
        except Exception as error:  # noqa: BLE001 - zip, HDF5, class lookup and config errors
            errors.append(f"{path}: unreadable checkpoint ({_reason(error)})")
            continue
        for message in errors:
            log.warning("%s; using %s", message, path)
        return model
    if errors:
        raise ValueError("; ".join(errors))
    raise FileNotFoundError(f"{run_dir}: no checkpoint ({which} or {LAST}) in the run directory")


def read_metrics(run_dir) -> dict:
    """The run's metrics.json as a dict ({} before the first epoch ends)."""
    path = os.path.join(run_dir, METRICS)
    return read_json(path, expect=dict) if os.path.isfile(path) else {}


def write_metrics(run_dir, **values):
    """Merge `values` into metrics.json, atomically (a None value removes its key)."""
    metrics = read_metrics(run_dir)
    metrics.update(values)
    metrics = {k: v for k, v in metrics.items() if v is not None}
    atomic_write(os.path.join(run_dir, METRICS), json.dumps(metrics, indent=2))


def add_time(run_dir, seconds, cpu_seconds):
    """Add one invocation's wall and CPU time to the run's totals in metrics.json (if the run
    has one), as `seconds` and `cpu_seconds`."""
    metrics = read_metrics(run_dir) if os.path.isdir(run_dir) else {}
    if metrics:
        write_metrics(
            run_dir,
            seconds=round(metrics.get("seconds", 0.0) + seconds, 1),
            cpu_seconds=round(metrics.get("cpu_seconds", 0.0) + cpu_seconds, 1),
        )


def prepare_existing(task, config, run_dir, split=True):
    """The task's data for an existing run, refusing missing inputs and changed data.

    A task derives a missing input (e.g. vocab.json) from the corpus; for a trained run that
    would silently pair the weights with another vocabulary, so every input the task declares
    (`Task.inputs`) must be there before the task reads the run. Nothing is written or removed:
    readers hold the run's lock shared.
    """
    if split and getattr(config, "data", None) is not None:
        saved = saved_fingerprint(run_dir)
        current = data_fingerprint(config.data)
        if saved is not None and current != saved:
            raise ValueError(
                f"{config.data}: changed since {run_dir} was trained, so its test "
                "split is not the held-out one; pass --data=PATH to score all of "
                "a corpus"
            )
    for name in task.inputs(config, split):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path}: missing from the run directory; the run cannot be used without it"
            )
    return task.prepare(config, run_dir, split=split)


def check_vocabulary(run_dir, model, vocabulary):
    """Refuse a saved vocabulary whose size is not the one the model was trained with."""
    expected = getattr(model, "vocab_size", None)
    if vocabulary is not None and expected is not None and len(vocabulary) != expected:
        raise ValueError(
            f"{run_dir}: the saved vocabulary holds {len(vocabulary)} tokens but "
            f"the model was trained with {expected}"
        )
