"""The encoder-decoder: shapes, masking, saving; greedy and beam search.

(Training is tested through the pipeline in tests/pipelines/test_translation.py.)
"""

import keras
import numpy as np
import pytest
from keras import ops

from zoo import decoding
from zoo.models.seq2seq import Seq2Seq

BOS, EOS = 2, 3
SOURCE = np.array([[5, 6, 7, 3, 0, 0], [8, 9, 10, 11, 12, 3]], "int32")
TARGET_IN = np.array([[BOS, 5, 6, 0], [BOS, 7, 8, 9]], "int32")


def tiny(**kwargs):
    return Seq2Seq(20, 24, **{"units": 8, "embedding_dim": 4, **kwargs})


@pytest.mark.parametrize(
    "cell,attention", [("lstm", "luong"), ("gru", "bahdanau"), ("cifg_lstm", "luong")]
)
def test_shapes_and_padding_is_masked(cell, attention):
    model = tiny(cell=cell, attention=attention, encoder_layers=2, decoder_layers=2)
    logits, weights = (np.asarray(t) for t in model.forward(SOURCE, TARGET_IN))
    assert logits.shape == (2, 4, 24) and weights.shape == (2, 4, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights[0, :, 4:] == 0.0)
    # More padding on either side changes nothing (the backward encoder skips it too).
    pad = lambda x, n: np.pad(x, ((0, 0), (0, n)))
    longer, _ = model.forward(pad(SOURCE, 3), pad(TARGET_IN, 2))
    np.testing.assert_allclose(np.asarray(longer)[:, :4], logits, atol=1e-5)


def test_beam_of_one_is_greedy_and_generate_survives_saving(tmp_path):
    model = tiny(cell="gru", attention="bahdanau", dropout=0.1)
    greedy, greedy_scores = model.generate(SOURCE, BOS, EOS, max_length=7)
    beam, _ = model.generate(SOURCE, BOS, EOS, max_length=7, beam_size=1, length_penalty=0.6)
    np.testing.assert_array_equal(beam, greedy)
    assert greedy.shape == (2, 7) and greedy_scores.shape == (2,)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.generate(SOURCE, BOS, EOS, max_length=7)[0], greedy)
    beams, scores = loaded.generate(SOURCE, BOS, EOS, max_length=7, beam_size=3)
    assert beams.shape == (2, 7) and np.all(np.isfinite(scores))


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="attention='dot'"):
        tiny(attention="dot")
    with pytest.raises(ValueError, match="dropout=1.0"):
        tiny(dropout=1.0)
    with pytest.raises(KeyError, match="nosuch"):
        tiny(cell="nosuch")
    with pytest.raises(ValueError, match="beam_size=0"):
        tiny().generate(SOURCE, BOS, EOS, beam_size=0)


# -- search on a known distribution --------------------------------------------------------------
# Next-token probabilities given the last token (a bigram model): after BOS, A (0.6) beats
# B (0.4); after A every continuation has about 1/3, after B the end is almost certain. Greedy
# takes A and wanders; the best sequence is B EOS (0.39 against A EOS's 0.2).
A, B = 4, 5
TABLE = np.full((6, 6), 1e-4)
TABLE[BOS, [A, B]] = [0.6, 0.4]
TABLE[A, [A, B, EOS]] = [0.34, 0.33, 0.33]
TABLE[B, EOS] = 0.98
TABLE[EOS, EOS] = 1.0
LOGITS = np.log(TABLE).astype("float32")


def logp(*tokens):
    """Log-probability of BOS, *tokens under the search's distribution (padding excluded)."""
    path = (BOS, *tokens)
    rows = np.log(TABLE[:, 1:].sum(1))
    return sum(LOGITS[a, b] - rows[a] for a, b in zip(path, path[1:]))


def bigram_step(ids, state):
    return ops.take(LOGITS, ids, axis=0), state


def search(beam_size=None, **kwargs):
    start = ops.full((2,), BOS, "int32")
    state = {"unused": ops.zeros((2, 3))}
    if beam_size is None:
        ids, scores = decoding.greedy_search(bigram_step, state, start, EOS, 4)
    else:
        ids, scores = decoding.beam_search(bigram_step, state, start, EOS, 4, beam_size, **kwargs)
    return ops.convert_to_numpy(ids), ops.convert_to_numpy(scores)


def test_greedy_and_beam_search_on_a_bigram_model():
    greedy, greedy_scores = search()
    np.testing.assert_array_equal(greedy, [[A, A, A, A]] * 2)
    beam, beam_scores = search(2, length_penalty=0.0)
    np.testing.assert_array_equal(beam, [[B, EOS, 0, 0]] * 2)  # padded after the end
    np.testing.assert_allclose(beam_scores, logp(B, EOS), atol=1e-3)
    np.testing.assert_allclose(greedy_scores, logp(A, A, A, A), atol=1e-3)
    one, one_scores = search(1, length_penalty=0.0)
    np.testing.assert_array_equal(one, greedy)
    np.testing.assert_allclose(one_scores, greedy_scores, atol=1e-5)


def test_length_penalty():
    np.testing.assert_allclose(
        ops.convert_to_numpy(decoding.length_penalty_factor(np.array([1, 7]), 1.0)), [1.0, 2.0]
    )
    _, scores = search(2, length_penalty=1.0)
    np.testing.assert_allclose(scores, logp(B, EOS) / (7 / 6), atol=1e-3)
