"""Variant studies in the manner of Greff et al.: every cell trained on the same random draws.

    lstm-zoo study --task=chorales --steps_per_quarter=1 \\
        --cells=vanilla_lstm,nfg_lstm,gru --trials=5 --study_dir=studies/chorales

`trials` hyper-parameter settings are drawn from `SPACE` and every cell is trained once with
each, with the same training seed, as an ordinary run directory `DIR/<cell>/trial-NN`. Trial
k's draw depends only on the study's seed, k and the setting's name, so adding trials or cells
never changes the finished ones. Settings given on the command line are fixed for every trial
and leave the search.

The trials are coordinated and recorded by an Optuna storage (`pipelines.study_storage`): a
journal file in DIR by default, or one URL shared by workers on many machines, each running
the same command. Re-running a study continues it: finished trials are read back from the
storage, interrupted ones resumed (`lstm-zoo train --resume`), missing ones trained, and a
worker that died has its trial retried. A study may grow (more trials, more cells) but not
change: its task, fixed settings, space and seed are kept in the storage and in
`DIR/study.json`. `workers` processes on one machine train trials side by side (one thread
each on small models is nearly as fast as two, so two workers on two cores train about twice
as many trials an hour). `pipelines.study_report.analyze` writes the comparison (results.json,
results.md, plots).

Reference: K. Greff, R. K. Srivastava, J. Koutnik, B. R. Steunebrink, J. Schmidhuber,
"LSTM: A Search Space Odyssey", IEEE TNNLS 28(10), 2017.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipelines.configs import migrated
from zoo.files import atomic_write, read_json

STUDY = "study.json"
# Settings a study sets itself for every trial; they cannot be fixed on the command line.
OWN_SETTINGS = ("cell", "seed", "run_dir", "resume", "task")


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a config field drawn uniformly from [low, high] (on a log scale
    if `log`; rounded to an integer if `integer`)."""

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def __post_init__(self):
        bounds = (self.low, self.high)
        if (
            not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b)
                for b in bounds
            )
            or self.low > self.high
        ):
            raise ValueError(
                f"search dimension {self.name}: bounds {list(bounds)} are not two "
                "finite numbers, low <= high"
            )
        if self.log and self.low <= 0:
            raise ValueError(
                f"search dimension {self.name}: a log scale needs bounds above 0, "
                f"got {list(bounds)}"
            )

    def draw(self, seed: int, trial: int) -> float | int:
        """This setting's value in trial `trial`: a stream of its own (seed, trial, name)."""
        rng = np.random.default_rng([seed, trial, zlib.crc32(self.name.encode())])
        low, high = (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)
        value = float(rng.uniform(low, high))
        value = math.exp(value) if self.log else value
        return int(round(value)) if self.integer else round(value, 6)


# Greff et al. searched the learning rate (log-uniform), the hidden size, the input noise and
# the momentum of SGD. Training here uses Adam, which has no momentum to search: dropout takes
# its place. A dimension applies to the tasks whose config has a field of its name.
SPACE = (
    Dimension("learning_rate", 1e-3, 3e-2, log=True),
    Dimension("units", 32, 256, log=True, integer=True),
    Dimension("input_noise", 0.0, 0.5),
    Dimension("dropout", 0.0, 0.5),
)


