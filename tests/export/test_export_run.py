"""`pipelines.export.export_run`: a trained run directory to TFLite with its vocabulary."""

import json
import os

import numpy as np
import pytest

from pipelines import text, train
from pipelines.export import EXPORT_DIR, export_run
from pipelines.text import TextConfig
from zoo.export import TFLiteStepper, generate, read_metadata
from zoo.export.fusion import FUSED_OP

LINE = "To be, or not to be, that is the question: whether 'tis nobler in the mind.\n"


@pytest.mark.slow
def test_export_run_writes_a_calibrated_tflite_with_the_vocabulary(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(LINE * 40)
    run_dir = str(tmp_path / "run")
    train.train(
        TextConfig(
            data=str(corpus),
            run_dir=run_dir,
            size="tiny",
            cell="cifg_lstm",
            seq_len=16,
            batch_size=4,
            epochs=1,
            steps=3,
            validation_steps=1,
        ),
        verbose=0,
    )

    manifest = export_run(run_dir, format="tflite", calibration_windows=2)

    export_dir = os.path.join(run_dir, EXPORT_DIR)
    assert sorted(os.listdir(export_dir)) == ["manifest.json", "model.tflite"]
    with open(os.path.join(export_dir, "manifest.json")) as f:
        assert json.load(f) == manifest
    vocab = text.Vocabulary.load(os.path.join(run_dir, text.VOCAB))
    metadata = manifest["metadata"]
    assert (metadata["vocabulary"], metadata["level"], metadata["task"]) == (
        vocab.tokens,
        "char",
        "text",
    )
    assert manifest["signatures"]["predict"]["inputs"]["x"]["shape"] == [1, 16]
    parity = manifest["files"]["model.tflite"]["parity"]
    assert parity["sequences"] == 2 and max(parity["max_abs_diff"].values()) <= 1e-4
    assert FUSED_OP in manifest["files"]["model.tflite"]["ops"]
    assert np.isclose(parity["bits_per_token"]["tflite"], parity["bits_per_token"]["keras"])

    # On-device decoding needs nothing but the .tflite file: it carries the vocabulary.
    embedded = json.loads(read_metadata(os.path.join(export_dir, "model.tflite"))["lstm_zoo.json"])
    assert embedded["metadata"]["vocabulary"] == vocab.tokens
    assert embedded["signatures"] == manifest["signatures"]
    stepper = TFLiteStepper(os.path.join(export_dir, "model.tflite"))
    ids = generate(stepper, list(vocab.encode("To be")), length=10, temperature=0)
    assert len(vocab.decode(ids)) == 15
