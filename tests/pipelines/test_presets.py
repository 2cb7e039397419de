"""Trained presets: made from a run, listed, loaded in Python and used by sample/evaluate/export."""

import json
import os

import numpy as np
import pytest

import zoo.presets
from pipelines import cli, presets, rundir, train

REQUIRED = (
    "name",
    "task",
    "cell",
    "parameters",
    "data",
    "command",
    "cpu_minutes",
    "test",
    "test_float32",
    "headline",
    "versions",
    "weights",
)


@pytest.fixture
def made(tiny, tmp_path, monkeypatch):
    """A preset `tiny_text` made from a tiny text run, in a private presets folder and cache."""
    monkeypatch.setattr(zoo.presets, "ROOT", tmp_path / "presets")
    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    (tmp_path / "presets").mkdir()
    train.train(tiny, verbose=0)
    return presets.make("tiny_text", tiny.run_dir, "a tiny test model")


def test_a_preset_keeps_its_run_metrics_in_float16(made, tiny):
    assert set(REQUIRED) <= set(made)
    assert zoo.presets.names() == ["tiny_text"]
    folder = zoo.presets.directory("tiny_text")
    with np.load(folder / "weights.npz") as weights:
        assert {weights[k].dtype for k in weights.files} == {np.dtype("float16")}
    float32 = made["test_float32"]["bits_per_char"]
    assert abs(made["test"]["bits_per_char"] - float32) < 0.01
    assert made["headline"] == {
        "metric": "stream_bits_per_char",
        "lower_is_better": True,
        "value": made["test"]["stream_bits_per_char"],
    }
    assert made["command"] and made["cpu_minutes"] >= 0 and made["steps"] == 20
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left


def test_load_generates_from_a_string(made):
    preset = zoo.presets.load("tiny_text")
    text = preset.generate("To be", length=30, temperature=0.8, seed=1)
    assert text.startswith("To be") and len(text) == 35
    assert text == preset.generate("To be", length=30, temperature=0.8, seed=1)
    assert preset.card["name"] == "tiny_text" and len(preset.vocabulary) > 20
    with pytest.raises(KeyError, match="Unknown preset 'nope'. Known presets: tiny_text"):
        zoo.presets.load("nope")


