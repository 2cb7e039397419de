"""The trained `harmony_lstm` preset exported to TFLite harmonises a held-out melody as Keras
does: the grammar mask is inside the file's `step`, and `harmonize` runs the file."""

import json

import numpy as np
import pytest
import tensorflow as tf

from pipelines import datasets
from pipelines import presets as preset_runs
from pipelines.export import export_run
from pipelines.music.harmony import harmonize
from zoo import presets
from zoo.export import TFLiteStepModel, read_metadata
from zoo.models.harmony import SATBVocabulary

QUARTERS = 16
# float32 Keras (oneDNN) and LiteRT (XNNPACK) sum the same products in other orders: 3.3e-6
# at most on these logits (up to 8.8 in size), whose closest greedy choice is 0.005 apart;
# 1e-4 is the export's own float32 tolerance.
TOLERANCE = 1e-4


def _held_out_soprano():
    """The first QUARTERS quarter notes (per 16th note) of the first test-split chorale, with
    its fermatas."""
    piece = next(iter(datasets.examples("zoo_bach_chorales", "test")))
    steps = 4 * QUARTERS
    return np.asarray(piece["grid"])[:steps, 0], np.asarray(piece["fermata"])[:steps]


def _step_logits(step, initial_state, tokens):
    """The logits (len(tokens), vocab) each token's step gives, from SEP and zero states."""
    states, logits = initial_state, []
    for token in [SATBVocabulary.SEP, *tokens[:-1]]:
        output, states = step(np.array([token], np.int32), states)
        logits.append(np.asarray(output)[0])
    return np.stack(logits)


def test_exported_preset_harmonises_a_held_out_melody_as_keras_does(tmp_path):
    out_dir = tmp_path / "export"
    # As `lstm-zoo export --preset=harmony_lstm` does, on the first 8 frames of 2 held-out
    # chorales (a `predict` window of 40 tokens, not 640: tracing it is most of the time).
    manifest = export_run(
        preset_runs.run_dir("harmony_lstm"),
        out_dir,
        format="tflite",
        seq_len=40,
        calibration_windows=2,
    )
    parity = manifest["files"]["model.tflite"]["parity"]
    assert manifest["quality_gate"]["metric"] == "nats_per_step"
    assert max(parity["max_abs_diff"].values()) <= TOLERANCE
    assert abs(parity["nats_per_step"]["tflite"] - parity["nats_per_step"]["keras"]) < 1e-3
    embedded = json.loads(read_metadata(out_dir / "model.tflite")["lstm_zoo.json"])
    assert embedded["metadata"]["satb_vocabulary"] == SATBVocabulary().metadata()

    keras_model = presets.load_model("harmony_lstm")
    file_model = TFLiteStepModel(out_dir / "model.tflite")
    melody, fermata = _held_out_soprano()
    expected = harmonize(keras_model, melody, fermata, temperature=0)
    harmonised = harmonize(file_model, melody, fermata, temperature=0)
    np.testing.assert_array_equal(harmonised, expected)
    np.testing.assert_array_equal(harmonised[:, 0], melody)
    with pytest.raises(ValueError, match="batch of 1"):
        file_model.initial_state(2)

    # The file alone gives the grammar-masked distribution, step by step along that chorale.
    vocabulary = SATBVocabulary()
    tokens = vocabulary.encode(expected[::4], fermata.reshape(-1, 4).any(1))
    grammar = vocabulary.grammar()[[vocabulary.SEP, *tokens[:-1]]]
    keras_step = tf.function(keras_model.step, reduce_retracing=True)
    keras_logits = _step_logits(keras_step, keras_model.initial_state(1), tokens)
    file_logits = _step_logits(file_model.step, file_model.initial_state(1), tokens)
    assert (file_logits[~grammar] < -1e8).all()
    np.testing.assert_allclose(file_logits[grammar], keras_logits[grammar], atol=TOLERANCE)
