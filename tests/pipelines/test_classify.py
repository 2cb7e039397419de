"""The classify task from a clean clone: train, evaluate, sample and export at tiny settings;
bad input is one line and writes nothing."""

import json
import os

import numpy as np
import pytest

from pipelines import cli
from pipelines.classify import ClassifyConfig
from pipelines.classify_data import class_weights
from pipelines.train import evaluate, sample, train


def gestures_csv(path, sequences=36, seed=0):
    """A long-format CSV of 3 separable classes of variable length, 2 channels."""
    rng = np.random.default_rng(seed)
    rows = ["sequence_id,t,ax,ay,label"]
    for i in range(sequences):
        label, length = "abc"[i % 3], int(rng.integers(6, 14))
        for t in range(length):
            ax = np.sin(t * (1 + i % 3)) + 0.1 * rng.normal()
            rows.append(f"g{i},{t},{ax:.4f},{(i % 3) - 1 + 0.1 * rng.normal():.4f},{label}")
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained once for this module's tests, in its own TFDS data directory."""
    folder = tmp_path_factory.mktemp("classify")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFDS_DATA_DIR", str(folder / "tfds"))
        config = ClassifyConfig(
            data=gestures_csv(folder / "gestures.csv"),
            units=8,
            fcn=True,
            filters=4,
            pooling="attention",
            epochs=2,
            steps=3,
            batch_size=8,
            learning_rate=1e-2,
            run_dir=str(folder / "run"),
        )
        _, metrics = train(config, verbose=0)
    return config, metrics


@pytest.fixture
def tiny(trained, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", os.path.join(os.path.dirname(trained[0].run_dir), "tfds"))
    return trained[0]


def test_train_evaluate_sample_and_export(tiny, trained, tmp_path):
    test = trained[1]["test"]
    assert {"accuracy", "macro_f1", "balanced_accuracy", "loss"} <= set(test)
    assert test["accuracy"] > 0.4  # three easy classes, above chance (1/3)
    assert os.path.getsize(os.path.join(tiny.run_dir, "confusion.png")) > 1000
    assert json.load(open(os.path.join(tiny.run_dir, "classes.json"))) == ["a", "b", "c"]
    assert evaluate(tiny.run_dir)["accuracy"] == pytest.approx(test["accuracy"])
    shown = sample(tiny.run_dir, count=2, output=str(tmp_path / "confusion"))
    assert shown.count("true ") == 2 and "accuracy" in shown
    assert os.path.isfile(tmp_path / "confusion.png")
    assert cli.run(["export", f"--run_dir={tiny.run_dir}"]) == 0
    manifest = json.load(open(os.path.join(tiny.run_dir, "export", "manifest.json")))
    assert set(manifest["files"]) == {"saved_model", "model.tflite", "streaming.tflite"}
    assert manifest["files"]["model.tflite"]["accuracy"] == pytest.approx(test["accuracy"])
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in manifest["files"]["model.tflite"]["ops"]


def test_a_file_with_an_unknown_label_is_refused_at_test_time(tiny, tmp_path, capsys):
    other = tmp_path / "other.csv"
    other.write_text("sequence_id,t,ax,ay,label\nn1,0,1,2,a\nn2,0,1,2,zebra\n")
    assert cli.run(["evaluate", f"--run_dir={tiny.run_dir}", f"--data={other}"]) != 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{other}: row 3: label 'zebra' never occurs in the training data" in line


@pytest.mark.parametrize(
    "content, expected",
    [
        ("sequence_id,t,ax,ay\ng1,0,1,2\n", "row 1: no 'label' column"),
        ("sequence_id,t,ax,ay,label\ng1,0,1,a\n", "row 2: 4 fields, the header has 5"),
        ("sequence_id,t,ax,ay,label\ng1,0,1,NaN,a\n", "row 2: column ay: 'NaN'"),
        ("sequence_id,t,ax,ay,label\n", "an empty sequence"),
    ],
)
def test_bad_input_is_one_line_and_writes_no_run(tmp_path, monkeypatch, capsys, content, expected):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    data = tmp_path / "bad.csv"
    data.write_text(content)
    run_dir = tmp_path / "run"
    code = cli.run(
        [
            "train",
            "--task=classify",
            f"--data={data}",
            f"--run_dir={run_dir}",
            "--epochs=1",
            "--steps=1",
            "--units=4",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith(f"lstm-zoo: error: {data}: ") and expected in err
    assert "\n" not in err and not run_dir.exists()
    assert not list((tmp_path / "tfds").rglob("*.tfrecord*"))


def test_balanced_class_weights():
    np.testing.assert_allclose(class_weights(np.array([0, 0, 0, 1]), 3), [4 / 9, 4 / 3, 1.0])
