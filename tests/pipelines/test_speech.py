"""Speech task: the espeak-ng dataset, log-mel features in tf.data, labels, a short CTC
training."""

import json
import shutil

import numpy as np
import pytest

from pipelines import datasets, speech, train
from pipelines.export import export_run

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng (installed by .ci/run)"
)


def test_utterances_are_seeded_and_featurised():
    assert speech.utterance(7, seed=1) == speech.utterance(7, seed=1)
    text, voice, speed, pitch = speech.utterance(7, seed=1, max_words=3)
    assert 1 <= len(text.split()) <= 3 and set(text) <= set(speech.ALPHABET)
    waveform = speech.synthesize("seven", voice, speed, pitch)
    assert waveform.dtype == np.float32 and 0.1 < np.abs(waveform).max() <= 1.0
    features = np.asarray(speech.log_mel(waveform, mel_bins=20, frame_ms=20))
    assert features.shape == (-(-len(waveform) // 441), 20)
    np.testing.assert_allclose(features.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(features.std(0), 1, atol=1e-3)


def test_the_dataset_holds_the_generated_utterances_and_the_pipeline_their_features():
    rows = datasets.examples("zoo_speech_words", "test[:2]")
    first_test = sum(speech.SIZES[split] for split in ("train", "validation"))
    for i, row in enumerate(rows):
        text, voice, speed, pitch = speech.utterance(first_test + i, 0, max_words=2)
        assert (row["text"], row["voice"], row["speed"], row["pitch"]) == (
            text,
            voice,
            speed,
            pitch,
        )
        np.testing.assert_array_equal(
            row["audio"] / 32768, speech.synthesize(text, voice, speed, pitch)
        )
    ((inputs, labels),) = speech.dataset(speech.utterances(rows, mel_bins=20), batch_size=2)
    lengths = inputs["lengths"].numpy()
    assert inputs["features"].shape == (2, lengths.max(), 20)
    for row, features, length, label in zip(rows, inputs["features"], lengths, labels):
        expected = speech.log_mel(row["audio"] / 32768, mel_bins=20)
        np.testing.assert_allclose(features[:length], expected, atol=1e-5)
        assert speech.decode(label.numpy()) == row["text"]


def test_settings_are_read_from_the_dataset_and_bounded_by_it(tmp_path):
    task = speech.SpeechTask()
    assert task.dataset(speech.SpeechConfig()) == "zoo_speech_words/words2"
    assert task.dataset(speech.SpeechConfig(max_words=4)) == "zoo_speech_words/words4"
    with pytest.raises(ValueError, match="--max_words=5: expected one of 1, 2, 3, 4"):
        speech.SpeechConfig(max_words=5)
    with pytest.raises(
        ValueError,
        match="--utterances=1201: the zoo_speech_words dataset holds "
        "1,200 utterances per train split",
    ):
        speech.SpeechConfig(utterances=1201)
    with pytest.raises(ValueError, match="--eval_utterances=101: .* 100 utterances per test"):
        speech.SpeechConfig(eval_utterances=101)
    with pytest.raises(
        KeyError,
        match="Unknown config 'zoo_speech_words/words9'. Configs of "
        "zoo_speech_words: words1, words2, words3, words4",
    ):
        datasets.builder("zoo_speech_words/words9")
    # A run saved with the former synthesis cache folder still loads.
    saved = json.loads(speech.SpeechConfig(run_dir=str(tmp_path)).to_json())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "cache_dir": "/tmp/speech"}))
    assert train.load_config(tmp_path) == speech.SpeechConfig(run_dir=str(tmp_path))


def test_labels_round_trip():
    assert speech.decode(speech.encode("red cat")) == "red cat"
    assert speech.encode("a z").tolist() == [2, 1, 27]
    with pytest.raises(ValueError, match="'7'"):
        speech.encode("r2d7")


@pytest.mark.slow
def test_short_training_lowers_the_ctc_loss(tmp_path):
    settings = dict(utterances=32, eval_utterances=8, mel_bins=20)
    metrics, model = speech.train_demo(
        run_dir=str(tmp_path / "run"),
        verbose=0,
        epochs=2,
        batch_size=16,
        units=16,
        layers=1,
        learning_rate=0.01,
        **settings,
    )
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < losses[0], losses
    assert 0 <= metrics["test"]["label_error_rate_beam_search"]
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.suffix == ".npz"]  # no cache
    text = speech.SpeechTask().sample(
        speech.SpeechConfig(run_dir=str(tmp_path / "run"), **settings),
        str(tmp_path / "run"),
        model,
        count=2,
    )
    assert text.endswith(f"{metrics['test']['label_error_rate_beam_search']:.3f}")
    manifest = export_run(
        str(tmp_path / "run"), format="tflite", calibration_windows=2, quantize=["none", "int8"]
    )
    assert list(manifest["signatures"]) == ["predict"]  # bidirectional: a fixed window only
    assert manifest["signatures"]["predict"]["inputs"]["x"]["shape"] == [1, 100, 20]
    assert manifest["files"]["model.tflite"]["parity"]["max_abs_diff"]["predict"] < 1e-4
    # No target in the features: a file is scored by how far it moves Keras's label
    # distributions (KL, bits per frame), and int8 stays within the gate.
    int8 = manifest["files"]["model_int8.tflite"]
    assert int8["quality_metric"] == "kl_bits_per_step" and 0 < int8["quality_loss"] <= 0.05
    assert manifest["files"]["model.tflite"]["quality_loss"] == pytest.approx(0, abs=1e-6)
