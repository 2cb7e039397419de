"""Variant studies: seeded draws, growing and resuming a study, and its statistics."""

import json
import math
import os

import numpy as np
import pytest

from pipelines import cli, rundir, study_report, study_storage, study_workers
from pipelines.study import SPACE, Dimension, Study, open_study, trial_outcome

CELLS = ["lstm", "gru"]


def tiny_study(corpus, trials=2, **fixed):
    fixed = {
        "data": str(corpus),
        "units": 8,
        "embedding_dim": 8,
        "layers": 1,
        "seq_len": 16,
        "batch_size": 8,
        "epochs": 2,
        "steps": 2,
        "validation_steps": 1,
        **fixed,
    }
    return Study(task="text", cells=CELLS, trials=trials, fixed=fixed)


def test_draws_are_seeded_in_range_and_independent_of_each_other():
    rate = Dimension("learning_rate", 1e-3, 3e-2, log=True)
    values = [rate.draw(0, trial) for trial in range(200)]
    assert values == [rate.draw(0, trial) for trial in range(200)]
    assert values != [rate.draw(1, trial) for trial in range(200)]
    assert 1e-3 <= min(values) and max(values) <= 3e-2
    # log-uniform: about half the draws fall below the geometric middle
    assert 0.35 < np.mean(np.array(values) < math.sqrt(3e-5)) < 0.65
    units = Dimension("units", 32, 256, log=True, integer=True)
    assert all(isinstance(units.draw(0, t), int) for t in range(20))
    # fixing one setting leaves the draws of the others as they were
    full = Study(task="text", cells=CELLS, trials=3)
    fixed = Study(task="text", cells=CELLS, trials=3, fixed={"units": 64})
    assert [d.name for d in full.space] == ["learning_rate", "units", "dropout"]
    for trial in range(3):
        assert fixed.settings(trial)["learning_rate"] == full.settings(trial)["learning_rate"]
        assert fixed.config(".", "gru", trial).units == 64
    assert {d.name for d in SPACE} >= {"learning_rate", "units", "input_noise", "dropout"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"fixed": {"cell": "gru"}}, "--cell: not a setting"),
        ({"fixed": {"bogus": 1}}, "--bogus: not a setting"),
        ({"cells": ["lstm", "lstm"]}, "distinct cell names"),
        ({"cells": ["lstm", "no_such_cell"]}, "--cell=no_such_cell: unknown cell"),
        ({"baseline": "nfg_lstm"}, "--baseline=nfg_lstm: not one of the studied cells"),
        ({"trials": 0}, "--trials=0: must be"),
        ({"fixed": {"epochs": 0}}, "--epochs=0: must be"),
    ],
)
def test_a_bad_study_is_refused_before_anything_trains(change, message):
    values = {"task": "text", "cells": CELLS, "trials": 2, **change}
    with pytest.raises(ValueError, match=message):
        Study(**values)


def test_a_study_grows_by_trials_and_cells_but_does_not_change(corpus, tmp_path):
    study_dir = tmp_path / "study"
    open_study(study_dir, tiny_study(corpus))
    grown = open_study(
        study_dir,
        Study(task="text", cells=["gru", "nfg_lstm"], trials=3, fixed=tiny_study(corpus).fixed),
    )
    assert grown.cells == ["lstm", "gru", "nfg_lstm"] and grown.trials == 3
    assert grown.reference == "lstm"  # the new cells' list does not move the baseline
    assert Study.load(study_dir) == grown
    assert (
        open_study(
            study_dir,
            Study(
                task="text", cells=["gru"], trials=1, baseline="gru", fixed=tiny_study(corpus).fixed
            ),
        ).reference
        == "gru"
    )
    with pytest.raises(ValueError, match="a study grows by --trials and --cells only"):
        open_study(study_dir, tiny_study(corpus, steps=3))