@dataclass
class Study:
    """A study's definition, as saved in study.json.

    Attributes:
        task: the registered task every trial trains.
        cells: registered cell names, compared in this order.
        trials: hyper-parameter draws; each cell is trained once per draw.
        fixed: config settings shared by every trial (the task's flags given to `study`).
        seed: seeds the draws; trial k trains with seed `seed + k` for every cell.
        baseline: the cell the others are tested against (default vanilla_lstm if studied,
            else the first cell).
        space: the searched dimensions (SPACE less the fixed settings and the fields the task
            does not have).
    """

    task: str
    cells: list[str]
    trials: int = field(metadata={"between": (1, 10_000)})
    fixed: dict = field(default_factory=dict)
    seed: int = 0
    baseline: str | None = None
    space: list[Dimension] | None = None

    def __post_init__(self):
        from pipelines.configs import check_range, setting_range
        from pipelines.tasks import get_task

        kinds = {
            "task": str,
            "cells": list,
            "trials": int,
            "fixed": dict,
            "seed": int,
            "baseline": (str, type(None)),
            "space": (list, type(None)),
        }
        for name, kind in kinds.items():
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(
                    f"{name}={value!r}: expected {getattr(kind, '__name__', 'text or nothing')}"
                )
        if not all(isinstance(c, str) for c in self.cells):
            raise ValueError(f"cells={self.cells!r}: expected a list of cell names")
        task = get_task(self.task)
        fields = {f.name for f in dataclasses.fields(task.config_class)}
        check_range("trials", self.trials, setting_range(Study, "trials"))
        if not self.cells or len(set(self.cells)) != len(self.cells):
            raise ValueError(f"--cells={','.join(self.cells)}: expected distinct cell names")
        for name in self.fixed:
            if name in OWN_SETTINGS or name not in fields:
                raise ValueError(
                    f"--{name}: not a setting a {self.task} study can fix (the "
                    "study sets cell, seed and run_dir itself)"
                )
        if self.space is None:
            self.space = [d for d in SPACE if d.name in fields and d.name not in self.fixed]
        if not all(isinstance(d, (Dimension, dict)) for d in self.space):
            raise ValueError(f"space={self.space!r}: expected a list of search dimensions")
        self.space = [d if isinstance(d, Dimension) else Dimension(**d) for d in self.space]
        if self.reference not in self.cells:
            raise ValueError(
                f"--baseline={self.baseline}: not one of the studied cells "
                f"({', '.join(self.cells)})"
            )
        for cell in self.cells:  # every setting checked before anything trains
            self.config(".", cell, 0)

    @property
    def reference(self) -> str:
        """The baseline cell: `baseline`, else vanilla_lstm if studied, else the first cell."""
        return self.baseline or ("vanilla_lstm" if "vanilla_lstm" in self.cells else self.cells[0])

    def settings(self, trial: int) -> dict:
        """The drawn settings of trial `trial` (the same for every cell)."""
        return {d.name: d.draw(self.seed, trial) for d in self.space}

    def run_dir(self, study_dir, cell: str, trial: int) -> str:
        """The run directory of `cell`'s trial number `trial`: DIR/<cell>/trial-NN."""
        return os.path.join(study_dir, cell, f"trial-{trial:02d}")

    def config(self, study_dir, cell: str, trial: int):
        """The training config of one trial."""
        from pipelines.tasks import get_task

        return get_task(self.task).config_class(
            **self.fixed,
            **self.settings(trial),
            cell=cell,
            seed=self.seed + trial,
            run_dir=self.run_dir(study_dir, cell, trial),
        )

    def grid(self) -> list[tuple[str, int]]:
        """(cell, trial) pairs, trial by trial, so a partial study has every cell alike."""
        return [(cell, trial) for trial in range(self.trials) for cell in self.cells]

    def to_json(self) -> str:
        """The study's definition as indented JSON (what study.json holds)."""
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def load(cls, study_dir) -> Study:
        """The study defined in `study_dir`/study.json; a ValueError naming the file if not one."""
        values = read_json(os.path.join(study_dir, STUDY), expect=dict)
        if values.get("task") == "music":  # saved before the music task was split
            settings = migrated({**values.get("fixed", {}), "task": "music"})
            values = {**values, "task": settings.pop("task"), "fixed": settings}
        path = os.path.join(study_dir, STUDY)
        try:
            return cls(**values)
        except (TypeError, ValueError, KeyError) as error:
            reason = str(error.args[0] if isinstance(error, KeyError) else error)
            raise ValueError(reason if reason.startswith(path) else f"{path}: {reason}") from None


