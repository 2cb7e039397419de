"""Where a study's trials are coordinated and recorded: an Optuna storage.

Each (cell, draw) pair of a study is one Optuna trial, enqueued with the zoo's own draw as its
fixed params and `cell` and `trial` (the draw's number) as user attributes. Any number of
`lstm-zoo study` processes, on any number of machines, pointed at one storage take the waiting
trials one at a time (the storage hands each to one process), train them and record their
outcome. A running trial beats every `heartbeat` seconds; one silent for `GRACE` beats belongs to
a process that died: the next worker that looks marks it failed (Optuna's `fail_stale_trials`)
and enqueues its pair again, to be resumed from its run directory where that is shared.

Storages: a journal file (the default: `DIR/trials.journal`; any path, e.g. on a shared file
system) or any database URL SQLAlchemy takes (`postgresql://user@host/db`); see
`lstm-zoo study --help`. The study's definition (study.json) is kept in the storage too, so a
machine joins a study with only its URL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import warnings

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from zoo.files import atomic_write

JOURNAL = "trials.journal"
REMEMBERED = "storage.url"  # the --storage a study directory was last run with
HEARTBEAT = 30  # seconds between a running trial's beats
GRACE = 4  # beats missed before a trial's process is taken to be dead
ACTIVE = (TrialState.WAITING, TrialState.RUNNING)


class BeatingJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with its heartbeat contract (which Optuna implements for
    databases only): a beat is the trial's system attribute `heartbeat`, the Unix time."""

    def __init__(self, path, heartbeat: int):
        super().__init__(JournalFileBackend(path))
        self.heartbeat = heartbeat

    def record_heartbeat(self, trial_id: int) -> None:
        """Record that trial `trial_id`'s process is alive (a finished trial is left as it is)."""
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, "heartbeat", time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [
            t._trial_id
            for t in self.get_all_trials(study_id, states=(TrialState.RUNNING,))
            if now - t.system_attrs.get("heartbeat", t.datetime_start.timestamp())
            > GRACE * self.heartbeat
        ]

    def get_heartbeat_interval(self) -> int:
        """Seconds between a running trial's beats."""
        return self.heartbeat

    def get_heartbeat_stale_trial_callback(self):
        """None: no callback; the worker loop enqueues every pair left without a trial."""


def storage_url(study_dir, storage: str | None = None) -> str:
    """The storage of the study in `study_dir`: `storage` if given (remembered in the directory
    unless it holds a password), else the remembered one, else the journal file there."""
    remembered = os.path.join(study_dir, REMEMBERED)
    if storage:
        if kind(storage) == "journal" or _password(storage) is None:
            os.makedirs(study_dir, exist_ok=True)
            atomic_write(remembered, storage + "\n")
        return storage
    if os.path.isfile(remembered):
        with open(remembered, encoding="utf-8") as f:
            return f.read().strip()
    return os.path.join(study_dir, JOURNAL)


def _password(url):
    from sqlalchemy.engine import make_url

    return make_url(url).password


def kind(url: str) -> str:
    """ "journal" for a journal file, else the database's name ("postgresql", "sqlite", ...)."""
    return url.split("://", 1)[0].split("+")[0] if "://" in url else "journal"


def connect(
    study_dir, storage: str | None = None, heartbeat: int = HEARTBEAT, direction: str | None = None
) -> optuna.Study:
    """The Optuna study of `study_dir` (named after its folder) in its storage. A missing one
    is created given its `direction` ("minimize" or "maximize"), else None is returned."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage_url(study_dir, storage)
    if direction is None and kind(url) == "journal" and not os.path.isfile(url):
        return None
    if kind(url) == "journal":
        os.makedirs(os.path.dirname(os.path.abspath(url)), exist_ok=True)
        backend = BeatingJournalStorage(url, heartbeat)
    else:
        backend = _database(url, heartbeat)
    name = os.path.basename(os.path.abspath(study_dir))
    try:
        return optuna.load_study(study_name=name, storage=backend)
    except KeyError:  # no such study yet
        if direction is None:
            return None
    return optuna.create_study(
        study_name=name, storage=backend, direction=direction, load_if_exists=True
    )


def _database(url, heartbeat):
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    for attempt in range(3):  # workers started together may race to create the tables
        try:
            return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=GRACE * heartbeat)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(1)
        except sqlalchemy.exc.OperationalError as error:
            reason = str(error.orig).strip().splitlines()[-1] if error.orig else str(error)
            raise ConnectionError(
                f"--storage={make_url(url).render_as_string()}: cannot reach the database: {reason}"
            ) from None
    return None


def pair(trial) -> tuple[str, int] | None:
    """(cell, draw number) of a study's trial; None for a trial the zoo did not enqueue."""
    attrs = trial.user_attrs
    return (attrs["cell"], attrs["trial"]) if "cell" in attrs and "trial" in attrs else None