def test_commands_take_a_preset_instead_of_a_run(made, tmp_path, monkeypatch, capsys):
    assert cli.run(["presets"]) == 0
    out = capsys.readouterr().out
    assert "tiny_text" in out and "a tiny test model" in out and "bits_per_char" in out
    assert cli.run(["sample", "--preset=tiny_text", "--prompt=To", "--length=12", "--seed=0"]) == 0
    assert len(capsys.readouterr().out.strip()) >= 2
    assert cli.run(["evaluate", "--preset=tiny_text"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    for metric in ("bits_per_char", "stream_bits_per_char"):
        assert evaluated[metric] == pytest.approx(made["test"][metric], abs=1e-5)
    monkeypatch.chdir(tmp_path)
    assert cli.run(["export", "--preset=tiny_text", "--format=tflite"]) == 0
    assert (tmp_path / "tiny_text-export" / "model.tflite").is_file()
    capsys.readouterr()
    assert cli.run(["evaluate", "--preset=nope"]) == 1
    assert "Unknown preset 'nope'" in capsys.readouterr().err
    assert cli.run(["evaluate", "--preset=tiny_text", f"--run_dir={tmp_path}"]) == 2
    assert "--run_dir or --preset, not both" in capsys.readouterr().err


@pytest.mark.parametrize("name", zoo.presets.names())
def test_shipped_presets_are_complete_and_small(name):
    card = zoo.presets.card(name)
    assert set(REQUIRED) <= set(card) and card["name"] == name
    assert card["headline"]["value"] == card["test"][card["headline"]["metric"]]
    folder = zoo.presets.directory(name)
    assert os.path.getsize(folder / "weights.npz") <= 10 * 2**20
    model = zoo.presets.load_model(name)
    assert model.count_params() == card["parameters"]


@pytest.mark.parametrize("name", zoo.presets.names())
def test_shipped_presets_export_to_tflite_with_parity(name, tmp_path, monkeypatch):
    from pipelines.export import export_run

    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    translator = zoo.presets.card(name)["task"] == "translation"
    # int8 on trained weights (for the translator: bits per target token, teacher-forced
    # along test references): the export raises QualityError if it loses more than 0.05.
    # A forecaster's int8 file loses about 0.2 of weighted quantile loss (its float inputs,
    # lags in units of the scale, get one int8 range per tensor): the gate refuses it, and
    # its dynamic-range file is the small one that must pass.
    smallest = "dynamic" if zoo.presets.card(name)["task"] == "forecast" else "int8"
    manifest = export_run(
        presets.run_dir(name),
        out_dir=str(tmp_path / "export"),
        format=["tflite"],
        seq_len=None if translator else 16,
        quantize=["none", smallest],
        calibration_windows=4 if translator else 16,
    )
    assert (tmp_path / "export" / "model.tflite").is_file()
    parity = manifest["files"]["model.tflite"]["parity"]
    assert max(parity["max_abs_diff"].values()) <= 1e-3
    if translator:
        assert parity["greedy_equal"] == 1.0
    assert abs(manifest["files"][f"model_{smallest}.tflite"]["quality_loss"]) <= 0.05


@pytest.mark.parametrize("name", ["en_es_lstm", "en_es_gru"])
def test_the_translation_presets_translate(name, tmp_path, capsys):
    preset = zoo.presets.load(name)
    spanish = preset.translate("And God said, Let there be light: and there was light.")
    assert "Dios" in spanish and "luz" in spanish
    english = tmp_path / "english.txt"
    english.write_text("The LORD is my shepherd; I shall not want.\n", encoding="utf-8")
    assert cli.run(["translate", f"--preset={name}", f"--input={english}"]) == 0
    assert "pastor" in capsys.readouterr().out


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"LSTM_ZOO_CACHE": "{tmp}/mine", "XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/mine"),
        ({"XDG_CACHE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/lstm-zoo"),
        ({"XDG_CACHE_HOME": "relative/xdg"}, "{tmp}/home/.cache/lstm-zoo"),  # invalid: ignored
        ({}, "{tmp}/home/.cache/lstm-zoo"),
    ],
)
def test_presets_are_built_in_the_user_cache_folder(tmp_path, monkeypatch, env, expected):
    for name in ("LSTM_ZOO_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    assert str(rundir.default_cache_dir()) == expected.format(tmp=tmp_path)


@pytest.mark.parametrize("name", ["en_es_lstm", "en_es_gru"])
def test_the_translation_presets_name_the_pinned_dataset_they_were_measured_on(name):
    from pipelines import datasets

    card = zoo.presets.check_files(name)  # card.json is not among the files it lists
    pinned = json.loads(datasets.FINGERPRINTS.read_text())["zoo_en_es_verses"]
    assert card["dataset"] == {"name": "zoo_en_es_verses", "version": pinned["version"]}
    assert "inputs" not in card  # the split is the dataset's: nothing to rebuild in the run
    presets.check_dataset(name)  # the prepared test split is the pinned one


def test_evaluate_refuses_a_prepared_test_split_other_than_the_pinned_one(
    tmp_path, monkeypatch, capsys
):
    from pipelines import datasets

    pinned = json.loads(datasets.FINGERPRINTS.read_text())
    pinned["zoo_shakespeare"]["splits"]["test"]["sha256"] = "0123456789abcdef"
    (tmp_path / "fingerprints.json").write_text(json.dumps(pinned))
    monkeypatch.setattr(datasets, "FINGERPRINTS", tmp_path / "fingerprints.json")
    assert cli.run(["evaluate", "--preset=shakespeare_gru"]) == 1
    error = capsys.readouterr().err.strip()
    assert "zoo_shakespeare" in error and "its test split (2 examples" in error
    assert "not the one preset shakespeare_gru was measured on (sha256 0123456789abcdef)" in error
    assert "\n" not in error


def test_the_forecaster_int8_file_is_refused_by_its_quality_gate(tmp_path, monkeypatch):
    from pipelines.export import export_run
    from zoo.export import QualityError

    monkeypatch.setenv("LSTM_ZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(QualityError, match="model_int8.tflite .* weighted_quantile_loss"):
        export_run(
            presets.run_dir("elecdemand_lstm"),
            out_dir=str(tmp_path / "export"),
            format=["tflite"],
            seq_len=16,
            quantize=["none", "int8"],
        )
    assert not (tmp_path / "export" / "model_int8.tflite").exists()
    assert (tmp_path / "export" / "model.tflite").is_file()
    gate = json.loads((tmp_path / "export" / "manifest.json").read_text())["quality_gate"]
    assert gate["metric"] == gate["unit"] == "weighted_quantile_loss"  # the model's own
