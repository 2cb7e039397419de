"""The data layer: every corpus a TFDS dataset, prepared once, its splits pinned."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

from pipelines import datasets

PACKAGED = datasets.packaged()


@pytest.mark.parametrize("name", PACKAGED)
def test_tfds_load_works_offline_and_splits_are_pinned(name):
    """`tfds.load` after `import pipelines.datasets`; every split as fingerprinted, so a split
    that changes without a new version fails here."""
    pinned = json.loads(datasets.FINGERPRINTS.read_text())[name]
    found = datasets.prepare(name)
    assert str(found.info.version) == pinned["version"], "a new version needs new fingerprints"
    test = tfds.load(name, split="test", data_dir=datasets.data_dir(), try_gcs=False)
    assert len(list(test)) == pinned["splits"]["test"]["examples"]
    assert datasets.fingerprints(name) == pinned
    info = found.info
    assert info.homepage and info.citation and info.redistribution_info.license
    assert info.release_notes
    assert info.description and str(info.version) in info.release_notes


def test_every_packaged_dataset_is_pinned():
    assert sorted(json.loads(datasets.FINGERPRINTS.read_text())) == PACKAGED


def test_a_local_corpus_is_prepared_once_and_again_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(4):
        (corpus / f"doc{i}.txt").write_text(f"document {i} " * 50)
    rows = datasets.examples("zoo_text_files", "train", corpus)
    assert [r["name"] for r in rows] and not rows[0]["cut"]
    prepared = datasets.builder("zoo_text_files", corpus).data_dir

    def no_work(self, *args, **kwargs):
        raise AssertionError("prepared again")

    with monkeypatch.context() as patched:
        patched.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_work)
        assert datasets.examples("zoo_text_files", "train", corpus) == rows
    (corpus / "doc0.txt").write_text("changed " * 50)
    assert datasets.builder("zoo_text_files", corpus).data_dir != prepared
    assert datasets.examples("zoo_text_files", "train", corpus) != rows


def test_a_damaged_prepared_dataset_is_named_with_how_to_rebuild(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    (tmp_path / "one.txt").write_text("a few words of text " * 100)
    folder = datasets.builder("zoo_text_files", tmp_path / "one.txt")
    datasets.prepare("zoo_text_files", tmp_path / "one.txt")
    shard = next(p for p in os.listdir(folder.data_dir) if "train.tfrecord" in p)
    os.remove(os.path.join(folder.data_dir, shard))
    with pytest.raises(ValueError, match=f"{folder.data_dir}: a damaged prepared dataset.*rm -r"):
        datasets.examples("zoo_text_files", "train", tmp_path / "one.txt")
    with open(os.path.join(folder.data_dir, "dataset_info.json"), "w") as f:
        f.write("{")
    with pytest.raises(ValueError, match="dataset_info.json unreadable"):
        datasets.prepare("zoo_text_files", tmp_path / "one.txt")


def test_a_failed_preparation_leaves_nothing_in_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match="bad.txt: binary file"):
        datasets.examples("zoo_text_files", "train", tmp_path / "bad.txt")
    left = [
        d for d, _, files in os.walk(tmp_path / "tfds") for f in files if not f.endswith(".lock")
    ]
    assert not left


def test_import_zoo_and_help_do_not_import_tensorflow_datasets():
    script = (
        "import sys, zoo, pipelines.cli; pipelines.cli.run(['--help']); "
        "print('tensorflow_datasets' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().endswith("False")
