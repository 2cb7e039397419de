"""Distributed studies: separately started workers share one Optuna storage (a journal file, a
PostgreSQL server); one is killed mid-trial, and the study still trains every trial once, with
the results one worker gets."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from optuna.trial import TrialState

from pipelines import study_storage
from tests.pipelines.conftest import LINES
from tests.pipelines.postgres import postgres_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for i in range(3):
        (folder / f"doc{i}.txt").write_text("\n".join(LINES[i:] + LINES[:i]) * 12)
    return folder


def worker(study_dir, storage, corpus):
    """`lstm-zoo study` in a process of its own: 2 cells x 2 draws of a tiny text model (each
    trial a few seconds; one thread, so that every process computes alike)."""
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "study",
        "--task=text",
        f"--data={corpus}",
        "--units=8",
        "--embedding_dim=8",
        "--layers=1",
        "--seq_len=16",
        "--batch_size=8",
        "--epochs=3",
        "--steps=6",
        "--validation_steps=1",
        "--intra_op_threads=1",
        "--inter_op_threads=1",
        "--cells=lstm,gru",
        "--trials=2",
        "--heartbeat=1",
        f"--study_dir={study_dir}",
        *([f"--storage={storage}"] if storage else []),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return err


def values(study_dir, storage=None) -> dict:
    trials = study_storage.connect(str(study_dir), storage)
    return {key: t.value for key, t in study_storage.results(trials).items()}


@pytest.fixture(scope="module")
def one_worker(corpus, tmp_path_factory):
    """{(cell, trial): test bits per character} of the study trained by one worker."""
    study_dir = tmp_path_factory.mktemp("one") / "study"
    finish(worker(study_dir, None, corpus))
    return values(study_dir)


def kill_mid_trial(process, study_dir, storage, timeout=180):
    """SIGKILL `process` once it is training a trial (its run directory started); returns
    that trial's (cell, trial)."""
    deadline, trials = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        trials = trials or study_storage.connect(str(study_dir), storage)
        for trial in (
            trials.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if trials else []
        ):
            cell, k = study_storage.pair(trial) or (None, None)
            run_dir = os.path.join(study_dir, str(cell), f"trial-{k:02d}" if cell else "")
            if trial.user_attrs.get("worker", "").endswith(f" {process.pid}") and os.path.isfile(
                os.path.join(run_dir, "config.json")
            ):
                process.send_signal(signal.SIGKILL)
                process.communicate()
                return cell, k
        time.sleep(0.1)
    raise AssertionError("the worker never started a trial")


def two_workers_one_killed(study_dir, storage, corpus, one_worker):
    first, second = worker(study_dir, storage, corpus), worker(study_dir, storage, corpus)
    killed = kill_mid_trial(first, study_dir, storage)
    err = finish(second)
    assert "[4/4]" in err
    trials = study_storage.connect(str(study_dir), storage)
    found = study_storage.by_pair(trials)
    assert sorted(found) == sorted(one_worker)
    for key, attempts in found.items():  # every pair trained once
        assert sum(map(study_storage.is_result, attempts)) == 1, key
    stopped = [
        t for t in found[killed] if not study_storage.is_result(t) and "skipped" not in t.user_attrs
    ]
    assert stopped and stopped[0].state == TrialState.FAIL
    assert study_storage.summary(trials, storage or "j")["optuna_trials"]["results"] == 4
    got = values(study_dir, storage)
    for key, value in one_worker.items():  # the killed trial resumed to the same result
        np.testing.assert_allclose(got[key], value, rtol=1e-5, err_msg=str(key))
    assert (study_dir / "results.json").is_file()


def test_two_workers_on_a_journal_file_lose_no_trial_when_one_is_killed(
    corpus, one_worker, tmp_path
):
    study_dir = tmp_path / "study"
    two_workers_one_killed(study_dir, None, corpus, one_worker)
    assert (study_dir / study_storage.JOURNAL).is_file()


def test_two_workers_on_postgresql_lose_no_trial_when_one_is_killed(corpus, one_worker, tmp_path):
    with postgres_server() as url:
        two_workers_one_killed(tmp_path / "study", url, corpus, one_worker)
        assert not (tmp_path / "study" / study_storage.JOURNAL).exists()
        # a machine joins with the URL alone: the study's definition is in the database
        assert values(tmp_path / "elsewhere" / "study", url) == values(tmp_path / "study", url)
