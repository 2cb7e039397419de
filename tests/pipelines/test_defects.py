"""Each kind of defect a hostile pass found, fixed where it arises: one line, nothing lost."""

import dataclasses
import json
import os

import numpy as np
import pytest

import zoo.presets
from pipelines import callbacks, cli, presets, train
from tests.pipelines.test_run_integrity import one_line_error, tiny_flags


@pytest.fixture
def made(tiny, tmp_path, monkeypatch):
    """A preset `tiny_text` in a private presets folder and cache."""
    monkeypatch.setattr(zoo.presets, "ROOT", tmp_path / "presets")
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "presets").mkdir()
    train.train(dataclasses.replace(tiny, epochs=1, steps=2, validation_steps=1), verbose=0)
    presets.make("tiny_text", tiny.run_dir, "a tiny test model")
    return zoo.presets.directory("tiny_text")


def test_a_truncated_preset_file_is_named(made, capsys):
    weights = made / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(ValueError, match="weights.npz: not the file preset tiny_text shipped"):
        zoo.presets.load("tiny_text")
    code = cli.run(["sample", "--preset=tiny_text", "--length=5"])
    assert "weights.npz: not the file preset tiny_text shipped" in one_line_error(capsys, code)


def test_an_unlisted_truncated_weights_file_is_named_too(made):
    card = json.loads((made / "card.json").read_text())
    del card["files"]  # a preset made by hand, without digests
    (made / "card.json").write_text(json.dumps(card))
    (made / "weights.npz").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="weights.npz: unreadable weights"):
        zoo.presets.load_model("tiny_text")


def test_a_missing_vocabulary_is_named_not_rebuilt(made, capsys):
    os.remove(made / "vocab.json")
    with pytest.raises(FileNotFoundError, match="vocab.json: missing from preset tiny_text"):
        zoo.presets.load("tiny_text")
    code = cli.run(["evaluate", "--preset=tiny_text"])
    assert "vocab.json: missing from preset" in one_line_error(capsys, code)


def test_one_broken_card_hides_no_other_preset(made, capsys):
    other = made.parent / "other"
    other.mkdir()
    (other / "card.json").write_text('{"task": ')
    assert cli.run(["presets"]) == 0
    out = capsys.readouterr().out
    assert "tiny_text" in out and "a tiny test model" in out
    assert "other" in out and "unusable" in out and "not valid JSON" in out


def test_the_preset_cache_follows_every_file_not_only_the_weights(made):
    first = presets.run_dir("tiny_text")
    vocab = json.loads((made / "vocab.json").read_text())
    vocab["tokens"] = vocab["tokens"][::-1]
    (made / "vocab.json").write_text(json.dumps(vocab))
    card = json.loads((made / "card.json").read_text())
    card["files"]["vocab.json"] = zoo.presets.digest(made / "vocab.json")
    (made / "card.json").write_text(json.dumps(card))
    second = presets.run_dir("tiny_text")
    assert second != first
    assert json.loads(open(os.path.join(second, "vocab.json")).read()) == vocab


def test_a_batch_larger_than_the_corpus_is_refused(tiny, tmp_path, capsys):
    run_dir = tmp_path / "big"
    code = cli.run(tiny_flags(tiny, run_dir, "--batch_size=100000"))
    assert "--batch_size=100000: the training split holds" in one_line_error(capsys, code)
    assert not run_dir.exists()


@pytest.mark.parametrize("flag", ["--format=", "--quantize=", "--format=,"])
def test_an_empty_list_flag_is_refused(flag, capsys, tmp_path):
    code = cli.run(["export", f"--run_dir={tmp_path}", flag])
    assert "is empty" in one_line_error(capsys, code, status=2)


@pytest.fixture
def trained(tiny):
    train.train(dataclasses.replace(tiny, epochs=1, steps=2, validation_steps=1), verbose=0)
    return tiny.run_dir


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cell", "gru", "edited by hand: cell='gru'"),
        ("units", 48, "edited by hand: units=48"),
        ("seq_len", 12, "edited by hand: seq_len=12"),
    ],
)
def test_a_config_edited_by_hand_is_refused_on_resume(trained, capsys, field, value, message):
    path = os.path.join(trained, "config.json")
    saved = json.loads(open(path).read())
    with open(path, "w") as f:
        json.dump({**saved, field: value}, f)
    code = cli.run(["train", f"--run_dir={trained}", "--resume", "--epochs=2"])
    assert message in one_line_error(capsys, code)


def test_a_checkpoint_of_another_model_is_refused_on_resume(trained, tmp_path, tiny, capsys):
    other = dataclasses.replace(
        tiny, run_dir=str(tmp_path / "gru"), cell="gru", epochs=1, steps=2, validation_steps=1
    )
    train.train(other, verbose=0)
    os.replace(tmp_path / "gru" / "last.keras", os.path.join(trained, "last.keras"))
    code = cli.run(["train", f"--run_dir={trained}", "--resume", "--epochs=2"])
    assert "last.keras: holds another model than config.json" in one_line_error(capsys, code)


def test_a_resumed_epoch_records_the_losses_of_an_uninterrupted_one(tiny, tmp_path, monkeypatch):
    config = dataclasses.replace(tiny, epochs=2, steps=4, validation_steps=1)
    _, straight = train.train(dataclasses.replace(config, run_dir=str(tmp_path / "a")), verbose=0)
    calls = []

    def interrupt(self, batch, logs=None):
        calls.append(batch)
        if len(calls) in (5, 7):  # epoch 2 after batch 1, then again after batch 3
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.NaNGuard, "on_train_batch_end", interrupt)
    for _ in range(2):
        with pytest.raises(train.TrainingInterrupted):
            train.train(config, verbose=0)
        config = dataclasses.replace(config, resume=True)
    monkeypatch.undo()
    _, resumed = train.train(config, verbose=0)
    for a, b in zip(straight["history"], resumed["history"]):
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-5)
    assert "interrupted" not in json.loads(
        open(os.path.join(config.run_dir, "metrics.json")).read()
    )


def test_evaluate_refuses_a_preset_measured_on_another_dataset_version(made, capsys):
    card = json.loads((made / "card.json").read_text())
    assert card["dataset"]["name"] == "zoo_text_files"
    card["dataset"]["version"] = "0.9.0"
    (made / "card.json").write_text(json.dumps(card))
    code = cli.run(["evaluate", "--preset=tiny_text"])
    assert "measured on zoo_text_files 0.9.0" in one_line_error(capsys, code)
