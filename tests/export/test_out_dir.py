"""Exports never delete a user's files: `out_dir` is new, empty, or an earlier export replaced."""

import json
import os
import re

import keras
import numpy as np
import pytest

import zoo
from zoo import export
from zoo.export import exporters as export_module

VOCAB, TIME = 12, 5


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(VOCAB, 4),
            keras.layers.RNN(zoo.cells.create("gru", 4), return_sequences=True),
            keras.layers.Dense(VOCAB),
        ]
    )
    x = np.random.default_rng(0).integers(0, VOCAB, (1, TIME)).astype(np.int32)
    return model, x


def run_export(tiny, out, **kwargs):
    model, x = tiny
    return export.export_model(
        model, out, format="tflite", representative_data=[x], seq_len=TIME, **kwargs
    )


def snapshot(folder):
    """{relative path: bytes} of every file under `folder`."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def leftovers(parent):
    return [name for name in os.listdir(parent) if name.startswith(".export")]


@pytest.mark.parametrize(
    "files, example",
    [
        ({"notes.txt": b"mine"}, "notes.txt"),
        (
            {
                "config.json": b"{}",
                "best.keras": b"PK",
                "vocab.json": b"[]",
                "logs/events": b"x",
                "manifest.json": b"{}",
                "model.tflite": b"x",
            },
            "best.keras",
        ),  # a run directory
    ],
)
def test_a_folder_of_user_files_is_refused_before_any_work(
    tiny, tmp_path, monkeypatch, files, example
):
    out = tmp_path / "mine"
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)

    def no_work(*args, **kwargs):
        raise AssertionError("conversion work started before the out_dir check")

    monkeypatch.setattr(export_module, "InferenceModule", no_work)
    message = (
        f"{out}: holds files that are not an lstm-zoo export (e.g. {example}); "
        "choose an empty or new --out_dir"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        run_export(tiny, out)
    assert snapshot(out) == files
    assert os.listdir(tmp_path) == ["mine"]


def test_new_and_empty_folders_are_fine(tiny, tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("empty", "new/nested"):
        manifest = run_export(tiny, tmp_path / name)
        assert (manifest["format"], manifest["kind"]) == ("lstm-zoo-export", "model")
        assert sorted(os.listdir(tmp_path / name)) == ["manifest.json", "model.tflite"]
    assert not leftovers(tmp_path) and not leftovers(tmp_path / "new")


def test_re_export_replaces_a_previous_export(tiny, tmp_path):
    out = tmp_path / "export"
    run_export(tiny, out, quantize=["none", "float16"], metadata={"run": 1})
    assert sorted(os.listdir(out)) == ["manifest.json", "model.tflite", "model_float16.tflite"]
    run_export(tiny, out, metadata={"run": 2})
    assert sorted(os.listdir(out)) == ["manifest.json", "model.tflite"]
    assert json.loads((out / "manifest.json").read_text())["metadata"] == {"run": 2}
    assert os.listdir(tmp_path) == ["export"]


def test_a_failed_export_leaves_the_previous_one_intact(tiny, tmp_path, monkeypatch):
    out = tmp_path / "export"
    run_export(tiny, out, metadata={"run": 1})
    before = snapshot(out)

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(export_module.conversion, "convert", broken)
    with pytest.raises(RuntimeError, match="converter crashed"):
        run_export(tiny, out, metadata={"run": 2})
    assert snapshot(out) == before
    assert os.listdir(tmp_path) == ["export"]


def test_an_older_manifest_is_recognised_but_not_extra_files(tiny, tmp_path):
    out = tmp_path / "export"
    manifest = run_export(tiny, out)
    older = {k: v for k, v in manifest.items() if k not in ("format", "kind")}
    (out / "manifest.json").write_text(json.dumps(older))
    assert export.check_out_dir(out, "model")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(
        ValueError,
        match=r"holds files that are not an lstm-zoo export \(e.g. "
        r"notes.txt\)",
    ):
        run_export(tiny, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_what_check_out_dir_refuses(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="file: not a directory; choose an empty or new"):
        export.check_out_dir(tmp_path / "file", "model")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.tflite").write_bytes(b"x")
    with pytest.raises(ValueError, match="bare: holds no lstm-zoo export manifest.json;"):
        export.check_out_dir(bare, "model")
    (bare / "manifest.json").write_text('{"format": "lstm-zoo-export", "kind": "model"}')
    assert export.check_out_dir(bare, "model")
    with pytest.raises(ValueError, match="bare: holds an lstm-zoo model export, not a seq2seq"):
        export.check_out_dir(bare, "seq2seq")
    assert not export.check_out_dir(tmp_path / "new", "model")


def test_a_seq2seq_export_keeps_its_extra_files_replaceable(tmp_path):
    out = tmp_path / "translator"
    out.mkdir()
    (out / "model.tflite").write_bytes(b"x")
    (out / "subwords.model").write_bytes(b"sp")
    (out / "manifest.json").write_text(
        json.dumps(
            {"format": "lstm-zoo-export", "kind": "seq2seq", "extra_files": ["subwords.model"]}
        )
    )
    assert export.check_out_dir(out, "seq2seq")  # the manifest names its extra file
    older = {
        "signatures": {"encode": {}, "decode_step": {}},
        "start_id": 2,
        "files": {},
        "metadata": {"tokenizer": "subwords.model"},
    }
    (out / "manifest.json").write_text(json.dumps(older))
    assert export.check_out_dir(out, "seq2seq")  # before "extra_files": the tokenizer
    (out / "manifest.json").write_text(json.dumps({**older, "metadata": {}}))
    with pytest.raises(ValueError, match=r"\(e.g. subwords.model\)"):
        export.check_out_dir(out, "seq2seq")
    assert export.check_out_dir(out, "seq2seq", extra_files=["subwords.model"])


def test_the_previous_export_survives_a_failed_swap(tiny, tmp_path, monkeypatch):
    out = tmp_path / "export"
    run_export(tiny, out)
    before = snapshot(out)
    real_replace = os.replace

    def replace(source, target):
        if os.path.basename(source).startswith(".export-"):  # the new export moving in
            raise OSError("disk trouble")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk trouble"):
        run_export(tiny, out)
    assert snapshot(out) == before
    assert os.listdir(tmp_path) == ["export"]
