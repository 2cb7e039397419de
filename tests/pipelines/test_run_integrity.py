"""Nothing a user types loses data or silently trains the wrong model (tiny text runs)."""

import dataclasses
import json
import os
import zipfile

import keras
import numpy as np
import pytest

from pipelines import callbacks, cli, rundir, train
from pipelines.text import TextConfig


def weights(path):
    return [np.asarray(w) for w in keras.models.load_model(path).get_weights()]


def tiny_flags(tiny, run_dir, *extra):
    return [
        "train",
        f"--data={tiny.data}",
        f"--run_dir={run_dir}",
        "--size=tiny",
        "--seq_len=16",
        "--batch_size=8",
        "--epochs=1",
        "--steps=3",
        "--validation_steps=1",
        *extra,
    ]


def one_line_error(capsys, code, status=1):
    """The error line of a command that exited with `status`: one line, no traceback."""
    err = capsys.readouterr().err.strip()
    assert code == status, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_failed_first_attempt_leaves_nothing_behind(tiny, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("abc")
    run_dir = tmp_path / "run"
    flags = tiny_flags(tiny, run_dir)
    code = cli.run([flags[0], f"--data={short}", *flags[2:]])
    assert "shorter than one window" in one_line_error(capsys, code)
    assert not run_dir.exists()
    assert cli.run(tiny_flags(tiny, run_dir)) == 0
    vocab = json.loads((run_dir / "vocab.json").read_text())["tokens"]
    assert len(vocab) > 20 and "Æ" in vocab  # built from the corpus used, not a leftover


def test_run_directory_with_foreign_files_or_a_run_is_refused(tiny, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code = cli.run(tiny_flags(tiny, folder))
    assert "not an lstm-zoo run (notes.txt)" in one_line_error(capsys, code)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(folder)) == ["notes.txt"]


def test_resume_continues_the_run_as_saved(tiny, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert cli.run(tiny_flags(tiny, run_dir, "--cell=lstm", "--units=16")) == 0
    config = json.loads((run_dir / "config.json").read_text())
    # No flags but --resume: the saved run goes on (its data, cell and sizes).
    assert cli.run(["train", f"--run_dir={run_dir}", "--resume", "--epochs=2"]) == 0
    capsys.readouterr()
    resumed = json.loads((run_dir / "config.json").read_text())
    assert {k: resumed[k] for k in ("data", "cell", "units", "epochs")} == {
        "data": config["data"],
        "cell": "lstm",
        "units": 16,
        "epochs": 2,
    }
    assert len(resumed["invocations"]) == 2 and resumed["invocations"][1]["resume"]
    # Architecture, task or data changes are refused, and config.json is left as it was.
    code = cli.run(["train", f"--run_dir={run_dir}", "--resume", "--cell=gru", "--units=64"])
    assert "--cell=gru (the run has lstm)" in one_line_error(capsys, code)
    code = cli.run(["train", "--task=translation", f"--run_dir={run_dir}", "--resume"])
    assert "holds a text run" in one_line_error(capsys, code, status=2)
    code = cli.run(["train", f"--run_dir={run_dir}", "--resume", "--learning_rate=nan"])
    assert "--learning_rate=nan" in one_line_error(capsys, code)
    assert json.loads((run_dir / "config.json").read_text()) == resumed
    # The data changed: refused.
    with open(os.path.join(tiny.data, "doc0.txt"), "a") as f:
        f.write("more")
    code = cli.run(["train", f"--run_dir={run_dir}", "--resume", "--epochs=3"])
    assert "changed since" in one_line_error(capsys, code)


def test_resume_position_comes_from_the_checkpoint(tiny, tmp_path):
    config = dataclasses.replace(tiny, epochs=2, steps=4, validation_steps=1)
    train.train(config, verbose=0)
    train.train(dataclasses.replace(config, run_dir=str(tmp_path / "b"), epochs=1), verbose=0)
    os.remove(tmp_path / "b" / "metrics.json")
    _, metrics = train.train(
        dataclasses.replace(config, run_dir=str(tmp_path / "b"), resume=True), verbose=0
    )
    assert [h["epoch"] for h in metrics["history"]] == [2]
    for a, b in zip(weights(tmp_path / "run/last.keras"), weights(tmp_path / "b/last.keras")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_interrupt_saves_last_keras_and_resume_is_exact(tiny, tmp_path, monkeypatch):
    config = dataclasses.replace(tiny, epochs=2, steps=4, validation_steps=1)
    train.train(dataclasses.replace(config, run_dir=str(tmp_path / "straight")), verbose=0)
    calls = []

    def interrupt(self, batch, logs=None):
        calls.append(batch)
        if len(calls) == 6:  # epoch 2, batch 2
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.NaNGuard, "on_train_batch_end", interrupt)
    with pytest.raises(train.TrainingInterrupted, match="Interrupted at step 6.*--resume"):
        train.train(config, verbose=0)
    monkeypatch.undo()
    assert int(keras.models.load_model(tmp_path / "run/last.keras").optimizer.iterations) == 6
    train.train(dataclasses.replace(config, resume=True), verbose=0)
    for a, b in zip(
        weights(tmp_path / "straight/last.keras"), weights(tmp_path / "run/last.keras")
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--batch_size=0", "--batch_size=0: must be between 1"),
        ("--batch_size=-3", "--batch_size=-3: must be between 1"),
        ("--seq_len=0", "--seq_len=0: must be between 1"),
        ("--steps=-2", "--steps=-2: must be between 0"),
        ("--epochs=0", "--epochs=0: must be between 1"),
        ("--max_tokens=0", "--max_tokens=0: must be at least 2"),
        ("--units=1000000000", "--units=1000000000: must be between 1"),
        ("--units=60000", "--units=60000: about"),
        ("--cell=../../x", "--cell=../../x: unknown cell"),
        ("--level=byte", "level"),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(
    tiny, tmp_path, capsys, flag, message, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code = cli.run(["train", f"--data={tiny.data}", "--size=tiny", flag])
    assert message in one_line_error(capsys, code, status=code if code in (1, 2) else 1)
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def trained(tiny):
    train.train(dataclasses.replace(tiny, epochs=1, steps=2, validation_steps=1), verbose=0)
    return tiny.run_dir


def test_commands_report_bad_input_in_one_line(trained, tmp_path, capsys):
    cases = [
        (["sample", f"--run_dir={trained}", "--text=hello"], "Unknown command line flag 'text'"),
        (["sample", f"--run_dir={trained}", "--beam_size=4"], "'beam_size'"),
        (["sample", f"--run_dir={trained}", "--length=1000000000"], "--length=1000000000"),
        (["export", f"--run_dir={trained}", "--seq_len=0"], "--seq_len=0"),
        (
            ["export", f"--run_dir={trained}", f"--out_dir={trained}"],
            "holds files that are not an lstm-zoo export",
        ),
        (["evaluate", f"--run_dir={tmp_path / 'nowhere'}"], "nowhere/config.json: no such file"),
        (["train", "--data=/no/such/corpus", f"--run_dir={tmp_path / 'r'}"], "/no/such/corpus"),
    ]
    before = sorted(os.listdir(trained))
    for args, message in cases:
        code = cli.run(args)
        assert message in one_line_error(capsys, code, status=code if code in (1, 2) else 1)
    assert sorted(os.listdir(trained)) == before


def test_corrupt_files_are_named_and_an_intact_checkpoint_is_used(trained, tmp_path, capsys):
    best = os.path.join(trained, "best.keras")
    with open(best, "wb") as f:
        f.write(b"PK\x03\x04 truncated")
    model = rundir.load_checkpoint(trained)  # falls back to last.keras
    assert model.count_params() > 0
    with open(os.path.join(trained, "last.keras"), "wb"):
        pass
    code = cli.run(["evaluate", f"--run_dir={trained}"])
    err = one_line_error(capsys, code)
    assert "best.keras: unreadable checkpoint" in err and "last.keras" in err

    config = os.path.join(trained, "config.json")
    with open(config, "w") as f:
        f.write("[1, 2]")
    code = cli.run(["evaluate", f"--run_dir={trained}"])
    assert f"{config}: expected an object in JSON" in one_line_error(capsys, code)
    with open(config, "w") as f:
        f.write('{"task": "text",')
    code = cli.run(["sample", f"--run_dir={trained}"])
    assert f"{config}: not valid JSON" in one_line_error(capsys, code)


def test_a_checkpoint_naming_an_unknown_class_is_refused(trained, capsys):
    last = os.path.join(trained, "last.keras")
    with zipfile.ZipFile(last) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["config.json"] = files["config.json"].replace(b"LanguageModel", b"NoSuchModel")
    for name in ("best.keras", "last.keras"):
        with zipfile.ZipFile(os.path.join(trained, name), "w") as archive:
            for member, data in files.items():
                archive.writestr(member, data)
    code = cli.run(["sample", f"--run_dir={trained}"])
    assert "NoSuchModel" in one_line_error(capsys, code)


def test_vocabulary_that_does_not_match_the_model_is_refused(trained, capsys):
    path = os.path.join(trained, "vocab.json")
    vocab = json.loads(open(path).read())
    vocab["tokens"] = vocab["tokens"][:-2]
    with open(path, "w") as f:
        json.dump(vocab, f)
    for command in ("sample", "evaluate"):
        code = cli.run([command, f"--run_dir={trained}"])
        assert "vocabulary holds" in one_line_error(capsys, code)
    with open(path, "w") as f:
        f.write('{"tokens": ["a",')
    code = cli.run(["sample", f"--run_dir={trained}"])
    assert f"{path}: not valid JSON" in one_line_error(capsys, code)
    os.remove(path)
    code = cli.run(["evaluate", f"--run_dir={trained}"])
    assert "vocab.json: missing from the run directory" in one_line_error(capsys, code)
    assert not os.path.exists(path)


def test_config_class_validates_in_the_library_too():
    with pytest.raises(ValueError, match="--batch_size=0"):
        TextConfig(batch_size=0)