def test_study_runs_resumes_and_grows_from_the_command_line(corpus, tmp_path, capsys):
    study_dir = tmp_path / "study"
    flags = [
        "study",
        "--task=text",
        f"--data={corpus}",
        "--units=8",
        "--embedding_dim=8",
        "--layers=1",
        "--seq_len=16",
        "--batch_size=8",
        "--epochs=2",
        "--steps=2",
        "--validation_steps=1",
        "--cells=lstm,gru",
        "--trials=2",
        f"--study_dir={study_dir}",
    ]
    assert cli.run(flags) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert list(summary) == CELLS and summary["gru"]["finished"] == 2
    assert "p_value" in summary["gru"] and "p_value" not in summary["lstm"]
    assert captured.err.count("trial ") >= 4 and "| `gru` | 2 |" in captured.err
    for name in ("study.json", "results.json", "results.md", "boxplot.png", "hyperparameters.png"):
        assert (study_dir / name).stat().st_size > 100, name
    results = json.loads((study_dir / "results.json").read_text())
    assert results["trials"] == {"storage": "journal", "optuna_trials": {"results": 4}, "hosts": 1}
    # run again, nothing trains: the storage holds every result
    journal = (study_dir / "trials.journal").read_text()
    assert cli.run(["study", f"--study_dir={study_dir}"]) == 0
    assert "trial " not in capsys.readouterr().err.split("# Variant study")[0]
    assert (study_dir / "trials.journal").read_text() == journal
    # without its storage (a study from before storages), the run directories are read back
    # into a new one and an interrupted trial (no test metrics yet) is resumed
    (study_dir / "trials.journal").unlink()
    interrupted = study_dir / "gru" / "trial-01"
    metrics = rundir.read_metrics(interrupted)
    finished = (study_dir / "lstm" / "trial-00" / "metrics.json").stat().st_mtime_ns
    (interrupted / "metrics.json").write_text(
        json.dumps({k: v for k, v in metrics.items() if k != "test"})
    )
    assert cli.run(["study", f"--study_dir={study_dir}", "--trials=3"]) == 0
    err = capsys.readouterr().err
    assert "[1/6] lstm  trial 0" in err and "[4/6] gru  trial 1" in err
    assert "[5/6] lstm  trial 2" in err
    assert (study_dir / "lstm" / "trial-00" / "metrics.json").stat().st_mtime_ns == finished
    assert trial_outcome(interrupted)["test"] == metrics["test"]  # same weights, same score
    invocations = json.loads((interrupted / "config.json").read_text())["invocations"]
    assert [i["resume"] for i in invocations] == [False, True]
    assert json.loads((study_dir / "results.json").read_text())["cells"]["lstm"]["trials"] == 3
    # a changed setting is refused with one line
    assert cli.run([*flags[:-2], "--steps=5", f"--study_dir={study_dir}"]) == 1
    assert "a study grows by --trials and --cells only" in capsys.readouterr().err