def is_result(trial) -> bool:
    """A finished pair: a test metric, or a diverged run (a result too: `failure` says how)."""
    return trial.state == TrialState.COMPLETE or (
        trial.state == TrialState.FAIL and "failure" in trial.user_attrs
    )


def by_pair(trials: optuna.Study) -> dict[tuple[str, int], list]:
    """{(cell, trial): its Optuna trials, by number}."""
    found = {}
    for trial in trials.get_trials(deepcopy=False):
        if pair(trial) is not None:
            found.setdefault(pair(trial), []).append(trial)
    return found


def results(trials: optuna.Study) -> dict[tuple[str, int], optuna.trial.FrozenTrial]:
    """{(cell, trial): the Optuna trial holding its result}."""
    return {
        key: next(t for t in found if is_result(t))
        for key, found in by_pair(trials).items()
        if any(map(is_result, found))
    }


def enqueue_missing(trials: optuna.Study, grid, settings) -> int:
    """Enqueue each (cell, trial) of `grid` that has neither a result nor a waiting or running
    trial, with `settings(trial)` as its params; returns how many."""
    found = by_pair(trials)
    missing = [
        (cell, k)
        for cell, k in grid
        if not any(is_result(t) or t.state in ACTIVE for t in found.get((cell, k), []))
    ]
    for cell, k in missing:
        trials.enqueue_trial(settings(k), user_attrs={"cell": cell, "trial": k})
    return len(missing)


def claim(trials: optuna.Study):
    """A waiting trial, now running for this process, or None when none waits. The storage
    hands each waiting trial to one process; `worker` records which."""
    for waiting in trials.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if not trials._storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        trial = optuna.Trial(trials, waiting._trial_id)
        trial.set_user_attr("worker", f"{socket.gethostname()} {os.getpid()}")
        return trial
    return None


def duplicate_of(trials: optuna.Study, trial) -> int | None:
    """The number of another trial that holds `trial`'s pair (it has the result, or it is an
    older one still waiting or running), else None. Two workers that enqueue the same missing
    pair at once make two trials of it: only the oldest is trained."""
    me = trials._storage.get_trial(trial._trial_id)
    for other in by_pair(trials).get(pair(me), []):
        if other.number != me.number and (
            is_result(other) or (other.state in ACTIVE and other.number < me.number)
        ):
            return other.number
    return None


@contextlib.contextmanager
def beating(trials: optuna.Study, trial):
    """The trial's heartbeat, every `heartbeat` seconds while the block runs."""
    storage = trials._storage
    interval = storage.get_heartbeat_interval() if isinstance(storage, BaseHeartbeat) else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat():
        while True:
            storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def summary(trials: optuna.Study, storage_url: str) -> dict:
    """The storage's kind and its Optuna trials by what became of them: results, attempts
    stopped with their worker (killed, interrupted or failed; their pairs ran again),
    duplicates skipped, and trials still waiting or running."""
    counts = {}
    for trial in trials.get_trials(deepcopy=False):
        what = (
            "results"
            if is_result(trial)
            else "duplicates"
            if "skipped" in trial.user_attrs
            else trial.state.name.lower()
            if trial.state in ACTIVE
            else "stopped"
        )
        counts[what] = counts.get(what, 0) + 1
    hosts = {
        t.user_attrs["host"] for t in trials.get_trials(deepcopy=False) if "host" in t.user_attrs
    }
    return {"storage": kind(storage_url), "optuna_trials": counts, "hosts": len(hosts)}