def open_study(study_dir, study: Study | None = None, storage: str | None = None) -> Study:
    """The study in `study_dir` (and its storage), created from `study` or grown by it; saved
    in the storage and as study.json, with a waiting trial for each pair still to train.

    A saved study may gain cells and trials; any other difference is a ValueError.
    """
    from pipelines import study_storage

    path = os.path.join(study_dir, STUDY)
    saved = saved_study(study_dir, storage)
    if saved is None and study is None:
        raise FileNotFoundError(f"{path}: no such file; is {study_dir} a study directory?")
    grown = saved or study
    if saved is not None and study is not None:
        for name in ("task", "fixed", "seed", "space"):
            if getattr(study, name) != getattr(saved, name):
                raise ValueError(
                    f"{study_dir}: the study has {name}={_shown(saved, name)}, this command "
                    f"{_shown(study, name)}; a study grows by --trials and --cells only: give "
                    "the same settings, or another --study_dir"
                )
        grown = dataclasses.replace(
            saved,
            trials=max(saved.trials, study.trials),
            baseline=study.baseline or saved.baseline,
            cells=saved.cells + [c for c in study.cells if c not in saved.cells],
        )
    _, lower_is_better = headline(grown)
    trials = study_storage.connect(
        study_dir, storage, direction="minimize" if lower_is_better else "maximize"
    )
    definition = json.loads(grown.to_json())
    if trials.user_attrs.get("study") != definition:
        trials.set_user_attr("study", definition)
    os.makedirs(study_dir, exist_ok=True)
    atomic_write(path, grown.to_json())
    study_storage.enqueue_missing(trials, grown.grid(), grown.settings)
    return grown


def saved_study(study_dir, storage: str | None = None) -> Study | None:
    """The study kept in `study_dir`'s storage, else in its study.json, else None."""
    from pipelines import study_storage

    trials = study_storage.connect(study_dir, storage)
    if trials is not None and "study" in trials.user_attrs:
        return Study(**trials.user_attrs["study"])
    return Study.load(study_dir) if os.path.isfile(os.path.join(study_dir, STUDY)) else None


def _shown(study, name):
    value = getattr(study, name)
    if name == "space":
        return "[" + ", ".join(d.name for d in value) + "]"
    return json.dumps(value)


def trial_outcome(run_dir) -> dict | None:
    """The finished trial's metrics.json ("test" or "failure" in it), else None."""
    from pipelines.rundir import read_metrics

    metrics = read_metrics(run_dir) if os.path.isdir(run_dir) else {}
    return metrics if "test" in metrics or "failure" in metrics else None


def run_trial(study_dir, study: Study, cell: str, trial: int) -> dict:
    """Train (or resume) one trial, unless its run directory has its outcome already; returns
    the run's metrics.json."""
    import keras

    from pipelines import rundir, train

    config = study.config(study_dir, cell, trial)
    if trial_outcome(config.run_dir) is None:
        _release_other_host(config.run_dir)
        resume = os.path.isfile(os.path.join(config.run_dir, rundir.CONFIG))
        config = dataclasses.replace(config, resume=resume)
        command = f"lstm-zoo study --study_dir={study_dir} (cell {cell}, trial {trial})"
        try:
            train.train(config, verbose=0, command=command)
        except FloatingPointError as error:  # a diverged trial is a result, not an error
            rundir.write_metrics(config.run_dir, failure=str(error))
        finally:
            keras.backend.clear_session()
    return trial_outcome(config.run_dir)


def _release_other_host(run_dir):
    """Remove a run lock left by a process on another machine: the storage handed this trial
    over because that process stopped beating (a lock of this machine's is checked by pid)."""
    from pipelines.rundir import LOCK

    path = os.path.join(run_dir, LOCK)
    try:
        with open(path, encoding="utf-8") as f:
            host = f.read().split()[0]
    except (OSError, IndexError):
        return
    if host != socket.gethostname():
        os.remove(path)


def headline(study) -> tuple[str, bool]:
    """The study task's ranking metric and whether lower is better (`Task.headline`)."""
    from pipelines.tasks import get_task

    task = get_task(study.task)
    return task.headline(study.config(".", study.cells[0], 0))


def run_study(
    study_dir,
    study: Study | None = None,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
    storage: str | None = None,
    heartbeat: int | None = None,
) -> dict:
    """Create, grow or continue the study in `study_dir` (in `storage`, default a journal file
    there), train what is missing, and write its analysis; returns the analysis (see
    `pipelines.study_report.analyze`)."""
    from pipelines import study_report
    from pipelines.study_workers import run_trials

    open_study(study_dir, study, storage)
    run_trials(study_dir, workers, progress, storage, heartbeat)
    return study_report.analyze(study_dir, storage)