def test_a_new_study_needs_cells_and_trials(tmp_path, capsys):
    assert cli.run(["study", f"--study_dir={tmp_path / 's'}", "--trials=2"]) == 2
    assert "needs --cells=A,B,... and --trials=N" in capsys.readouterr().err
    assert cli.run(["study", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--workers" in help_text and "--storage" in help_text and "--cell " not in help_text
    assert not (tmp_path / "s").exists()  # nothing written for a refused command
    storage = f"postgresql://zoo:secret@/zoo?host={tmp_path / 'nothing'}&port=5"
    assert (
        cli.run(
            [
                "study",
                f"--study_dir={tmp_path / 's'}",
                "--cells=lstm",
                "--trials=1",
                f"--storage={storage}",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert "cannot reach the database" in err and "secret" not in err and "\n" not in err


def fake_study(
    tmp_path, value, trials=8, cells=("vanilla_lstm", "nfg_lstm", "cifg_lstm"), failures=()
):
    """A study whose trials' test NLL is value(cell, settings), written without training: a
    worker reads the run directories' metrics into the storage."""
    study = Study(task="chorales", cells=list(cells), trials=trials, fixed={"epochs": 1})
    study_dir = tmp_path / "fake"
    for cell, trial in study.grid():
        run_dir = study.run_dir(study_dir, cell, trial)
        os.makedirs(run_dir)
        rundir.write_metrics(
            run_dir,
            test={"nll": value(cell, study.settings(trial), trial)},
            seconds=1.0,
            cpu_seconds=1.0,
        )
        if (cell, trial) in failures:
            rundir.write_metrics(run_dir, failure="diverged")
    open_study(study_dir, study)
    study_workers.work(study_dir, progress=lambda line: None)
    return study_dir


def test_analysis_finds_a_worse_cell_and_the_setting_that_matters(tmp_path):
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.02, (3, 12))

    def value(cell, settings, trial):
        penalty = {"vanilla_lstm": 0.0, "nfg_lstm": 0.5, "cifg_lstm": 0.0}[cell]
        index = ["vanilla_lstm", "nfg_lstm", "cifg_lstm"].index(cell)
        return (
            8.5
            + penalty
            + math.log(settings["learning_rate"] / 1e-2) ** 2 / 4
            + noise[index, trial]
        )

    results = study_report.analyze(fake_study(tmp_path, value, trials=12))
    cells = results["cells"]
    assert cells["nfg_lstm"]["significant"] == "worse" and cells["nfg_lstm"]["p_value"] < 0.05
    assert "significant" not in cells["cifg_lstm"] and cells["cifg_lstm"]["paired_p_value"] > 0.05
    assert cells["vanilla_lstm"]["finished"] == 12 and "p_value" not in cells["vanilla_lstm"]
    variance = results["variance"]
    assert variance["learning_rate"] > 0.2 and variance["learning_rate"] > 5 * max(
        variance["units"], variance["input_noise"], variance["dropout"]
    )
    assert variance["cell"] > 0.2
    assert abs(variance["cell"] + variance["trial"] + variance["cell_x_trial"] - 1) < 1e-3
    # fANOVA (Optuna's) agrees: the learning rate per cell, the cell and the rate pooled
    fanova = results["fanova"]
    assert (
        "FanovaImportanceEvaluator" in fanova["method"]
        and "estimator" in results["variance_method"]
    )
    for cell in ("vanilla_lstm", "nfg_lstm", "cifg_lstm"):
        shares = fanova["cells"][cell]
        assert max(shares, key=shares.get) == "learning_rate" and shares["learning_rate"] > 0.4
    pooled = fanova["pooled"]
    assert pooled["cell"] > 0.1 and pooled["learning_rate"] > 0.1, pooled
    assert sum(pooled.values()) <= 1.0001
    table = (tmp_path / "fake" / "results.md").read_text()
    assert "| `nfg_lstm` | 12 | **" in table and "(worse)" in table


def test_failed_trials_are_counted_and_left_out(tmp_path):
    def value(cell, settings, trial):
        return float("nan") if (cell, trial) == ("nfg_lstm", 0) else 8.0 + trial / 10

    study_dir = fake_study(tmp_path, value, trials=3, failures=[("nfg_lstm", 0)])
    results = study_report.analyze(study_dir)
    assert results["cells"]["nfg_lstm"]["failed"] == 1
    assert results["cells"]["nfg_lstm"]["finished"] == 2
    assert "(1 failed)" in (study_dir / "results.md").read_text()
    assert results["trials"]["optuna_trials"] == {"results": 9}


def test_a_pair_enqueued_twice_trains_once(tmp_path):
    def value(cell, settings, trial):
        return 8.0 + trial / 10

    study_dir = fake_study(tmp_path, value, trials=2, cells=("vanilla_lstm", "nfg_lstm"))
    trials = study_storage.connect(str(study_dir))
    # two workers that both find a pair missing enqueue it twice: the second copy is skipped
    for _ in range(2):
        trials.enqueue_trial({}, user_attrs={"cell": "gru", "trial": 0})
    open_study(study_dir, Study(task="chorales", cells=["gru"], trials=2, fixed={"epochs": 1}))
    for trial in range(2):
        run_dir = study_dir / "gru" / f"trial-{trial:02d}"
        os.makedirs(run_dir)
        rundir.write_metrics(str(run_dir), test={"nll": 9.0}, seconds=1.0, cpu_seconds=1.0)
    study_workers.work(study_dir, progress=lambda line: None)
    attempts = study_storage.by_pair(trials)[("gru", 0)]
    assert [study_storage.is_result(t) for t in attempts] == [True, False]
    assert attempts[1].user_attrs["skipped"] == f"a duplicate of trial {attempts[0].number}"
    assert len(study_storage.results(trials)) == 6
