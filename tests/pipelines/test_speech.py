"""Speech task: espeak-ng synthesis, log-mel features, labels, a short CTC training."""

import shutil

import numpy as np
import pytest

from pipelines import speech
from pipelines.export import export_run

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng (installed by .ci/run)")


def test_utterances_are_seeded_and_featurised(tmp_path):
    assert speech.utterance(7, seed=1) == speech.utterance(7, seed=1)
    text, voice, speed, pitch = speech.utterance(7, seed=1, max_words=3)
    assert 1 <= len(text.split()) <= 3 and set(text) <= set(speech.ALPHABET)
    waveform = speech.synthesize("seven", voice, speed, pitch)
    assert waveform.dtype == np.float32 and 0.1 < np.abs(waveform).max() <= 1.0
    features = speech.log_mel(waveform, mel_bins=20, frame_ms=20)
    assert features.shape == (-(-len(waveform) // 441), 20)
    np.testing.assert_allclose(features.mean(0), 0, atol=1e-4)

    features, texts = speech.corpus(0, 3, seed=2, mel_bins=20, cache_dir=str(tmp_path))
    cached, cached_texts = speech.corpus(0, 3, seed=2, mel_bins=20, cache_dir=str(tmp_path))
    assert texts == cached_texts
    written = [p.name for p in tmp_path.iterdir()]  # one cache file, no temporary one left
    assert len(written) == 1 and written[0].startswith("speech-"), written
    for a, b in zip(features, cached):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_labels_round_trip():
    assert speech.decode(speech.encode("red cat")) == "red cat"
    assert speech.encode("a z").tolist() == [2, 1, 27]
    with pytest.raises(ValueError, match="'7'"):
        speech.encode("r2d7")


@pytest.mark.slow
def test_short_training_lowers_the_ctc_loss(tmp_path):
    metrics, model = speech.train_demo(
        run_dir=str(tmp_path / "run"), verbose=0, utterances=32, eval_utterances=8,
        max_words=1, epochs=2, batch_size=16, units=16, layers=1, mel_bins=20,
        learning_rate=0.01,
    )
    losses = [epoch["loss"] for epoch in metrics["history"]]
    assert losses[-1] < losses[0], losses
    assert 0 <= metrics["test"]["label_error_rate_beam_search"]
    text = speech.SpeechTask().sample(speech.SpeechConfig(
        run_dir=str(tmp_path / "run"), utterances=32, eval_utterances=8, max_words=1,
        mel_bins=20), str(tmp_path / "run"), model, count=2)
    assert text.endswith(f"{metrics['test']['label_error_rate_beam_search']:.3f}")
    manifest = export_run(str(tmp_path / "run"), format="tflite", calibration_windows=2,
                          quantize=["none", "int8"])
    assert list(manifest["signatures"]) == ["predict"]  # bidirectional: a fixed window only
    assert manifest["signatures"]["predict"]["inputs"]["x"]["shape"] == [1, 100, 20]
    assert manifest["files"]["model.tflite"]["parity"]["max_abs_diff"]["predict"] < 1e-4
    # No target in the features: a file is scored by how far it moves Keras's label
    # distributions (KL, bits per frame), and int8 stays within the gate.
    int8 = manifest["files"]["model_int8.tflite"]
    assert int8["quality_metric"] == "kl_bits_per_step" and 0 < int8["quality_loss"] <= 0.05
    assert manifest["files"]["model.tflite"]["quality_loss"] == pytest.approx(0, abs=1e-6)
