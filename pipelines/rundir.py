"""The run directory: one owner at a time, its config and history, its data, its checkpoints.

    run_dir/
        .lock          pid of the process that owns the run (a dead owner's lock is taken over)
        config.json    the run's settings, the fingerprint of its data, every invocation
        vocab.json...  the task's inputs (vocabulary, splits, tokenizer), derived from the config
        last.keras     the latest weights and optimizer state (its step count is the position)
        best.keras     the weights of the epoch with the lowest validation loss
        metrics.json   per-epoch history, best epoch, test metrics
        logs/          TensorBoard

A new run prepares its inputs in a `.prepare-*` folder and moves them in only once its model is
built: a failed attempt leaves nothing that a later one could pick up by mistake.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import keras

from zoo.files import atomic_path, atomic_write, read_json

CONFIG, LAST, BEST, METRICS = "config.json", "last.keras", "best.keras", "metrics.json"
LOCK = ".lock"
STAGING_PREFIX = ".prepare-"
log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$LSTM_ZOO_CACHE, else $XDG_CACHE_HOME/lstm-zoo, else ~/.cache/lstm-zoo (read per call)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")  # relative paths are invalid (XDG spec)
    default = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "lstm-zoo"
    return Path(os.environ.get("LSTM_ZOO_CACHE") or default).expanduser()


class RunLock:
    """Exclusive ownership of `run_dir` by this process for the duration of a `with` block.

    The lock file holds the owner's host and pid; a lock whose process is gone is taken over.
    Creates `run_dir` if needed, and removes what it created again on exit if left empty.
    """

    def __init__(self, run_dir):
        self.run_dir, self.path = str(run_dir), os.path.join(run_dir, LOCK)
        self.created = []  # the folders this lock made, innermost first

    def __enter__(self):
        folder = os.path.abspath(self.run_dir)
        while not os.path.isdir(folder):
            self.created.append(folder)
            folder = os.path.dirname(folder)
        os.makedirs(self.run_dir, exist_ok=True)
        mine = f"{socket.gethostname()} {os.getpid()}\n"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None:
                    raise FileExistsError(
                        f"{self.run_dir}: in use by process {owner} (another lstm-zoo command); "
                        "wait for it to finish or choose another --run_dir") from None
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.path)  # stale: its owner is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(mine)
            return self
        raise FileExistsError(f"{self.path}: could not take the lock; try again")

    def _owner(self):
        """The live owner of the lock ("host pid"), or None when the lock is stale."""
        try:
            with open(self.path, encoding="utf-8") as f:
                host, pid = f.read().split()
            pid = int(pid)
        except (OSError, ValueError):
            return None
        if host != socket.gethostname():
            return f"{pid} on {host}"  # cannot check: assume alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return str(pid)

    def __exit__(self, *exc):
        with contextlib.suppress(OSError):
            with open(self.path, encoding="utf-8") as f:
                if f.read().split()[-1] == str(os.getpid()):
                    os.remove(self.path)
        for folder in self.created:  # a failed first attempt leaves nothing
            try:
                os.rmdir(folder)
            except OSError:
                break  # not empty: the run started


def check_new(run_dir):
    """Refuse a run directory that holds a run or files that are not ours; drop stale staging."""
    entries = set(os.listdir(run_dir)) - {LOCK}
    for name in [e for e in entries if e.startswith(STAGING_PREFIX)]:
        shutil.rmtree(os.path.join(run_dir, name), ignore_errors=True)  # a killed attempt's
        entries.discard(name)
    if LAST in entries:
        raise FileExistsError(f"{run_dir}: already holds a run; pass --resume to continue it "
                              "or choose another --run_dir")
    if CONFIG in entries:
        raise FileExistsError(f"{run_dir}: already holds a run that stopped before its first "
                              "checkpoint; pass --resume to start it again as saved, or choose "
                              "another --run_dir")
    if entries:
        shown = ", ".join(sorted(entries)[:3])
        raise FileExistsError(f"{run_dir}: holds files that are not an lstm-zoo run ({shown}); "
                              "choose an empty or new --run_dir")


@contextlib.contextmanager
def staging(run_dir):
    """A fresh folder in `run_dir` for a new run's inputs; `commit` moves them into the run."""
    folder = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=run_dir)

    def commit():
        for name in os.listdir(folder):
            os.replace(os.path.join(folder, name), os.path.join(run_dir, name))

    try:
        yield folder, commit
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def data_fingerprint(path) -> str | None:
    """A SHA-256 (16 hex digits) of the names and bytes of the file or folder `path`.

    None for the default corpus (no `--data`). Hidden files and folders are left out."""
    if path is None:
        return None
    path = os.fspath(path)
    if os.path.isfile(path):
        files, root = [path], os.path.dirname(path)
    elif os.path.isdir(path):
        root = path
        files = sorted(os.path.join(d, f) for d, dirs, names in os.walk(path)
                       for f in names if not f.startswith(".")
                       and not any(p.startswith(".") for p in os.path.relpath(d, path).split(os.sep)
                                   if p != ".")
                       and os.path.isfile(os.path.join(d, f)))  # regular files only: no FIFOs
    else:
        raise FileNotFoundError(f"{path}: no such file or folder")
    digest = hashlib.sha256()
    for file in files:
        digest.update(os.path.relpath(file, root).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def saved_fingerprint(run_dir):
    """The fingerprint of the data the run in `run_dir` was prepared from (None if unknown)."""
    return read_json(os.path.join(run_dir, CONFIG), expect=dict).get("data_fingerprint")


def save_config(config, run_dir, fingerprint, command=None):
    """Write config.json: the settings, the data fingerprint and one more invocation entry."""
    path = os.path.join(run_dir, CONFIG)
    invocations = read_json(path, expect=dict).get("invocations", []) if os.path.isfile(
        path) else []
    invocations.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resume": config.resume,
                        "command": command or " ".join(sys.argv)})
    values = json.loads(config.to_json())
    values.update(data_fingerprint=fingerprint, invocations=invocations)
    atomic_write(path, json.dumps(values, indent=2))


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
    """Merge `values` into metrics.json, atomically."""
    metrics = read_metrics(run_dir)
    metrics.update(values)
    atomic_write(os.path.join(run_dir, METRICS), json.dumps(metrics, indent=2))


