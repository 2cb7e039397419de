"""The workers of a variant study: each takes waiting trials from the study's Optuna storage,
trains them and records their outcome, beside any number of others on this and other machines.

    lstm-zoo study --study_dir=DIR --storage=postgresql://zoo@db-host/studies --workers=2

run on every machine trains one study together (see `pipelines.study_storage`).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable

from pipelines.study import Study, headline, run_trial


def work(
    study_dir,
    storage: str | None = None,
    heartbeat: int | None = None,
    progress: Callable[[str], None] | None = None,
):
    """One worker: train the study's waiting trials until every pair has its outcome.

    Runs beside any number of workers on this and other machines that share the storage.
    While the others train the last trials it waits, so that it retries any of theirs whose
    process dies. Ctrl-C or SIGTERM saves the running trial and marks it interrupted; the next
    worker to look enqueues it again.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    from pipelines import study_storage as ss

    heartbeat = heartbeat or ss.HEARTBEAT
    trials = ss.connect(study_dir, storage, heartbeat)
    if trials is None:
        raise FileNotFoundError(
            f"{ss.storage_url(study_dir, storage)}: holds no study "
            f"{os.path.basename(os.path.abspath(study_dir))!r}"
        )
    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    started = time.monotonic()
    while True:
        study = Study(**trials.user_attrs["study"])  # as grown by any worker
        fail_stale_trials(trials)
        ss.enqueue_missing(trials, study.grid(), study.settings)
        trial = ss.claim(trials)
        if trial is None:
            if len(ss.results(trials)) >= len(study.grid()):
                return
            time.sleep(heartbeat)
            continue
        cell, k = ss.pair(trial)
        for d in study.space:  # the enqueued draw becomes the trial's params
            if d.integer:
                trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log)
            else:
                trial.suggest_float(d.name, d.low, d.high, log=d.log)
        other = ss.duplicate_of(trials, trial)
        if other is not None:
            trial.set_user_attr("skipped", f"a duplicate of trial {other}")
            trials.tell(trial, state=TrialState.FAIL)
            continue
        with ss.beating(trials, trial):
            try:
                outcome = run_trial(study_dir, study, cell, k)
            except BaseException as error:  # Ctrl-C, SIGTERM, bad input: the pair runs again
                with contextlib.suppress(UpdateFinishedTrialError):  # unless handed on already
                    trial.set_user_attr("stopped", f"{type(error).__name__}: {error}"[:500])
                    trials.tell(trial, state=TrialState.FAIL)
                raise
        record = _record(trials, trial, study, outcome)
        progress(progress_line(study, record, len(ss.results(trials)), time.monotonic() - started))


def _record(trials, trial, study, outcome) -> dict:
    """Store a trial's outcome in the storage; returns it for the progress line."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    metric, _ = headline(study)
    value = outcome.get("test", {}).get(metric)
    failure = outcome.get("failure") or (
        None if value is not None and math.isfinite(value) else f"test {metric} is {value}"
    )
    record = {
        "cell": trial.user_attrs["cell"],
        "trial": trial.user_attrs["trial"],
        "test": outcome.get("test"),
        "failure": failure,
        "seconds": outcome.get("seconds"),
        "cpu_seconds": outcome.get("cpu_seconds"),
        "epochs": len(outcome.get("history", [])),
        "best_epoch": (outcome.get("best") or {}).get("epoch"),
        "host": socket.gethostname(),
    }
    try:
        for name in ("test", "failure", "seconds", "cpu_seconds", "epochs", "best_epoch", "host"):
            if record[name] is not None:
                trial.set_user_attr(name, record[name])
        if failure:
            trials.tell(trial, state=TrialState.FAIL)
        else:
            trials.tell(trial, value)
    except UpdateFinishedTrialError:  # silent too long: the storage handed it to another
        record["failure"] = "handed to another worker (no heartbeat)"
    return record


def _start_worker(threads):
    """A worker process: TensorFlow with `threads` threads, quiet start-up, and SIGTERM
    stopping a trial like Ctrl-C (last.keras saved at the current step)."""
    import signal

    from pipelines import terminal
    from pipelines.threads import import_tensorflow

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    with terminal.quiet_native_logs():
        import_tensorflow(threads, threads)


def _worker_process(study_dir, storage, heartbeat, threads, lines):
    _start_worker(threads)
    try:
        work(study_dir, storage, heartbeat, progress=lines.put)
    except KeyboardInterrupt:  # the trial saved its state; the parent reports the interruption
        raise SystemExit(130) from None
    except Exception as error:
        lines.put(f"error: {error}")
        raise SystemExit(1) from None


def run_trials(
    study_dir,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
    storage: str | None = None,
    heartbeat: int | None = None,
):
    """Train every trial of the study in `study_dir` that has no outcome yet, with `workers`
    processes on this machine (beside any others on the same storage).

    `progress` receives one line per finished trial (default: printed to stderr). Ctrl-C or
    SIGTERM stops every worker after it saved its trial; rerunning continues the study.
    """
    import queue

    progress = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    stop = KeyboardInterrupt(
        f"study interrupted; continue it with: lstm-zoo study --study_dir={study_dir}"
    )
    if workers <= 1:
        try:
            return work(study_dir, storage, heartbeat, progress)
        except KeyboardInterrupt:
            raise stop from None
    context = multiprocessing.get_context("spawn")
    lines = context.Queue()
    threads = max(1, (os.cpu_count() or 1) // workers)
    processes = [
        context.Process(
            target=_worker_process,
            daemon=False,
            args=(study_dir, storage, heartbeat, threads, lines),
        )
        for _ in range(workers)
    ]
    errors = []
    try:
        for process in processes:
            process.start()
        while any(p.is_alive() for p in processes) or not lines.empty():
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=1)
                (errors.append if line.startswith("error: ") else progress)(line)
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()  # SIGTERM: each worker saves its trial's last.keras, then exits
        raise stop from None
    finally:
        for process in processes:
            process.join()
    if errors:  # a worker's one-line error (bad input, an unreachable storage) is the command's
        raise ValueError(errors[0][len("error: ") :])
    if any(p.exitcode for p in processes):
        raise stop


def progress_line(study, record, done, seconds) -> str:
    """ "[12/55] gru  trial 3  nll 8.912  (41 s; lr=0.0042 units=97 ...)"."""
    from pipelines.terminal import duration

    metric, _ = headline(study)
    if record.get("failure"):
        result = "failed: " + record["failure"].split(";")[0]
    else:
        result = f"{metric} {record['test'].get(metric, float('nan')):.4g}"
    settings = " ".join(f"{k}={v:.3g}" for k, v in study.settings(record["trial"]).items())
    return (
        f"[{done}/{len(study.grid())}] {record['cell']}  trial {record['trial']}  {result}  "
        f"({duration(record.get('seconds') or 0)}; {settings}; "
        f"elapsed {duration(seconds)})"
    )
