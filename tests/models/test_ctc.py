"""CTC head: the loss on a hand-made case, decoding a known labelling, LER, a short training."""

import math

import keras
import numpy as np
import pytest

from zoo.models.ctc import CTCModel, ctc_decode, ctc_loss, edit_distance, label_error_rate


def test_loss_matches_hand_computation_and_keras():
    # Two frames over {blank, a}; "a" is emitted by the paths (a,a), (a,-), (-,a).
    probs = np.array([[[0.3, 0.7], [0.6, 0.4]]])
    logits = np.log(probs).astype("float32")
    expected = -math.log(0.7 * 0.4 + 0.7 * 0.6 + 0.3 * 0.4)
    labels = np.array([[1, 0]])  # "a", padded
    ours = ctc_loss(labels, logits, np.array([2]))
    np.testing.assert_allclose(ours, [expected], rtol=1e-5)
    reference = keras.ops.ctc_loss(labels, logits, np.array([1]), np.array([2]), mask_index=0)
    np.testing.assert_allclose(ours, reference, rtol=1e-6)
    # Frames past the length do not count.
    padded = np.concatenate([logits, np.zeros((1, 3, 2), "float32")], axis=1)
    np.testing.assert_allclose(ctc_loss(labels, padded, np.array([2])), [expected], rtol=1e-5)


@pytest.mark.parametrize("strategy", ["greedy", "beam_search"])
def test_decoding_recovers_a_known_labelling(strategy):
    # Frame-wise best path 1 1 - 2 - 2 3 3 (- = blank) collapses to 1 2 2 3; then padding.
    path = [1, 1, 0, 2, 0, 2, 3, 3, 1, 1]
    logits = np.full((2, len(path), 4), -5.0, "float32")
    logits[0, np.arange(len(path)), path] = 5.0
    logits[1, np.arange(len(path)), [3, 0, 3] + [1] * 7] = 5.0
    decoded = ctc_decode(logits, np.array([8, 3]), strategy=strategy, beam_width=8)
    assert decoded == [[1, 2, 2, 3], [3, 3]]


def test_label_error_rate():
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance("kitten", "sitting") == 3
    assert label_error_rate([[1, 2, 3], [4]], [[1, 2, 3], [5, 6]]) == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="non-empty"):
        label_error_rate([[]], [[1]])


def toy_batch(rng, batch=16, frames=12):
    """Unsegmented toy task: noisy one-hot frames of 1-3 symbols, each held for 2-4 frames."""
    features = rng.normal(scale=0.3, size=(batch, frames, 4)).astype("float32")
    labels = np.zeros((batch, 3), "int32")
    lengths = np.zeros(batch, "int32")
    for b in range(batch):
        t = 0
        for j in range(rng.integers(1, 4)):
            symbol, hold = rng.integers(1, 4), rng.integers(2, 5)
            features[b, t : t + hold, symbol] += 1.0
            labels[b, j] = symbol
            t += hold
        lengths[b] = t
    return {"features": features, "lengths": lengths}, labels


def test_short_training_lowers_the_loss_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = toy_batch(np.random.default_rng(0))
    model = CTCModel(num_labels=3, cell="gru", units=8)
    model.compile(optimizer=keras.optimizers.Adam(0.05), run_eagerly=True)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.8 * first
    assert len(model.decode(x, strategy="beam_search")) == 16
    path = tmp_path / "ctc.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored(x), model(x), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_labels=0"):
        CTCModel(num_labels=0)
    with pytest.raises(ValueError, match="strategy='best'"):
        ctc_decode(np.zeros((1, 2, 3), "float32"), np.array([2]), strategy="best")