def add_time(run_dir, seconds, cpu_seconds):
    """Add one invocation's wall and CPU time to the run's totals in metrics.json (if the run
    has one), as `seconds` and `cpu_seconds`."""
    metrics = read_metrics(run_dir) if os.path.isdir(run_dir) else {}
    if metrics:
        write_metrics(run_dir, seconds=round(metrics.get("seconds", 0.0) + seconds, 1),
                      cpu_seconds=round(metrics.get("cpu_seconds", 0.0) + cpu_seconds, 1))


def prepare_existing(task, config, run_dir, split=True):
    """The task's data for an existing run, refusing missing inputs and changed data.

    A task rebuilds a missing input (e.g. vocab.json) from the corpus; for a trained run that
    would silently pair the weights with another vocabulary, so it is an error here.
    """
    if split and getattr(config, "data", None) is not None:
        saved = saved_fingerprint(run_dir)
        current = data_fingerprint(config.data)
        if saved is not None and current != saved:
            raise ValueError(f"{config.data}: changed since {run_dir} was trained, so its test "
                             "split is not the held-out one; pass --data=PATH to score all of "
                             "a corpus")
    before = set(os.listdir(run_dir))
    try:
        data = task.prepare(config, run_dir, split=split)
    finally:
        rebuilt = sorted(set(os.listdir(run_dir)) - before)
        for name in rebuilt:
            path = os.path.join(run_dir, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    if rebuilt:
        raise FileNotFoundError(f"{os.path.join(run_dir, rebuilt[0])}: missing from the run "
                                "directory; the run cannot be used without it")
    return data


def check_vocabulary(run_dir, model, vocabulary):
    """Refuse a saved vocabulary whose size is not the one the model was trained with."""
    expected = getattr(model, "vocab_size", None)
    if vocabulary is not None and expected is not None and len(vocabulary) != expected:
        raise ValueError(f"{run_dir}: the saved vocabulary holds {len(vocabulary)} tokens but "
                         f"the model was trained with {expected}")
